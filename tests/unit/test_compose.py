"""docker-compose.yml, Dockerfile and .dockerignore, checked without a Docker engine.

Covers: the service set; every app service built from the one Dockerfile; healthchecks on every
long-running service (and the beat one actually run against a fresh and a stale schedule file);
named volumes declared and used, FANOUT_HOME shared at /data; each `fanout …` command parsed by
the real click CLI (unknown subcommands or options fail); Celery worker names in the healthchecks
equal the `--name` the workers run with and the `celery -A worker inspect ping` line parses with
Celery's own CLI; FANOUT_SECRET_KEY required, never defaulted; the environment anchor (URLs point
at the compose services, S3 keys equal MinIO's root user); depends_on conditions; the Dockerfile's
base image, CJK font, non-root user, copied code and default command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
DOCKERFILE_PATH = ROOT / "Dockerfile"

INFRA = {"redis", "postgres", "minio"}
APP = {"migrate", "web", "worker-media", "worker-publish", "beat", "flower"}
LONG_RUNNING = (INFRA | APP) - {"migrate"}
SHARED_HOME = {"web", "worker-media", "worker-publish", "beat"}
WORKERS = {"worker-media": ("media", "prefork"), "worker-publish": ("publish", "threads")}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?|-|\?)(?P<arg>[^}]*))?\}"
                  r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Docker Compose's variable interpolation (the subset the spec defines)."""
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise LookupError(f"required variable {name} is missing: {arg}")
        return current or ""

    return _VAR.sub(sub, value)


def fanout_parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Resolve `fanout ARGV` through the real click CLI: (subcommand path, parsed params)."""
    from services.cli import main

    command: click.Command = main
    path: list[str] = []
    rest = list(argv)
    while isinstance(command, click.Group):
        assert rest, f"`fanout {' '.join(path)}` needs a subcommand"
        name, rest = rest[0], rest[1:]
        assert name in command.commands, f"`fanout {' '.join(path + [name])}`: no such subcommand"
        command = command.commands[name]
        path.append(name)
    ctx = command.make_context(" ".join(["fanout", *path]), rest, resilient_parsing=False)
    # `fanout worker` passes unknown options on to Celery: a misspelt option would slip through.
    assert not ctx.args, f"`fanout {' '.join(path)}` left arguments unparsed: {ctx.args}"
    return " ".join(path), ctx.params


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert isinstance(command, list) and command, "app services use the exec (list) form of command"
    return [str(c) for c in command]


def seconds(duration: str) -> float:
    """A compose duration such as 1m30s or 20s, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), f"bad duration {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def dockerfile_instructions() -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE_PATH.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            lines.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return lines


# --------------------------------------------------------------------------- the helpers themselves


def test_cli_parser_helper_rejects_unknown_subcommands_and_options() -> None:
    assert fanout_parse(["web", "--host", "0.0.0.0", "--port", "8000"]) == ("web", {"host": "0.0.0.0", "port": 8000})
    with pytest.raises(AssertionError, match="no such subcommand"):
        fanout_parse(["webserver"])
    with pytest.raises(click.NoSuchOption):
        fanout_parse(["web", "--prot", "8000"])
    with pytest.raises(AssertionError, match="unparsed"):
        fanout_parse(["worker", "-Q", "media", "--concurency", "1"])
    with pytest.raises(click.BadParameter):
        fanout_parse(["flower", "--port", "five"])


def test_interpolation_helper_follows_compose_rules() -> None:
    assert interpolate("${A:-x}", {}) == "x"
    assert interpolate("${A:-x}", {"A": "y"}) == "y"
    assert interpolate("$$HOSTNAME", {"HOSTNAME": "h"}) == "$HOSTNAME"
    with pytest.raises(LookupError, match="set it"):
        interpolate("${A:?set it}", {})


# --------------------------------------------------------------------------- services


def test_service_set(services: dict[str, Any]) -> None:
    assert INFRA | APP <= set(services), f"missing services: {sorted((INFRA | APP) - set(services))}"


