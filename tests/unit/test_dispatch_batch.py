"""The publish queue's group path (services/dispatch.py `deliver`) against the webhook fake.

A release to many accounts of one channel goes out as a few `deliver` tasks of up to
`publish_batch_size` deliveries: the channel renders once per group, the posts go out
concurrently, and each delivery still ends in exactly the state the single path would give it
— published once, retry_wait, failed with the platform's reason, or unknown and reconciled.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from services import dispatch, rendering
from services.accounts import add_account
from services.db import session_scope
from services.models import Delivery, DeliveryLog, Story, utcnow
from tests.fakes.webhook import FakeWebhookReceiver
from tests.helpers import RecordingQueue, approve, make_story

SECRET = "whsec-batch-0123456789"


@pytest.fixture
def fake():
    with FakeWebhookReceiver(SECRET) as server:
        yield server


def _accounts(settings, fake, count: int, **extra) -> list[int]:  # noqa: ANN001
    with session_scope() as session:
        return [add_account(session, settings, "webhook", f"乡镇融媒{n + 1:02d}", api_base=fake.hook_url,
                            credentials={"secret": SECRET},
                            account_settings={"status_url": fake.status_url, "media_base_url": "http://127.0.0.1/m/",
                                              "read_timeout": 1, **extra}).id
                for n in range(count)]


def _approved_story(settings, storage, tmp_path) -> int:  # noqa: ANN001
    with session_scope() as session:
        story_id = make_story(session, storage, tmp_path)
    approve(settings, storage, story_id)
    return story_id


def _states(ids: list[int]) -> dict[int, Delivery]:
    with session_scope() as session:
        return {d.id: d for d in session.scalars(select(Delivery).where(Delivery.id.in_(ids)))}


def test_a_fan_out_is_a_few_group_tasks_each_rendering_once(home, settings, storage, tmp_path, fake, monkeypatch):
    _accounts(settings, fake, 12)
    story_id = _approved_story(settings, storage, tmp_path)
    renders = Counter()
    real_render = rendering.render
    monkeypatch.setattr(rendering, "render", lambda channel, story, renditions: (
        renders.update([channel]), real_render(channel, story, renditions))[1])
    queue = RecordingQueue()
    with session_scope() as session:
        plan = dispatch.plan_publication(session, queue, story_id, batch_size=5)
    assert [len(b) for b in queue.batches] == [5, 5, 2]
    assert sorted(i for b in queue.batches for i in b) == sorted(plan.created)

    outcomes = {}
    for batch in queue.batches:
        outcomes.update(dispatch.deliver(settings, storage, queue, batch, worker="w1"))
    assert set(outcomes.values()) == {"published"} and len(outcomes) == 12
    assert renders["webhook"] == 3  # once per group, not once per account
    assert len(fake.posts) == 12 and set(fake.posts.values()) == {1}  # twelve accounts, each posted once
    assert "publish" not in [k for k, _, _ in queue.sent]  # no second message per delivery
    states = _states(plan.created)
    assert {d.state for d in states.values()} == {"published"}
    assert all(d.attempts == 1 and d.remote_id and d.claimed_by == "w1" for d in states.values())
    with session_scope() as session:
        assert session.get(Story, story_id).status == "published"
        trail = Counter((log.from_state, log.to_state) for log in session.scalars(
            select(DeliveryLog).where(DeliveryLog.delivery_id.in_(plan.created))))
    # the state machine's trail, one row per delivery per step, as on the single path
    assert trail == Counter({("-", "planned"): 12, ("planned", "rendering"): 12, ("rendering", "ready"): 12,
                             ("ready", "publishing"): 12, ("publishing", "published"): 12})

    # the broker delivers a task twice (acks_late after a lost worker): nothing is claimed again
    assert set(dispatch.deliver(settings, storage, queue, queue.batches[0], worker="w2").values()) == {"skipped"}
    assert len(fake.posts) == 12 and set(fake.posts.values()) == {1}


def test_a_channel_caps_how_many_posts_a_task_sends_at_once(home, settings, storage, tmp_path, fake,
                                                            monkeypatch):
    from channels.webhook import WebhookChannel

    monkeypatch.setattr(WebhookChannel, "max_parallel_posts", 3)
    _accounts(settings, fake, 7)
    story_id = _approved_story(settings, storage, tmp_path)
    queue = RecordingQueue()
    with session_scope() as session:
        dispatch.plan_publication(session, queue, story_id, batch_size=20)
    assert [len(b) for b in queue.batches] == [3, 3, 1]


def test_each_delivery_of_a_group_gets_its_own_outcome(home, settings, storage, tmp_path, fake):
    """One group, four answers: 200, 503 (transient), 400 (permanent), and a receiver that
    records the post but answers too late (outcome unknown → reconciled, never re-sent)."""
    _accounts(settings, fake, 6)
    story_id = _approved_story(settings, storage, tmp_path)
    queue = RecordingQueue()
    with session_scope() as session:
        plan = dispatch.plan_publication(session, queue, story_id, batch_size=10)
    assert len(queue.batches) == 1
    fake.misbehave("status", status=503)
    fake.misbehave("status", status=400)
    fake.misbehave("hang_after", seconds=2.0)
    outcomes = dispatch.deliver(settings, storage, queue, queue.batches[0], worker="w1")
    assert Counter(outcomes.values()) == Counter({"published": 3, "retry_wait": 1, "failed": 1, "unknown": 1})
    states = _states(plan.created)
    by_outcome = {outcome: states[i] for i, outcome in outcomes.items() if outcome != "published"}
    assert by_outcome["failed"].last_error_code == "400"
    assert by_outcome["retry_wait"].retry_stage == "publish" and by_outcome["retry_wait"].next_attempt_at
    retry = [(i, c) for k, i, c in queue.sent if k == "publish"]
    assert retry and retry[0][0] == by_outcome["retry_wait"].id and retry[0][1] > 0  # sent back with a delay
    unknown_id = by_outcome["unknown"].id
    assert queue.of("reconcile") == [unknown_id]

    # the late answer had been recorded: reconcile finds it, and nothing is posted twice
    assert dispatch.reconcile_delivery(settings, storage, queue, unknown_id, worker="w1") == "published"
    retry_id = by_outcome["retry_wait"].id
    assert dispatch.publish_delivery(settings, storage, queue, retry_id, worker="w1") == "skipped"  # not due yet
    with session_scope() as session:  # its backoff has passed
        session.execute(update(Delivery).where(Delivery.id == retry_id).values(
            next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert dispatch.publish_delivery(settings, storage, queue, retry_id, worker="w1") == "published"
    assert set(fake.posts.values()) == {1}


def test_rate_limited_and_outbox_accounts_continue_alone(home, settings, storage, tmp_path, fake):
    """An account with a posting interval waits for its slot on the single path; one without
    credentials gets an outbox package there; the rest of the group is sent at once."""
    plain = _accounts(settings, fake, 2)
    with session_scope() as session:
        limited = add_account(session, settings, "webhook", "限频账号", api_base=fake.hook_url,
                              credentials={"secret": SECRET},
                              account_settings={"min_interval_seconds": 30, "status_url": fake.status_url}).id
        by_hand = add_account(session, settings, "webhook", "无密钥账号", api_base=fake.hook_url).id
    story_id = _approved_story(settings, storage, tmp_path)
    queue = RecordingQueue()
    with session_scope() as session:
        plan = dispatch.plan_publication(session, queue, story_id)
    outcomes = dispatch.deliver(settings, storage, queue, queue.batches[0], worker="w1")
    account_of = {d.id: d.account_id for d in _states(plan.created).values()}
    by_account = {account_of[i]: outcome for i, outcome in outcomes.items()}
    assert by_account == {plain[0]: "published", plain[1]: "published", limited: "handed-on", by_hand: "handed-on"}
    handed = sorted(i for i, a in account_of.items() if a in (limited, by_hand))
    assert sorted(queue.of("publish")) == handed
    assert {d.state for i, d in _states(handed).items()} == {"ready"}
    outbox_id = next(i for i, a in account_of.items() if a == by_hand)
    assert dispatch.publish_delivery(settings, storage, queue, outbox_id, worker="w1") == "outbox"
    assert len(fake.posts) == 2


def test_a_delivery_left_ready_by_a_lost_run_is_handed_to_the_single_path(home, settings, storage, tmp_path, fake):
    _accounts(settings, fake, 3)
    story_id = _approved_story(settings, storage, tmp_path)
    queue = RecordingQueue()
    with session_scope() as session:
        plan = dispatch.plan_publication(session, queue, story_id)
    first = plan.created[0]
    # an earlier run rendered it (its own publish message lost with it)
    assert dispatch.render_delivery(settings, storage, RecordingQueue(), first, worker="lost") == "ready"
    outcomes = dispatch.deliver(settings, storage, queue, queue.batches[0], worker="w1")
    assert outcomes[first] == "handed-on" and queue.of("publish") == [first]
    assert [outcomes[i] for i in plan.created[1:]] == ["published", "published"]
    assert dispatch.publish_delivery(settings, storage, queue, first, worker="w1") == "published"
    assert len(fake.posts) == 3 and set(fake.posts.values()) == {1}
