"""Per-account spacing shared by every process: both backends, several processes at once."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from channels.base import AccountData
from services import ratelimit
from tests.conftest import ensure_redis


def _hammer(kind: str, target: str, key: str, interval: float, until: float, out) -> None:  # noqa: ANN001
    limiter = ratelimit.RedisLimiter(target) if kind == "redis" else ratelimit.FileLimiter(__import__("pathlib").Path(target))
    got = []
    while time.time() < until:
        if limiter.try_acquire(key, interval) == 0:
            got.append(time.time())
        time.sleep(0.005)
    out.put(got)


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_four_processes_share_one_accounts_budget(kind, tmp_path):
    """Four processes hammer one account allowed one post per 0.25 s until a shared deadline
    2.5 s away: together they get at most one slot per 0.25 s of that window (without the shared
    limit each would get hundreds). Counted, not timed: a process may be descheduled between
    taking a slot and reading the clock, so recorded times are not the limiter's."""
    if kind == "redis":
        ensure_redis()
        target = "redis://127.0.0.1:6379/15"
    else:
        target = str(tmp_path / "rate.json")
    key = f"account:test-{time.time_ns()}"
    interval = 0.25
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    until = time.time() + 2.5
    procs = [context.Process(target=_hammer, args=(kind, target, key, interval, until, out)) for _ in range(4)]
    for p in procs:
        p.start()
    slots = [t for _ in procs for t in out.get(timeout=30)]
    for p in procs:
        p.join(30)
    assert 5 <= len(slots) <= int(2.6 / interval) + 1, len(slots)  # used, never over the budget


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
    assert ratelimit.account_interval(Weibo, plain.settings) == 120.0
    assert ratelimit.account_interval(Weibo, strict.settings) == 600.0


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
