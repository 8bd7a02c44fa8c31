"""Retraction: one audited decision per story — delete through APIs, cancel what was never sent,
list what a person must remove or check — and a retract task that is safe to run twice."""

from __future__ import annotations

import pytest

from channels.base import PermanentChannelError, TransientChannelError
from channels.website import WebsiteChannel
from services import dispatch, retraction
from services.accounts import add_account
from services.audit import events
from services.db import session_scope
from services.errors import ValidationError
from services.models import Delivery, Story
from tests.helpers import RecordingQueue, add_site_accounts, approve, desk, make_story, run_pipeline


@pytest.fixture
def published(home, settings, storage, tmp_path):
    """Website + RSS published, an outbox account's package waiting: three deliveries."""
    with session_scope() as session:
        add_site_accounts(session, settings)
        add_account(session, settings, "website", "乡镇网站", mode="outbox")
        story_id = make_story(session, storage, tmp_path)
    approve(settings, storage, story_id)
    queue = RecordingQueue()
    with session_scope() as session:
        created = dispatch.plan_publication(session, queue, story_id).created
    assert run_pipeline(settings, storage, queue, created) == ["published", "published", "outbox"]
    return story_id, created


def _states(ids: list[int]) -> list[str]:
    with session_scope() as session:
        return [session.get(Delivery, i).state for i in ids]


def test_retract_takes_the_story_down_and_lists_the_rest(published, settings):
    story_id, (site, feed, box) = published
    page = settings.site_dir / "stories" / str(story_id) / "index.html"
    assert page.exists()
    queue = RecordingQueue()
    with session_scope() as session:
        with pytest.raises(ValidationError, match="needs a reason"):
            retraction.retract_story(session, queue, story_id, "  ", desk(session)["editor"])
    with session_scope() as session:
        plan = retraction.retract_story(session, queue, story_id, "数据有误，更正后重发", desk(session)["editor"])
        assert queue.sent == []  # enqueued only after the commit
    assert sorted(plan.by_api) == [site, feed] and plan.cancelled == [box]
    assert [r["id"] for r in plan.by_hand] == [box] and plan.to_check == []
    assert sorted(queue.of("retract")) == [site, feed]
    assert _states([site, feed, box]) == ["retracting", "retracting", "retracted"]
    for delivery_id in (site, feed):
        assert retraction.retract_delivery(settings, queue, delivery_id, worker="t") == "retracted"
        assert retraction.retract_delivery(settings, queue, delivery_id, worker="t") == "skipped"  # twice: no-op
    assert _states([site, feed]) == ["retracted", "retracted"]
    assert not page.exists()
    with session_scope() as session:
        assert session.get(Story, story_id).status == "retracted"
        event = next(e for e in events(session, story_id=story_id) if e.action == "retract")
        assert "数据有误" in event.summary and event.actor_name == "editor"


def test_a_refused_deletion_goes_back_to_published_with_the_reason(published, settings, monkeypatch):
    story_id, (site, _feed, _box) = published
    queue = RecordingQueue()
    with session_scope() as session:
        retraction.retract_story(session, queue, story_id, "撤稿", desk(session)["editor"])

    def busy(self, receipt, account):
        raise TransientChannelError("busy", code="2100004", retry_after=12)

    monkeypatch.setattr(WebsiteChannel, "retract", busy)
    assert retraction.retract_delivery(settings, queue, site) == "retry"
    assert ("retract", site, 12) in queue.sent and _states([site]) == ["retracting"]

    def refused(self, receipt, account):
        raise PermanentChannelError("post is locked", code="20003")

    monkeypatch.setattr(WebsiteChannel, "retract", refused)
    assert retraction.retract_delivery(settings, queue, site) == "refused"
    with session_scope() as session:
        delivery = session.get(Delivery, site)
        assert (delivery.state, delivery.last_error_code) == ("published", "20003")
        assert "post is locked" in delivery.last_error


def test_in_flight_deliveries_are_listed_to_check(published, settings):
    story_id, (site, _feed, _box) = published
    with session_scope() as session:
        dispatch.transition(session, site, ["published"], "unknown", message="test: outcome unknown")
    with session_scope() as session:
        plan = retraction.retract_story(session, RecordingQueue(), story_id, "撤稿", desk(session)["editor"])
    assert [r["id"] for r in plan.to_check] == [site] and site not in plan.by_api


def test_the_retracted_version_is_not_published_again(published):
    story_id, _ = published
    with session_scope() as session:
        retraction.retract_story(session, RecordingQueue(), story_id, "撤稿", desk(session)["editor"])
    with session_scope() as session:
        with pytest.raises(ValidationError, match="was retracted"):
            dispatch.plan_publication(session, RecordingQueue(), story_id)
