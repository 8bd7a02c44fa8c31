"""Two beat processes by mistake (two hosts both running `fanout beat`) release each due slot once.

Both beats tick every second against the same database and broker; the publish worker runs the
ticks on threads, so ticks overlap. Every due slot — three series issues and one explicit
schedule — must be released once, its deliveries planned once and published once.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from services import dispatch, processes, schedule
from services.db import session_scope
from services.models import Delivery, DeliveryLog, Slot
from tests.helpers import add_site_accounts, approve, desk, make_story

pytestmark = pytest.mark.celery
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_two_beats_release_every_due_slot_exactly_once(workers, settings, storage, tmp_path):
    due = (datetime.now(SHANGHAI) - timedelta(minutes=1)).replace(second=0, microsecond=0)
    before = due - timedelta(minutes=10)
    story_ids = []
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
        schedule.add_campaign(session, "群众满意度提升行动", label_template="群众满意度提升行动之{theme}篇")
        for index in range(3):
            schedule.add_series(session, settings, f"栏目{index}", campaign="群众满意度提升行动", kind="图文",
                                cadence_name="daily", start=due.date(), release_time=f"{due:%H:%M}", count=2)
        for index in range(4):
            story_ids.append(make_story(session, storage, tmp_path, title=f"双 beat 稿件{index}",
                                        campaign="群众满意度提升行动"))
    for story_id in story_ids:
        approve(settings, storage, story_id)
    with session_scope() as session:
        for index, story_id in enumerate(story_ids[:3]):
            schedule.queue_story(session, story_id, f"栏目{index}", day=due.date(), now=before)
        schedule.schedule_story(session, story_ids[3], due, ["website/网站", "rss/RSS"], now=before)

    beats = [processes.start(f"beat-{name}", ["beat", "--schedule", str(tmp_path / f"beat-{name}.db")], settings,
                             env={"FANOUT_TICK_SECONDS": "1"}) for name in ("a", "b")]
    try:
        rows = dispatch.wait_until_final(story_ids, timeout=180)
        time.sleep(4)  # both beats keep ticking over the released slots
    finally:
        processes.stop(beats, grace=10)

    assert len(rows) == 8 and {r["state"] for r in rows} == {"published"}, rows
    with session_scope() as session:
        slots = session.scalars(select(Slot).where(Slot.story_id.in_(story_ids))).all()
        assert sorted(s.state for s in slots) == ["released"] * 4
        deliveries = session.scalars(select(Delivery).where(Delivery.story_id.in_(story_ids))).all()
        assert len(deliveries) == 8
        published = session.scalar(select(func.count()).select_from(DeliveryLog)
                                   .where(DeliveryLog.delivery_id.in_([d.id for d in deliveries]),
                                          DeliveryLog.to_state == "published"))
        assert published == 8  # each delivery published once
    for beat in beats:  # both beats really ran and sent ticks
        log = beat.log_path.read_text(encoding="utf-8", errors="replace")
        assert log.count("Sending due task tick") >= 3, log[-2000:]
