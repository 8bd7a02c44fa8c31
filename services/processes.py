"""Start and stop Fanout's own processes: web, workers and beat, for `fanout up` and `--wait`.

Each process is a real OS process running the `fanout` command (so what `make run` starts is
exactly what docker-compose starts, one container per process). Stopping sends SIGTERM to each
process group (Celery's warm shutdown finishes the task in hand), then SIGKILL after a grace
period, so Ctrl-C never leaves a worker behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from services.config import Settings

# Embedded pools (DESIGN.md pitfalls): media on prefork at ~cores/2, publish on threads.
MEDIA_WORKER = ["worker", "-Q", "media", "--pool", "prefork", "--concurrency", "1"]
PUBLISH_WORKER = ["worker", "-Q", "publish", "--pool", "threads", "--concurrency", "8"]


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path


def fanout_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", *args]


def start(name: str, args: list[str], settings: Settings, *, env: dict[str, str] | None = None) -> Child:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.run_dir / f"{name}.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    child_env = dict(os.environ)
    child_env["FANOUT_HOME"] = str(settings.resolved_home)
    child_env.update(env or {})
    process = subprocess.Popen(fanout_command(*args), stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=child_env, start_new_session=True)
    log_file.close()
    return Child(name=name, process=process, log_path=log_path)


def start_workers(settings: Settings, *, tag: str = "") -> list[Child]:
    suffix = f"-{tag}" if tag else ""
    return [
        start(f"worker-media{suffix}", [*MEDIA_WORKER, "--name", f"media{suffix}.{os.getpid()}@%h"], settings),
        start(f"worker-publish{suffix}", [*PUBLISH_WORKER, "--name", f"publish{suffix}.{os.getpid()}@%h"], settings),
    ]


def stop(children: list[Child], *, grace: float = 20.0) -> None:
    for child in children:
        if child.process.poll() is None:
            try:
                os.killpg(child.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for child in children:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(child.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.process.wait(timeout=5)


def wait_for_queues(queues: set[str], *, timeout: float, children: list[Child] | None = None) -> None:
    """Block until live heartbeats cover `queues`; fail early if a child died."""
    from services.db import session_scope
    from services.ops import queues_served

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children or []:
            if child.process.poll() is not None:
                tail = child.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{tail}")
        with session_scope() as session:
            if queues <= queues_served(session):
                return
        time.sleep(0.3)
    raise TimeoutError(f"no worker came up on queues {sorted(queues)} within {timeout:.0f}s")
