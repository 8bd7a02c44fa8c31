"""The delivery state machine, run in this process with a recording queue (no broker).

Covers: idempotent planning and enqueue-after-commit; one claim per delivery whatever is
redelivered; transient errors → retry_wait with backoff and Retry-After, bounded attempts;
permanent errors → failed; a possibly-sent post → unknown → reconcile (found: published
without re-sending; not found: published again); sweep recovering lost messages and dead
workers. Real website/RSS channels publish into the test's site folder; faults are injected
by replacing the channel's publish/reconcile for the test.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from channels.base import OutcomeUnknownError, PermanentChannelError, Receipt, TransientChannelError
from channels.rss import RssChannel
from channels.website import WebsiteChannel
from services import dispatch
from services.db import session_scope
from services.errors import ValidationError
from services.models import Delivery, DeliveryLog, Story, utcnow
from tests.helpers import RecordingQueue, add_site_accounts, approve, make_story, run_pipeline


@pytest.fixture
def approved_story(home, settings, storage, tmp_path):
    """An approved story with a cover, and website + RSS accounts to publish it to."""
    with session_scope() as session:
        add_site_accounts(session, settings)
        story_id = make_story(session, storage, tmp_path)
    approve(settings, storage, story_id)
    return story_id


@pytest.fixture
def planned(approved_story):
    """The approved story and its two planned deliveries."""
    queue = RecordingQueue()
    with session_scope() as session:
        result = dispatch.plan_publication(session, queue, approved_story)
    return approved_story, result.created, queue


def _state(delivery_id: int) -> Delivery:
    with session_scope() as session:
        return session.get(Delivery, delivery_id)


def _published_transitions(delivery_id: int) -> int:
    with session_scope() as session:
        return len(session.scalars(select(DeliveryLog).where(DeliveryLog.delivery_id == delivery_id,
                                                             DeliveryLog.to_state == "published")).all())


def test_planning_is_idempotent_and_enqueues_only_after_commit(approved_story):
    story_id = approved_story
    queue = RecordingQueue()
    with session_scope() as session:
        first = dispatch.plan_publication(session, queue, story_id)
        assert queue.sent == []  # not before the commit
    assert len(first.created) == 2 and queue.of("render") == first.created
    with session_scope() as session:
        second = dispatch.plan_publication(session, queue, story_id)
    assert second.created == [] and sorted(second.existing) == sorted(first.created)
    assert queue.of("render") == first.created  # nothing new sent


def test_a_rolled_back_plan_sends_nothing(approved_story):
    story_id = approved_story
    queue = RecordingQueue()
    with pytest.raises(RuntimeError):
        with session_scope() as session:
            dispatch.plan_publication(session, queue, story_id)
            raise RuntimeError("something after planning failed")
    assert queue.sent == []
    with session_scope() as session:
        assert session.scalars(select(Delivery)).all() == []


def test_publishing_with_no_account_is_refused(home, settings, storage, tmp_path):
    with session_scope() as session:
        story_id = make_story(session, storage, tmp_path)
    approve(settings, storage, story_id)
    with pytest.raises(ValidationError, match="no enabled channel account"):
        with session_scope() as session:
            dispatch.plan_publication(session, RecordingQueue(), story_id)


def test_render_then_publish_reaches_the_site_and_feed(planned, settings, storage):
    story_id, delivery_ids, queue = planned
    assert run_pipeline(settings, storage, queue, delivery_ids) == ["published", "published"]
    for delivery_id in delivery_ids:
        delivery = _state(delivery_id)
        assert delivery.state == "published" and delivery.attempts == 1
        assert delivery.remote_url == f"http://127.0.0.1:8000/site/stories/{story_id}/"
        assert delivery.post_hash and len(delivery.post_hash) == 64
    assert (settings.site_dir / "stories" / str(story_id) / "index.html").exists()
    assert "测试稿件" in (settings.site_dir / "feed.xml").read_text(encoding="utf-8")
    with session_scope() as session:
        assert session.get(Story, story_id).status == "published"


def test_a_redelivered_task_does_nothing(planned, settings, storage):
    _story_id, delivery_ids, queue = planned
    run_pipeline(settings, storage, queue, delivery_ids)
    calls = []
    original = WebsiteChannel.publish
    WebsiteChannel.publish = lambda self, post, account: calls.append(post) or original(self, post, account)
    try:
        for delivery_id in delivery_ids:  # Celery hands every task over again, twice
            for _ in range(2):
                assert dispatch.render_delivery(settings, storage, queue, delivery_id, worker="w2") == "skipped"
                assert dispatch.publish_delivery(settings, storage, queue, delivery_id, worker="w2") == "skipped"
                assert dispatch.reconcile_delivery(settings, storage, queue, delivery_id, worker="w2") == "skipped"
    finally:
        WebsiteChannel.publish = original
    assert calls == []
    assert [_published_transitions(d) for d in delivery_ids] == [1, 1]
    manifest = json.loads((settings.site_dir / "_data" / "website.json").read_text(encoding="utf-8"))
    assert list(manifest["stories"]) == [str(_story_id)]


def test_transient_error_waits_then_retries_with_retry_after(planned, settings, storage, monkeypatch):
    _story_id, delivery_ids, queue = planned
    website_id = delivery_ids[0]
    dispatch.render_delivery(settings, storage, queue, website_id)
    answers = [TransientChannelError("rate limited (HTTP 429)", code="429", retry_after=42.0)]
    original = WebsiteChannel.publish

    def flaky(self, post, account):
        if answers:
            raise answers.pop(0)
        return original(self, post, account)

    monkeypatch.setattr(WebsiteChannel, "publish", flaky)
    assert dispatch.publish_delivery(settings, storage, queue, website_id) == "retry_wait"
    delivery = _state(website_id)
    assert delivery.state == "retry_wait" and delivery.last_error_code == "429"
    wait = (delivery.next_attempt_at - utcnow()).total_seconds()
    assert 40 <= wait <= 42.5  # Retry-After honoured (it is larger than the backoff step)
    assert ("publish", website_id, pytest.approx(42.0, abs=0.01)) in queue.sent
    # Too early: the claim refuses until next_attempt_at.
    assert dispatch.publish_delivery(settings, storage, queue, website_id) == "skipped"
    with session_scope() as session:
        session.execute(update(Delivery).where(Delivery.id == website_id)
                        .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert dispatch.publish_delivery(settings, storage, queue, website_id) == "published"
    assert _state(website_id).attempts == 2


def test_attempts_are_bounded(planned, settings, storage, monkeypatch):
    _story_id, delivery_ids, queue = planned
    website_id = delivery_ids[0]
    dispatch.render_delivery(settings, storage, queue, website_id)

    def down(self, post, account):
        raise TransientChannelError("platform error HTTP 503", code="503")

    monkeypatch.setattr(WebsiteChannel, "publish", down)
    outcomes = []
    for _ in range(settings.max_attempts + 2):
        with session_scope() as session:
            session.execute(update(Delivery).where(Delivery.id == website_id)
                            .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        outcomes.append(dispatch.publish_delivery(settings, storage, queue, website_id))
    assert outcomes[: settings.max_attempts - 1] == ["retry_wait"] * (settings.max_attempts - 1)
    assert outcomes[settings.max_attempts - 1] == "failed"
    assert set(outcomes[settings.max_attempts:]) == {"skipped"}
    delivery = _state(website_id)
    assert delivery.state == "failed" and delivery.attempts == settings.max_attempts
    assert "gave up after 5 attempts" in delivery.last_error


def test_permanent_error_fails_at_once_with_the_platform_code(planned, settings, storage, monkeypatch):
    _story_id, delivery_ids, queue = planned
    rss_id = delivery_ids[1]
    dispatch.render_delivery(settings, storage, queue, rss_id)

    def refuse(self, post, account):
        raise PermanentChannelError("HTTP 403: forbidden", code="20019")

    monkeypatch.setattr(RssChannel, "publish", refuse)
    assert dispatch.publish_delivery(settings, storage, queue, rss_id) == "failed"
    delivery = _state(rss_id)
    assert delivery.state == "failed" and delivery.last_error_code == "20019" and delivery.attempts == 1


@pytest.mark.parametrize("found", [True, False], ids=["posted-after-all", "never-arrived"])
def test_unknown_outcome_is_reconciled_never_blindly_resent(planned, settings, storage, monkeypatch, found):
    _story_id, delivery_ids, queue = planned
    website_id = delivery_ids[0]
    dispatch.render_delivery(settings, storage, queue, website_id)
    sent = []
    original_publish = WebsiteChannel.publish

    def times_out_after_posting(self, post, account):
        sent.append(post.story_id)
        if found:
            original_publish(self, post, account)  # the platform recorded it…
        raise OutcomeUnknownError("no answer in 30s after sending")  # …but we never heard back

    monkeypatch.setattr(WebsiteChannel, "publish", times_out_after_posting)
    assert dispatch.publish_delivery(settings, storage, queue, website_id) == "unknown"
    assert _state(website_id).state == "unknown"
    assert website_id in queue.of("reconcile")
    monkeypatch.setattr(WebsiteChannel, "publish", original_publish)
    outcome = dispatch.reconcile_delivery(settings, storage, queue, website_id)
    if found:
        assert outcome == "published" and len(sent) == 1  # found on the site: not sent again
        assert queue.of("publish").count(website_id) == 1  # only the render's hand-over
    else:
        assert outcome == "ready" and queue.of("publish").count(website_id) == 2
        assert dispatch.publish_delivery(settings, storage, queue, website_id) == "published"
    assert _state(website_id).state == "published"
    assert _published_transitions(website_id) == 1


def test_a_crash_inside_publish_counts_as_unknown(planned, settings, storage, monkeypatch):
    _story_id, delivery_ids, queue = planned
    website_id = delivery_ids[0]
    dispatch.render_delivery(settings, storage, queue, website_id)
    monkeypatch.setattr(WebsiteChannel, "publish", lambda self, post, account: 1 / 0)
    assert dispatch.publish_delivery(settings, storage, queue, website_id) == "unknown"


def test_sweep_resends_lost_messages_and_recovers_dead_workers(planned, settings, storage):
    _story_id, (website_id, rss_id), queue = planned
    queue.sent.clear()
    long_ago = utcnow() - timedelta(hours=1)
    with session_scope() as session:  # the render message of website_id was lost
        session.execute(update(Delivery).where(Delivery.id == website_id).values(updated_at=long_ago))
    counts = dispatch.sweep(settings, queue)
    assert counts["render"] == 1 and queue.of("render") == [website_id]

    # A worker claimed rss_id for rendering and died; another claimed it for publishing and died.
    with session_scope() as session:
        session.execute(update(Delivery).where(Delivery.id == rss_id).values(state="rendering", updated_at=long_ago))
    queue.sent.clear()
    counts = dispatch.sweep(settings, queue)
    assert counts["revived"] == 1 and _state(rss_id).state == "planned" and rss_id in queue.of("render")

    with session_scope() as session:
        session.execute(update(Delivery).where(Delivery.id == rss_id).values(state="publishing", updated_at=long_ago))
    queue.sent.clear()
    counts = dispatch.sweep(settings, queue)
    assert counts["unknown"] == 1 and _state(rss_id).state == "unknown" and queue.of("reconcile") == [rss_id]


def test_sweep_sends_due_retries_to_the_right_stage(planned, settings, storage):
    _story_id, (website_id, rss_id), queue = planned
    past = utcnow() - timedelta(seconds=5)
    future = utcnow() + timedelta(minutes=5)
    with session_scope() as session:
        session.execute(update(Delivery).where(Delivery.id == website_id)
                        .values(state="retry_wait", retry_stage="render", next_attempt_at=past))
        session.execute(update(Delivery).where(Delivery.id == rss_id)
                        .values(state="retry_wait", retry_stage="publish", next_attempt_at=future))
    queue.sent.clear()
    dispatch.sweep(settings, queue)
    assert queue.sent == [("render", website_id, None)]  # rss_id is not due yet


def test_what_the_platform_said_reaches_reconcile_in_any_worker(planned, settings, storage, monkeypatch):
    """公众号: submitted (publish_id known) but still publishing when the poll gave up. The
    publish_id is stored with the delivery; reconcile gets it back, and while the platform
    still says "publishing" the delivery stays unknown and is asked again — never re-sent."""
    _story_id, delivery_ids, queue = planned
    website_id = delivery_ids[0]
    dispatch.render_delivery(settings, storage, queue, website_id)

    def submitted(self, post, account):
        raise OutcomeUnknownError("still publishing after 60s", code="publishing", hint={"publish_id": "p-42"})

    hints = []

    def still_publishing(self, post, account, *, hint=None):
        hints.append(hint)
        if len(hints) == 1:
            raise OutcomeUnknownError("publish p-42 is still publishing", hint={"status": 1})
        return Receipt(remote_id="article-7", url="https://mp.weixin.qq.com/s/abc")

    monkeypatch.setattr(WebsiteChannel, "publish", submitted)
    monkeypatch.setattr(WebsiteChannel, "reconcile", still_publishing)
    assert dispatch.publish_delivery(settings, storage, queue, website_id) == "unknown"
    assert _state(website_id).reconcile_hint == {"publish_id": "p-42"}
    assert dispatch.reconcile_delivery(settings, storage, queue, website_id) == "unknown"
    assert queue.of("reconcile").count(website_id) == 2  # asked again later
    assert dispatch.reconcile_delivery(settings, storage, queue, website_id) == "published"
    assert hints == [{"publish_id": "p-42"}, {"publish_id": "p-42", "status": 1}]
    assert _state(website_id).remote_id == "article-7" and "publish" not in [
        k for k, i, _ in queue.sent[-1:] if i == website_id]


def test_an_outcome_that_never_resolves_stops_at_max_attempts(planned, settings, storage, monkeypatch):
    """A platform that answers "duplicate" but never lists the post (Weibo 20019 with the
    original off the timeline page) must not loop: after max_attempts it fails for a person."""
    _story_id, delivery_ids, queue = planned
    website_id = delivery_ids[0]
    dispatch.render_delivery(settings, storage, queue, website_id)
    monkeypatch.setattr(WebsiteChannel, "publish",
                        lambda self, post, account: (_ for _ in ()).throw(OutcomeUnknownError("duplicate", code="20019")))
    monkeypatch.setattr(WebsiteChannel, "reconcile", lambda self, post, account: None)
    outcomes = []
    for _ in range(settings.max_attempts + 2):
        outcomes.append(dispatch.publish_delivery(settings, storage, queue, website_id))
        outcomes.append(dispatch.reconcile_delivery(settings, storage, queue, website_id))
        if outcomes[-1] == "failed":
            break
    assert outcomes[-1] == "failed" and outcomes.count("unknown") == settings.max_attempts
    delivery = _state(website_id)
    assert (delivery.state, delivery.last_error_code) == ("failed", "unreconciled")


def test_nothing_to_encode_renders_and_publishes_in_one_publish_queue_task(approved_story, settings, storage):
    """Review made the renditions, so a release sends `deliver` (publish queue): render and
    publish in one task. Renditions missing from the cache send `render` (media queue)."""
    from services.models import RenditionRecord

    queue = RecordingQueue()
    with session_scope() as session:
        plan = dispatch.plan_publication(session, queue, approved_story)
    assert [k for k, _, _ in queue.sent] == ["deliver", "deliver"]
    assert sorted(map(sorted, queue.batches)) == [[i] for i in sorted(plan.created)]  # website, rss: a task each
    assert [dispatch.deliver(settings, storage, queue, b) for b in queue.batches] == [
        {b[0]: "published"} for b in queue.batches]
    assert "publish" not in [k for k, _, _ in queue.sent]  # published inline, no second message

    from services.accounts import add_account

    with session_scope() as session:
        add_account(session, settings, "website", "镇网站")  # two more accounts…
        add_account(session, settings, "rss", "镇RSS")
        session.query(RenditionRecord).delete()  # …and an empty rendition cache
    queue = RecordingQueue()
    with session_scope() as session:
        again = dispatch.plan_publication(session, queue, approved_story)
    assert len(again.created) == 2 and [k for k, _, _ in queue.sent] == ["render", "render"]
