"""Never twice, never lost — on real worker processes and the run's broker, against a fake.

The platform is the signed-webhook fake with a status endpoint (tests/fakes/webhook.py): every
POST is logged with its idempotency key, so "posted twice" would show as two POSTs of one key
even though a receiver dedupes. Faults: a publish worker killed with SIGKILL while requests
are in flight (three times), two publish workers on one queue, the platform answering only
after the client gave up (it recorded the post), and — on Redis — the broker restarted
mid-run. The sweep (beat's job, run here by the test every few seconds) takes over the
claims of dead workers: with FANOUT_PUBLISH_TIME_LIMIT=4 and a 2 s margin a claim is dead
after 6 s, while no live request can outlast the accounts' 3 s read timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

import worker
from services import dispatch, processes
from services.accounts import add_account
from services.config import get_settings, reset_settings
from services.db import session_scope
from services.models import Delivery, DeliveryLog
from tests.fakes.webhook import FakeWebhookReceiver
from tests.helpers import approve, make_story

pytestmark = pytest.mark.celery

SECRET = "reliability-secret"
ACCOUNTS = 4
STORIES = 3


@pytest.fixture
def chaos_settings(home, monkeypatch):
    monkeypatch.setenv("FANOUT_PUBLISH_TIME_LIMIT", "4")
    monkeypatch.setenv("FANOUT_LEASE_MARGIN_SECONDS", "2")
    monkeypatch.setenv("FANOUT_STALE_SECONDS", "3")
    monkeypatch.setenv("FANOUT_RETRY_BASE_SECONDS", "0.5")
    reset_settings()
    return get_settings()


def _setup(settings, storage, tmp_path, fake: FakeWebhookReceiver, accounts: int = ACCOUNTS,
           stories: int = STORIES) -> list[int]:
    with session_scope() as session:
        for n in range(accounts):
            add_account(session, settings, "webhook", f"合作平台{n + 1}", api_base=fake.hook_url,
                        credentials={"secret": SECRET},
                        account_settings={"status_url": fake.status_url, "read_timeout": "3",
                                          "connect_timeout": "1"})
        ids = [make_story(session, storage, tmp_path, title=f"可靠性测试稿件{n + 1}") for n in range(stories)]
    for story_id in ids:
        approve(settings, storage, story_id)
    return ids


def _posts_per_key(fake: FakeWebhookReceiver) -> Counter[str]:
    return Counter(r.json["idempotency_key"] for r in fake.requests
                   if r.method == "POST" and r.json and r.json.get("event") == "story.published")


def _wait_all_published(settings, story_ids: list[int], timeout: float) -> list[dict]:
    """Run the sweep as beat would (every 2 s) until every delivery is final."""
    queue = worker.task_queue()
    deadline = time.monotonic() + timeout
    while True:
        dispatch.sweep(settings, queue)
        with session_scope() as session:
            views = [dispatch.delivery_view(d) for sid in story_ids for d in dispatch.deliveries_for(session, story_id=sid)]
        if views and all(v["state"] in ("published", "failed") for v in views):
            return views
        if time.monotonic() > deadline:
            raise AssertionError("not final: " + ", ".join(f"#{v['id']}={v['state']}" for v in views
                                                        if v["state"] != "published"))
        time.sleep(2)


def _assert_exactly_once(fake: FakeWebhookReceiver, views: list[dict], expected: int) -> None:
    assert [v["state"] for v in views] == ["published"] * expected, views
    posts = _posts_per_key(fake)
    assert len(posts) == expected and set(posts.values()) == {1}, posts  # one POST per post, ever
    ids = [v["id"] for v in views]
    with session_scope() as session:
        published = session.execute(select(DeliveryLog.delivery_id, func.count()).where(
            DeliveryLog.delivery_id.in_(ids), DeliveryLog.to_state == "published")
            .group_by(DeliveryLog.delivery_id)).all()
    assert sorted(published) == sorted((i, 1) for i in ids)


def _publishing_now() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Delivery).where(Delivery.state == "publishing")) or 0


def test_kill_9_of_a_publish_worker_in_flight_never_posts_twice(chaos_settings, storage, tmp_path):
    settings = chaos_settings
    with FakeWebhookReceiver(SECRET) as fake:
        fake.latency = 1.0  # every request is in flight for a second
        story_ids = _setup(settings, storage, tmp_path, fake)
        children = processes.start_workers(settings, tag="chaos")
        try:
            processes.wait_for_queues({"media", "publish"}, timeout=90, children=children)
            queue = worker.task_queue()
            for story_id in story_ids:
                with session_scope() as session:
                    dispatch.plan_publication(session, queue, story_id)
            kills = 0
            deadline = time.monotonic() + 120
            while kills < 3 and time.monotonic() < deadline:
                if _publishing_now() and fake.requests:
                    time.sleep(0.3)  # requests are on the wire
                    publish = children[1]
                    os.killpg(publish.process.pid, signal.SIGKILL)
                    publish.process.wait(timeout=10)
                    kills += 1
                    children[1] = processes.start(publish.name, [*processes.PUBLISH_WORKER, "--name",
                                                                 f"publish-chaos{kills}.{os.getpid()}@%h"], settings)
                    continue
                dispatch.sweep(settings, queue)
                time.sleep(0.2)
            assert kills == 3, "the publish worker was never caught mid-flight"
            views = _wait_all_published(settings, story_ids, timeout=150)
        finally:
            processes.stop(children, grace=10)
        _assert_exactly_once(fake, views, ACCOUNTS * STORIES)
        with session_scope() as session:
            taken_over = session.scalar(select(func.count()).select_from(DeliveryLog).where(
                DeliveryLog.to_state == "unknown"))
        assert taken_over >= 1  # some claims really died with the worker and were reconciled


def test_two_workers_one_queue_and_a_platform_that_answers_too_late(chaos_settings, storage, tmp_path):
    """Two publish workers race for every task; the fake records the first posts and then
    answers only after the client's 3 s timeout: outcome unknown → reconciled → published."""
    settings = chaos_settings
    with FakeWebhookReceiver(SECRET) as fake:
        story_ids = _setup(settings, storage, tmp_path, fake, accounts=3, stories=2)
        fake.misbehave("hang_after", path="/hooks/fanout", seconds=4.0, times=2)
        children = processes.start_workers(settings, tag="pair")
        children.append(processes.start("worker-publish-pair2", [*processes.PUBLISH_WORKER, "--name",
                                                                  f"publish-pair2.{os.getpid()}@%h"], settings))
        try:
            processes.wait_for_queues({"media", "publish"}, timeout=90, children=children)
            queue = worker.task_queue()
            for story_id in story_ids:
                with session_scope() as session:
                    plan = dispatch.plan_publication(session, queue, story_id)
                for delivery_id in plan.created:  # and every publish handed over twice more
                    queue.publish(delivery_id)
                    queue.publish(delivery_id)
            views = _wait_all_published(settings, story_ids, timeout=150)
        finally:
            processes.stop(children, grace=10)
        _assert_exactly_once(fake, views, 6)
        with session_scope() as session:
            reconciled = session.scalars(select(DeliveryLog.message).where(
                DeliveryLog.message.like("reconciled: found%"))).all()
        assert len(reconciled) >= 2, "the two late answers were found by asking the platform"