def test_app_services_build_the_one_dockerfile(services: dict[str, Any]) -> None:
    images = set()
    for name in APP:
        service = services[name]
        build = service.get("build")
        assert build is not None, f"{name} has no build section"
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (ROOT / context / dockerfile).resolve() == DOCKERFILE_PATH, f"{name} builds {context}/{dockerfile}"
        images.add(service.get("image"))
    assert len(images) == 1 and None not in images, f"app services should share one image name, got {images}"
    for name in INFRA:
        assert "build" not in services[name] and services[name].get("image"), f"{name} should use a stock image"


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        test = check.get("test")
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) >= 2, \
            f"{name}: healthcheck test should be [CMD, …] or [CMD-SHELL, …], got {test!r}"
        assert all(str(part).strip() for part in test[1:]), f"{name}: empty healthcheck command"
    assert "healthcheck" not in services["migrate"], "migrate runs once; it needs no healthcheck"
    assert services["migrate"].get("restart", "no") == "no", "migrate must not be restarted"


def test_infra_healthchecks_use_tools_their_images_ship(services: dict[str, Any]) -> None:
    assert services["redis"]["healthcheck"]["test"][1:3] == ["redis-cli", "ping"]
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    minio = services["minio"]["healthcheck"]["test"]
    # The MinIO image has no curl or wget: `mc ready local` (bundled) is what its maintainers suggest.
    assert minio[1:] == ["mc", "ready", "local"] or "/minio/health/live" in " ".join(minio)
    assert "curl" not in " ".join(minio) and "wget" not in " ".join(minio)


