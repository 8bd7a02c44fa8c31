"""Fixtures shared by the web tests: the app, and the task queue it sends to, recorded in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import RecordingQueue


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> RecordingQueue:
    """What the web app sends to the workers (preview warm-up, renders of a release), recorded."""
    from services.web import app as web_app

    recording = RecordingQueue()
    monkeypatch.setattr(web_app, "_queue", lambda: recording)
    return recording


@pytest.fixture
def app(home: Path):  # noqa: ANN201 - a FastAPI app
    from services.web.app import create_app

    return create_app()
