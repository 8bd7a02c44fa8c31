"""services/logs.py: JSON lines with the ids bound in the current context, and nothing leaking
out of a scoped function or across threads."""

from __future__ import annotations

import json
import logging
import threading

from services import logs


def _format(message: str, **extra: object) -> dict:
    record = logging.LogRecord("fanout.test", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(logs.JsonFormatter().format(record))


def test_a_line_carries_the_bound_ids_and_only_inside_the_scope():
    @logs.scoped
    def work() -> dict:
        logs.bind(delivery_id=7, story_id=3, account_id=None)
        return _format("published 公众号")

    with logs.bound(task_id="t-1", task="fanout.deliver"):
        inside = work()
        after = _format("after")
    assert inside["delivery_id"] == 7 and inside["story_id"] == 3 and "account_id" not in inside
    assert inside["task_id"] == "t-1" and inside["msg"] == "published 公众号" and inside["level"] == "warning"
    assert "delivery_id" not in after and after["task_id"] == "t-1"
    assert "task_id" not in _format("outside")
    assert _format("x", delivery_id=9)["delivery_id"] == 9  # extra= per call


def test_threads_do_not_see_each_others_ids():
    seen = {}

    def run(n: int) -> None:
        with logs.bound(delivery_id=n):
            seen[n] = _format("x")["delivery_id"]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {n: n for n in range(5)}