def test_web_and_flower_healthchecks_ask_their_own_port(services: dict[str, Any]) -> None:
    _, web = fanout_parse(command_of(services["web"])[1:])
    web_check = " ".join(services["web"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{web['port']}/healthz" in web_check and "urllib" in web_check
    assert web["host"] == "0.0.0.0"
    assert any(str(p).endswith(f":{web['port']}") for p in services["web"].get("ports", []))

    _, flower = fanout_parse(command_of(services["flower"])[1:])
    flower_check = " ".join(services["flower"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{flower['port']}/healthcheck" in flower_check
    assert flower["address"] == "0.0.0.0" and flower["port"] == 5555


def test_named_volumes_are_declared_and_used(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    assert {"pgdata", "miniodata", "fanout-home"} <= declared
    used: dict[str, set[str]] = {}
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source, _, rest = str(mount).partition(":")
            target = rest.split(":")[0]
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
                used.setdefault(source, set()).add(f"{name}:{target}")
    assert declared <= set(used), f"declared but unused volumes: {sorted(declared - set(used))}"
    assert "postgres:/var/lib/postgresql/data" in used["pgdata"]
    assert "minio:/data" in used["miniodata"]
    for name in SHARED_HOME:
        assert f"{name}:/data" in used["fanout-home"], f"{name} must share FANOUT_HOME (/data)"


def test_fanout_commands_exist_in_the_cli(services: dict[str, Any]) -> None:
    expected = {"migrate": "db upgrade", "web": "web", "worker-media": "worker", "worker-publish": "worker",
                "beat": "beat", "flower": "flower"}
    for name, subcommand in expected.items():
        argv = command_of(services[name])
        assert argv[0] == "fanout", f"{name} should run the fanout command, runs {argv[0]}"
        path, _params = fanout_parse(argv[1:])
        assert path == subcommand, f"{name} runs `fanout {path}`, expected `fanout {subcommand}`"


def test_workers_queues_pools_and_names(services: dict[str, Any]) -> None:
    for name, (queue, pool) in WORKERS.items():
        _, params = fanout_parse(command_of(services[name])[1:])
        assert params["queues"] == queue and params["pool"] == pool, f"{name}: {params}"
        assert params["name"] == f"{queue}@%h", f"{name} should be named {queue}@%h, is {params['name']}"
    _, media = fanout_parse(command_of(services["worker-media"])[1:])
    _, publish = fanout_parse(command_of(services["worker-publish"])[1:])
    assert media["concurrency"] == 1 and publish["concurrency"] == 16


def test_worker_healthchecks_ping_the_worker_by_its_name(services: dict[str, Any]) -> None:
    from celery import Celery
    from celery.bin.celery import celery as celery_cli

    import worker

    assert isinstance(worker.app, Celery), "`celery -A worker` finds worker.app"
    for name in WORKERS:
        _, params = fanout_parse(command_of(services[name])[1:])
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL"
        raw = test[1]
        # `$$` keeps compose from substituting the *host's* HOSTNAME at `docker compose up`.
        assert "$$HOSTNAME" in raw and not re.search(r"(?<!\$)\$HOSTNAME", raw), raw
        shell_line = interpolate(raw, {}).split("||")[0]
        tokens = shlex.split(shell_line)
        assert tokens[:5] == ["celery", "-A", "worker", "inspect", "ping"], tokens
        ctx = celery_cli.commands["inspect"].make_context("inspect", tokens[4:], resilient_parsing=False)
        assert ctx.params["command"] == "ping"
        destinations = ctx.params["destination"]
        assert destinations == [params["name"].replace("%h", "$HOSTNAME")], \
            f"{name}: healthcheck pings {destinations}, worker runs as {params['name']}"
        # The ping must give up before Docker kills the check.
        assert ctx.params["timeout"] < seconds(services[name]["healthcheck"]["timeout"])


def test_beat_healthcheck_tracks_the_schedule_file(services: dict[str, Any], tmp_path: Path) -> None:
    """Run beat's healthcheck for real: no file, a fresh file, a stale file."""
    from services.config import Settings
    from worker import celery_config

    test = services["beat"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    schedule = Path(celery_config(Settings(home=tmp_path))["beat_schedule_filename"])
    assert schedule.parent == tmp_path.resolve() / "run"
    env = {**os.environ, "FANOUT_HOME": str(tmp_path)}

    def check() -> int:
        return subprocess.run([sys.executable, "-c", test[3]], env=env, timeout=30).returncode

    assert check() != 0, "healthy without any schedule file"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    data = schedule.with_name(schedule.name + ".dat")  # shelve on dbm.dumb writes .dat/.dir/.bak
    data.write_bytes(b"x")
    assert check() == 0, "a fresh schedule file should be healthy"
    old = time.time() - 3600
    os.utime(data, (old, old))
    assert check() != 0, "a schedule file an hour old should be unhealthy"


def test_depends_on_conditions(services: dict[str, Any]) -> None:
    for name in SHARED_HOME:
        depends = services[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert depends.get("migrate", {}).get("condition") == "service_completed_successfully", name
        for infra in INFRA:
            assert depends.get(infra, {}).get("condition") == "service_healthy", f"{name} → {infra}"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy; it has no check"


# --------------------------------------------------------------------------- environment


def test_common_environment_anchor(compose: dict[str, Any], services: dict[str, Any]) -> None:
    text = COMPOSE_PATH.read_text(encoding="utf-8")
    assert re.search(r"^x-fanout-env:\s*&\S+", text, re.M), "x-fanout-env should be a YAML anchor"
    env = compose["x-fanout-env"]
    for name in APP:
        service_env = services[name].get("environment")
        assert isinstance(service_env, dict), f"{name}: environment should be the mapping of x-fanout-env"
        for key, value in env.items():
            assert service_env.get(key) == value, f"{name}: {key} differs from x-fanout-env"
    assert env["FANOUT_HOME"] == "/data"
    assert env["FANOUT_DATABASE_URL"] == "postgresql+psycopg://fanout:fanout@postgres:5432/fanout"
    assert env["FANOUT_BROKER_URL"] == "redis://redis:6379/0"
    assert env["FANOUT_STORAGE_URL"] == "s3://fanout?endpoint=http://minio:9000"
    pg = services["postgres"]["environment"]
    assert (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]) == ("fanout", "fanout", "fanout")
    fernet = "k" * 43 + "="
    resolved = {k: interpolate(str(v), {"FANOUT_SECRET_KEY": fernet}) for k, v in env.items()}
    assert resolved["FANOUT_PUBLIC_URL"] == "http://localhost:8000/site/"
    assert interpolate(str(env["FANOUT_PUBLIC_URL"]), {"FANOUT_PUBLIC_URL": "https://news.example.cn/"}) \
        == "https://news.example.cn/"
    minio = {k: interpolate(str(v), {}) for k, v in services["minio"]["environment"].items()}
    assert resolved["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert resolved["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert len(minio["MINIO_ROOT_PASSWORD"]) >= 8, "MinIO refuses root passwords under 8 characters"
    # The same holds when an operator overrides the MinIO credentials.
    custom = {"MINIO_ROOT_USER": "ops", "MINIO_ROOT_PASSWORD": "a-long-secret"}
    assert interpolate(str(env["AWS_ACCESS_KEY_ID"]), custom) == interpolate(
        str(services["minio"]["environment"]["MINIO_ROOT_USER"]), custom) == "ops"
    assert interpolate(str(env["AWS_SECRET_ACCESS_KEY"]), custom) == interpolate(
        str(services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]), custom) == "a-long-secret"


def test_secret_key_is_required_not_defaulted(compose: dict[str, Any], services: dict[str, Any]) -> None:
    value = str(compose["x-fanout-env"]["FANOUT_SECRET_KEY"])
    assert re.fullmatch(r"\$\{FANOUT_SECRET_KEY:\?[^}]+\}", value), value
    with pytest.raises(LookupError, match="FANOUT_SECRET_KEY"):
        interpolate(value, {})
    with pytest.raises(LookupError):
        interpolate(value, {"FANOUT_SECRET_KEY": ""})
    text = COMPOSE_PATH.read_text(encoding="utf-8")
    assert not re.search(r"FANOUT_SECRET_KEY:?-", text), "FANOUT_SECRET_KEY must not have a default"
    for name in APP:
        assert services[name]["environment"]["FANOUT_SECRET_KEY"] == value


def test_urls_name_compose_services(compose: dict[str, Any], services: dict[str, Any]) -> None:
    from urllib.parse import parse_qs, urlparse

    env = compose["x-fanout-env"]
    assert urlparse(env["FANOUT_DATABASE_URL"]).hostname in services
    assert urlparse(env["FANOUT_BROKER_URL"]).hostname in services
    endpoint = parse_qs(urlparse(env["FANOUT_STORAGE_URL"]).query)["endpoint"][0]
    assert urlparse(endpoint).hostname == "minio" and urlparse(endpoint).port == 9000


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_base_font_user_and_command() -> None:
    instructions = dockerfile_instructions()
    froms = [arg for kw, arg in instructions if kw == "FROM"]
    assert froms and froms[0].split()[0].startswith("python:3.11-slim"), froms
    runs = [arg for kw, arg in instructions if kw == "RUN"]
    apt = [r for r in runs if "apt-get install" in r]
    assert apt and "fonts-noto-cjk" in apt[0] and "--no-install-recommends" in apt[0], apt
    assert any("pip install --no-cache-dir ." in r for r in runs)
    users = [arg for kw, arg in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"image runs as {users[-1:] or ['root']}"
    last_user_at = max(i for i, (kw, _) in enumerate(instructions) if kw == "USER")
    assert not [arg for kw, arg in instructions[last_user_at:] if kw == "RUN" and "apt-get" in arg], \
        "apt-get after the switch to the non-root user cannot work"
    assert ("WORKDIR", "/app") in instructions
    assert any(kw == "EXPOSE" and "8000" in arg.split() for kw, arg in instructions)
    cmd = json.loads([arg for kw, arg in instructions if kw == "CMD"][-1])
    assert cmd[:2] == ["fanout", "web"]
    _, params = fanout_parse(cmd[1:])
    assert params["host"] == "0.0.0.0"


def test_dockerfile_copies_what_the_package_declares() -> None:
    """`pip install .` in the image needs every package and py-module pyproject declares."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools_cfg = pyproject["tool"]["setuptools"]
    copied = set()
    for kw, arg in dockerfile_instructions():
        if kw == "COPY" and not arg.startswith("--from"):
            parts = [p for p in arg.split() if not p.startswith("--")]
            copied.update(p.rstrip("/") for p in parts[:-1])
    assert "pyproject.toml" in copied
    for module in setuptools_cfg.get("py-modules", []):
        assert f"{module}.py" in copied, f"py-module {module} is not copied into the image"
    assert "worker" in setuptools_cfg.get("py-modules", []), "celery -A worker needs worker.py installed"
    for pattern in setuptools_cfg["packages"]["find"]["include"]:
        package = pattern.rstrip("*").rstrip(".")
        assert (ROOT / package / "__init__.py").is_file()
        assert package in copied, f"package {package} is not copied into the image"


def test_dockerignore_keeps_local_state_out() -> None:
    entries = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for required in (".venv", "var", ".git", ".pytest_cache", "__pycache__"):
        assert required in entries or f"**/{required}" in entries, f".dockerignore lacks {required}"
    for needed in ("services", "channels", "media", "worker.py", "pyproject.toml"):
        assert needed not in entries, f".dockerignore must not exclude {needed}"
