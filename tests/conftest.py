"""Shared fixtures: a fresh FANOUT_HOME and database per test, real services, real workers.

Backends are chosen by environment (the Makefile runs the suite once per combination):
  FANOUT_TEST_DB      sqlite (default) | postgresql  — PostgreSQL at 127.0.0.1:5432, trust auth
  FANOUT_TEST_BROKER  filesystem (default) | redis   — Redis at 127.0.0.1:6379
A service that is down is started with the command the machine documents; if it still does not
answer, the test fails (never skips): a missing service is a failure.

Each test gets its own database copied from a template migrated once per session (SQLite: a
file copy; PostgreSQL: CREATE DATABASE … TEMPLATE), so tests are isolated and fast.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

TEST_DB = os.environ.get("FANOUT_TEST_DB", "sqlite")
TEST_BROKER = os.environ.get("FANOUT_TEST_BROKER", "filesystem")
PG_ADMIN_URL = os.environ.get("FANOUT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FANOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_open(port):
            return True
        time.sleep(0.3)
    return False


def ensure_postgres() -> None:
    if _port_open(5432):
        return
    versions = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
    if versions:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "start"], check=False)
    if not _wait_port(5432, 30):
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 and could not be started", pytrace=False)


def ensure_redis() -> None:
    if _port_open(6379):
        return
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
                    "--save", "", "--appendonly", "no"], check=False)
    if not _wait_port(6379, 20):
        pytest.fail("Redis is not running on 127.0.0.1:6379 and could not be started", pytrace=False)


@pytest.fixture(scope="session")
def db_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database to copy for each test (a file path or a PostgreSQL database name)."""
    from services.migrations import upgrade

    if TEST_DB == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        upgrade(f"sqlite:///{path}")
        yield str(path)
        return
    if TEST_DB != "postgresql":
        pytest.fail(f"FANOUT_TEST_DB must be sqlite or postgresql, not {TEST_DB!r}", pytrace=False)
    ensure_postgres()
    from sqlalchemy import create_engine, text

    name = f"fanout_tpl_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(db_template: str, tmp_path: Path) -> Iterator[str]:
    if TEST_DB == "sqlite":
        path = tmp_path / "fanout.db"
        shutil.copyfile(db_template, path)
        yield f"sqlite:///{path}"
        return
    from sqlalchemy import create_engine, text

    name = f"fanout_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{db_template}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    from services.db import dispose_engines

    dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def broker_url() -> str | None:
    """The Celery broker for this run: None means the embedded filesystem transport."""
    if TEST_BROKER == "filesystem":
        return None
    if TEST_BROKER != "redis":
        pytest.fail(f"FANOUT_TEST_BROKER must be filesystem or redis, not {TEST_BROKER!r}", pytrace=False)
    ensure_redis()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.fixture
def home(tmp_path: Path, database_url: str, broker_url: str | None,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh FANOUT_HOME with its own database, as every entry point will see it."""
    from services.config import reset_settings
    from services.db import dispose_engines

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FANOUT_HOME", str(home))
    monkeypatch.setenv("FANOUT_DATABASE_URL", database_url)
    if broker_url:
        monkeypatch.setenv("FANOUT_BROKER_URL", broker_url)
        # Workers of another test (or another run on this machine) never see this test's tasks.
        monkeypatch.setenv("FANOUT_BROKER_PREFIX", f"t{uuid.uuid4().hex[:10]}:")
    else:
        monkeypatch.delenv("FANOUT_BROKER_URL", raising=False)
    monkeypatch.delenv("FANOUT_STORAGE_URL", raising=False)
    monkeypatch.setenv("FANOUT_PUBLIC_URL", "http://127.0.0.1:8000/site/")
    reset_settings()
    dispose_engines()
    from services.config import get_settings

    get_settings().ensure_dirs()
    yield home
    dispose_engines()
    reset_settings()


@pytest.fixture
def settings(home: Path):  # noqa: ANN201
    from services.config import get_settings

    return get_settings()


@pytest.fixture
def storage(settings):  # noqa: ANN001, ANN201
    from services.storage import open_storage

    return open_storage(settings)


@pytest.fixture
def workers(home: Path, settings) -> Iterator[list]:  # noqa: ANN001
    """Real Celery worker processes (media on prefork, publish on threads) for this home."""
    from services import processes

    children = processes.start_workers(settings, tag="test")
    try:
        processes.wait_for_queues({"media", "publish"}, timeout=90, children=children)
        yield children
    finally:
        processes.stop(children, grace=15)
