"""`fanout up --demo` — what `make run` starts: web, two workers and beat as real processes.

It must serve the editor UI, the demo site and feeds, say how to log in, and on Ctrl-C stop
every process it started (found through /proc by their FANOUT_HOME), leaving none behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import pytest
import requests

pytestmark = pytest.mark.celery


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _processes_of(home: Path) -> list[int]:
    marker = f"FANOUT_HOME={home}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_up_serves_the_demo_and_ctrl_c_stops_everything(home, monkeypatch):
    port = _free_port()
    monkeypatch.setenv("FANOUT_WEB_PORT", str(port))
    monkeypatch.setenv("FANOUT_PUBLIC_URL", f"http://127.0.0.1:{port}/site/")
    up = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--demo"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        feed = None
        while time.monotonic() < deadline:
            try:
                feed = requests.get(f"{base}/site/feed.xml", timeout=2)
                if feed.status_code == 200 and feed.text.count("<item>") == 2:
                    break
            except requests.ConnectionError:
                pass
            assert up.poll() is None, up.stdout.read()
            time.sleep(1)
        assert feed is not None and feed.text.count("<item>") == 2
        assert feedparser.parse(feed.content).bozo == 0
        assert requests.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
        login = requests.get(f"{base}/", timeout=5)
        assert login.url.endswith("/login?next=/") and "登录" in login.text
        site = requests.get(f"{base}/site/", timeout=5)
        assert site.status_code == 200 and "群众满意度提升行动之基础教育篇" in site.text
        assert len(_processes_of(home)) >= 5  # up, web, two workers (+ pool children), beat
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=90)
    assert up.returncode == 0, out
    password = (home / "admin-password.txt").read_text().strip()
    assert f"admin / {password}" in out and f"{base}/site/" in out and "stopped." in out
    assert "demo: day 1 released (2 stories)" in out
    leftover = _processes_of(home)
    assert leftover == [], f"processes left running after Ctrl-C: {leftover}"
