"""Per-account spacing shared by every process: both backends, several processes at once."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from channels.base import AccountData
from services import ratelimit
from tests.conftest import ensure_redis


def _hammer(kind: str, target: str, key: str, interval: float, seconds: float, out) -> None:  # noqa: ANN001
    limiter = ratelimit.RedisLimiter(target) if kind == "redis" else ratelimit.FileLimiter(__import__("pathlib").Path(target))
    got = 0
    end = time.time() + seconds
    while time.time() < end:
        if limiter.try_acquire(key, interval) == 0:
            got += 1
        time.sleep(0.005)
    out.put(got)


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_four_processes_share_one_accounts_budget(kind, tmp_path):
    if kind == "redis":
        ensure_redis()
        target = "redis://127.0.0.1:6379/15"
    else:
        target = str(tmp_path / "rate.json")
    key = f"account:test-{time.time_ns()}"
    out = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(target=_hammer, args=(kind, target, key, 0.25, 2.0, out))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    total = sum(out.get(timeout=5) for _ in procs)
    # 2 s at one post per 0.25 s: 8 slots (+1 at the edge), whatever the number of processes
    assert 7 <= total <= 9, total


def test_a_refused_caller_is_told_how_long_to_wait(tmp_path):
    limiter = ratelimit.FileLimiter(tmp_path / "rate.json")
    assert limiter.try_acquire("a", 60) == 0
    wait = limiter.try_acquire("a", 60)
    assert 59 < wait <= 60
    assert limiter.try_acquire("b", 60) == 0  # accounts are independent
    assert limiter.try_acquire("a", 0) == 0  # no limit, no bookkeeping


def test_the_interval_is_the_strictest_of_channel_and_account():
    class Weibo:
        min_seconds_between_requests = 1.0
        posts_per_hour = 30

    plain = AccountData(id=1, channel="weibo", name="a")
    strict = AccountData(id=2, channel="weibo", name="b", settings={"posts_per_hour": "6"})
    assert ratelimit.account_interval(Weibo, plain) == 120.0
    assert ratelimit.account_interval(Weibo, strict) == 600.0


def test_a_throttled_publish_comes_back_later_and_changes_nothing(home, settings, storage, tmp_path):
    from services import dispatch
    from services.accounts import add_account
    from services.db import session_scope
    from services.models import Delivery, utcnow
    from tests.helpers import RecordingQueue, approve, make_story

    with session_scope() as session:
        add_account(session, settings, "website", "限速网站", account_settings={"min_interval_seconds": "3600"})
        first = make_story(session, storage, tmp_path, title="第一篇")
        second = make_story(session, storage, tmp_path, title="第二篇")
    approve(settings, storage, first)
    approve(settings, storage, second)
    queue = RecordingQueue()
    ids = []
    for story_id in (first, second):
        with session_scope() as session:
            ids += dispatch.plan_publication(session, queue, story_id).created
    for delivery_id in ids:
        dispatch.render_delivery(settings, storage, queue, delivery_id, worker="t")
    assert dispatch.publish_delivery(settings, storage, queue, ids[0], worker="t") == "published"
    assert dispatch.publish_delivery(settings, storage, queue, ids[1], worker="t") == "throttled"
    later = [c for k, i, c in queue.sent if k == "publish" and i == ids[1]]
    assert later and later[-1] == min(settings.retry_max_seconds, later[-1]) and later[-1] > 0
    with session_scope() as session:
        delivery = session.get(Delivery, ids[1])
        assert (delivery.state, delivery.attempts, delivery.retry_stage) == ("retry_wait", 0, "publish")
        waited = (delivery.next_attempt_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)).total_seconds()
        assert 3580 < waited <= 3606  # the sweep sends it when the account's slot comes, not before
    assert dispatch.publish_delivery(settings, storage, queue, ids[1], worker="t") == "skipped"  # not due yet