def test_redis_restarted_mid_run_loses_nothing(chaos_settings, storage, tmp_path, monkeypatch):
    """On Redis in both suite passes (the embedded broker has no server to restart): the
    broker is shut down without saving while posts are in flight and started again; the
    tasks it held are gone, the database still knows every delivery, the sweep re-sends."""
    import uuid

    from tests.conftest import ensure_redis

    ensure_redis()
    monkeypatch.setenv("FANOUT_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("FANOUT_BROKER_PREFIX", f"t{uuid.uuid4().hex[:10]}:")
    reset_settings()
    settings = get_settings()
    with FakeWebhookReceiver(SECRET) as fake:
        fake.latency = 0.5
        story_ids = _setup(settings, storage, tmp_path, fake, accounts=3, stories=2)
        children = processes.start_workers(settings, tag="redis")
        try:
            processes.wait_for_queues({"media", "publish"}, timeout=90, children=children)
            queue = worker.task_queue()
            for story_id in story_ids:
                with session_scope() as session:
                    dispatch.plan_publication(session, queue, story_id)
            deadline = time.monotonic() + 60
            while not fake.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, timeout=10)
            time.sleep(1.0)
            subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
                            "--save", "", "--appendonly", "no"], check=True, timeout=10, cwd="/")  # outlives this checkout
            views = _wait_all_published(settings, story_ids, timeout=180)
        finally:
            processes.stop(children, grace=10)
        _assert_exactly_once(fake, views, 6)
