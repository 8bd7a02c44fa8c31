"""Alerts through Apprise to a loopback JSON webhook: a rule fires once, stays quiet while it
keeps firing, and sends one "resolved" when it stops; a target that fails is retried."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from services import alerts, dispatch
from services.config import get_settings, reset_settings
from services.db import session_scope
from services.models import Delivery
from tests.fakes.base import FakePlatform, FakeRequest, FakeResponse, route
from tests.helpers import RecordingQueue, add_site_accounts, approve, make_story


class Receiver(FakePlatform):
    """Where Apprise's json:// posts land."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict] = []

    @route("POST", "/hook")
    def hook(self, req: FakeRequest) -> FakeResponse:
        self.messages.append(req.json)
        return FakeResponse(200, {"ok": True})


@pytest.fixture
def receiver(home, monkeypatch):
    with Receiver() as server:
        monkeypatch.setenv("FANOUT_ALERT_URLS", f"json://127.0.0.1:{server.url.rsplit(':', 1)[1]}/hook")
        monkeypatch.setenv("FANOUT_ALERT_BEAT_MINUTES", "0")
        reset_settings()
        yield server


def _texts(receiver: Receiver) -> list[str]:
    return [f"{m.get('title', '')}{m.get('message', '')}" for m in receiver.messages]


def test_an_alert_fires_once_and_resolves_once(receiver, storage, tmp_path):
    settings = get_settings()
    with session_scope() as session:
        add_site_accounts(session, settings)
        story_id = make_story(session, storage, tmp_path)
    approve(settings, storage, story_id)
    with session_scope() as session:
        website_id, _rss = dispatch.plan_publication(session, RecordingQueue(), story_id).created
        session.execute(update(Delivery).where(Delivery.id == website_id).values(
            state="failed", last_error="HTTP 401: rest_cannot_create"))
    with session_scope() as session:
        first = alerts.check(session, settings)
    assert f"failed:{website_id}" in first["opened"]
    failed = [t for t in _texts(receiver) if "发布失败" in t]
    assert len(failed) == 1 and "【Fanout 告警】" in failed[0] and "rest_cannot_create" in failed[0]
    assert any("没有在线的 publish 工作进程" in t for t in _texts(receiver))  # no worker runs in this test
    sent = len(receiver.messages)
    with session_scope() as session:
        again = alerts.check(session, settings)
    assert again["opened"] == [] and len(receiver.messages) == sent  # still firing: nothing new
    with session_scope() as session:
        session.execute(update(Delivery).where(Delivery.id == website_id).values(state="published"))
    with session_scope() as session:
        later = alerts.check(session, settings)
    assert later["resolved"] == [f"failed:{website_id}"]
    resolved = [t for t in _texts(receiver)[sent:] if "【Fanout 已恢复】" in t]
    assert len(resolved) == 1 and "发布失败" in resolved[0]
    with session_scope() as session:
        assert [a.key for a in alerts.open_alerts(session)] == ["no_worker:media", "no_worker:publish"]


def test_a_target_that_fails_is_tried_again_next_check(receiver):
    settings = get_settings()
    receiver.misbehave("status", path="/hook", status=503, times=2)  # both no-worker alerts fail once
    with session_scope() as session:
        alerts.check(session, settings)
    assert receiver.messages == []
    with session_scope() as session:
        result = alerts.check(session, settings)
    assert sorted(result["resent"]) == ["no_worker:media", "no_worker:publish"]
    assert len(receiver.messages) == 2
