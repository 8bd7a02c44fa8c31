"""The pipeline on real Celery worker processes (media: prefork, publish: threads) on the
run's broker — kombu's filesystem transport, or Redis when FANOUT_TEST_BROKER=redis.

A story with a cover and a video is planned through the Celery task queue, rendered on the
media queue, published on the publish queue. Then every task is delivered again (as Celery
may after a lost ack): nothing is published twice.
"""

from __future__ import annotations

import json
import time

import feedparser
import pytest
from sqlalchemy import select

import worker
from services import dispatch
from services.db import session_scope
from services.models import DeliveryLog
from tests.helpers import add_site_accounts, approve, make_story

pytestmark = pytest.mark.celery


def test_real_workers_render_and_publish_then_ignore_redelivered_tasks(workers, settings, storage, tmp_path):
    queue = worker.task_queue()
    with session_scope() as session:
        add_site_accounts(session, settings)
        story_id = make_story(session, storage, tmp_path, title="真实进程发布", with_video=True)
    approve(settings, storage, story_id)
    with session_scope() as session:
        plan = dispatch.plan_publication(session, queue, story_id)
    rows = dispatch.wait_until_final([story_id], timeout=180)
    assert [r["state"] for r in rows] == ["published", "published"], rows
    page = (settings.site_dir / "stories" / str(story_id) / "index.html").read_text(encoding="utf-8")
    assert "真实进程发布" in page and "<video" in page and "poster=" in page
    feed = feedparser.parse(str(settings.site_dir / "feed.xml"))
    assert feed.bozo == 0 and feed.entries[0].enclosures[0]["type"] == "video/mp4"

    # Publishing again plans nothing new.
    with session_scope() as session:
        again = dispatch.plan_publication(session, queue, story_id)
    assert again.created == [] and sorted(again.existing) == sorted(plan.created)

    # Every task handed over again, twice, as a broker may after a lost ack.
    for delivery_id in plan.created:
        for _ in range(2):
            queue.render(delivery_id)
            queue.publish(delivery_id)
            queue.reconcile(delivery_id)
    time.sleep(6)  # let the workers consume them all
    with session_scope() as session:
        logs = session.scalars(select(DeliveryLog).where(DeliveryLog.delivery_id.in_(plan.created))).all()
    published = [log for log in logs if log.to_state == "published"]
    assert len(published) == 2 and len({log.delivery_id for log in published}) == 2
    assert [r["state"] for r in dispatch.wait_until_final([story_id], timeout=5)] == ["published", "published"]
    manifest = json.loads((settings.site_dir / "_data" / "website.json").read_text(encoding="utf-8"))
    assert list(manifest["stories"]) == [str(story_id)]


def test_worker_logs_are_json_lines_with_the_ids(workers, settings, storage, tmp_path):
    """services/logs.py: each line one JSON object; a delivery's lines carry its task, delivery,
    story and account ids, so ops can follow one delivery through the logs."""
    queue = worker.task_queue()
    with session_scope() as session:
        add_site_accounts(session, settings)
        story_id = make_story(session, storage, tmp_path, title="日志测试")
    approve(settings, storage, story_id)
    with session_scope() as session:
        plan = dispatch.plan_publication(session, queue, story_id)
    dispatch.wait_until_final([story_id], timeout=120)
    time.sleep(1)
    lines = [line for child in workers for line in child.log_path.read_text(encoding="utf-8").splitlines()
             if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    published = [e for e in entries if e["msg"].startswith("delivery ") and " published on " in e["msg"]]
    assert sorted(e["delivery_id"] for e in published) == sorted(plan.created)
    for entry in published:
        assert entry["story_id"] == story_id and entry["account_id"] and entry["task_id"]
        assert entry["task"] in ("fanout.deliver", "fanout.publish_delivery") and entry["level"] == "info"


def test_workers_report_heartbeats_on_their_queues(workers, settings):
    from services.ops import live_workers

    with session_scope() as session:
        alive = live_workers(session)
    queues = {q for w in alive for q in w.queues.split(",")}
    assert {"media", "publish"} <= queues
    pools = {w.queues: w.pool for w in alive}
    assert pools["media"] == "prefork" and pools["publish"] == "thread"


def test_heartbeats_carry_load_memory_and_task_counts(workers, settings):
    """Each worker's heartbeat reports the host's load, its memory and its finished tasks — on
    the prefork pool too, whose tasks run in child processes."""
    import os

    from services.ops import live_workers

    queue = worker.task_queue()
    queue.prepare_review(999_999)  # media queue (prefork): no such version, done at once
    queue.reconcile(999_999)  # publish queue (threads): no such delivery, skipped at once
    deadline = time.monotonic() + 60
    while True:
        with session_scope() as session:
            alive = {w.queues: w for w in live_workers(session)}
        if all(alive.get(q) is not None and (alive[q].tasks_done or 0) >= 1 for q in ("media", "publish")):
            break
        assert time.monotonic() < deadline, {q: (w.tasks_active, w.tasks_done) for q, w in alive.items()}
        time.sleep(0.5)
    for w in alive.values():
        assert w.load_1m is not None and w.load_1m >= 0 and w.cpu_count == os.cpu_count()
        assert w.rss_bytes > 20 * 1024 * 1024  # a Celery worker with its pool, not a made-up number
        assert w.tasks_active >= 0


def test_redis_keys_carry_the_install_prefix(workers, settings):
    """Two installs (or two test runs) sharing one Redis never consume each other's tasks."""
    if not settings.broker_url:
        assert worker.celery_config(settings)["broker_url"] == "filesystem://"
        return
    import redis

    assert settings.broker_prefix
    options = worker.celery_config(settings)["broker_transport_options"]
    assert options["global_keyprefix"] == settings.broker_prefix
    worker.task_queue().reconcile(999_999)  # a task nobody can act on
    keys = [k.decode() for k in redis.Redis.from_url(settings.broker_url).keys("*")]
    assert keys and all(k.startswith(settings.broker_prefix) or k.startswith("_kombu") for k in keys), keys
