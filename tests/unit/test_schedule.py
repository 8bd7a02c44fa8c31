"""Series, slots, queueing and the release tick, on SQLite and PostgreSQL.

Each due slot is released exactly once however often or however late tick runs, and however
many ticks run at once (two threads, two database sessions); a very late slot becomes missed;
an empty slot past due is flagged missed; a freeze holds releases and queued deliveries and a
resume lets them go; only approved stories are queued.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from services import schedule
from services.db import session_scope
from services.errors import NotApproved, PermissionDenied, ValidationError
from services.models import AuditEvent, Delivery, Slot
from services.users import create_user
from tests.helpers import RecordingQueue, add_site_accounts, approve, desk, make_story

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = date(2026, 9, 28)  # a Monday; National Day 2026 follows


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SHANGHAI)


@pytest.fixture
def series_id(home, settings):
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
        schedule.add_campaign(session, "群众满意度提升行动", label_template="群众满意度提升行动之{theme}篇")
        return schedule.add_series(session, settings, "图文报道", campaign="群众满意度提升行动", kind="图文",
                                   cadence_name="daily", start=START, release_time="08:00", count=6).id


CAMPAIGN = "群众满意度提升行动"


def approved_story(settings, storage, tmp_path, title="排期稿件"):
    with session_scope() as session:
        story_id = make_story(session, storage, tmp_path, title=title, campaign=CAMPAIGN)
    approve(settings, storage, story_id)
    return story_id


def test_slots_are_laid_out_with_issue_numbers(series_id):
    with session_scope() as session:
        slots = schedule.slots_of(session, series_id)
    assert [(s.day, s.issue_number) for s in slots] == [(START + timedelta(days=i), i + 1) for i in range(6)]
    assert all(s.release_at == at(s.day, 8) and s.state == "open" for s in slots)


def test_only_approved_stories_are_queued(series_id, settings, storage, tmp_path):
    with session_scope() as session:
        draft = make_story(session, storage, tmp_path, title="未审稿件")
    with pytest.raises(NotApproved):
        with session_scope() as session:
            schedule.queue_story(session, draft, "图文报道", now=at(START, 0))
    first = approved_story(settings, storage, tmp_path, "第一篇")
    second = approved_story(settings, storage, tmp_path, "第二篇")
    with session_scope() as session:
        slot = schedule.queue_story(session, first, "图文报道", now=at(START, 0))
        assert (slot.day, slot.issue_number, slot.state) == (START, 1, "filled")
    with session_scope() as session:
        slot = schedule.queue_story(session, second, "图文报道", now=at(START, 0))
        assert (slot.day, slot.issue_number) == (START + timedelta(days=1), 2)
    with pytest.raises(ValidationError, match="no open slot"):
        with session_scope() as session:  # the given day is already taken
            schedule.queue_story(session, approved_story(settings, storage, tmp_path, "第三篇"), "图文报道",
                                 day=START, now=at(START, 0))


def _queue_first(settings, storage, tmp_path):
    story_id = approved_story(settings, storage, tmp_path)
    with session_scope() as session:
        schedule.queue_story(session, story_id, "图文报道", now=at(START, 0))
    return story_id


def _deliveries(story_id):
    with session_scope() as session:
        return session.scalars(select(Delivery).where(Delivery.story_id == story_id)).all()


def test_a_due_slot_is_released_once_however_often_tick_runs(series_id, settings, storage, tmp_path):
    story_id = _queue_first(settings, storage, tmp_path)
    queue = RecordingQueue()
    with session_scope() as session:
        early = schedule.tick(session, settings, queue, now=at(START, 7, 59))
    assert early.released == [] and _deliveries(story_id) == []
    for minute in (0, 1, 2):
        with session_scope() as session:
            schedule.tick(session, settings, queue, now=at(START, 8, minute))
    deliveries = _deliveries(story_id)
    assert len(deliveries) == 2 and all(d.release_at == at(START, 8) for d in deliveries)
    assert sorted(queue.of("render")) == sorted(d.id for d in deliveries)
    with session_scope() as session:
        assert session.scalar(select(Slot.state).where(Slot.story_id == story_id)) == "released"


def test_two_ticks_at_once_release_once(series_id, settings, storage, tmp_path):
    story_id = _queue_first(settings, storage, tmp_path)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            with session_scope() as session:
                results.append(schedule.tick(session, settings, RecordingQueue(), now=at(START, 8, 1)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(len(r.released) for r in results) == [0, 1]
    assert len(_deliveries(story_id)) == 2


def test_a_late_tick_releases_late_and_a_very_late_one_marks_missed(series_id, settings, storage, tmp_path):
    story_id = _queue_first(settings, storage, tmp_path)
    with session_scope() as session:  # the service was down at 08:00; back at 09:30
        result = schedule.tick(session, settings, RecordingQueue(), now=at(START, 9, 30))
    assert len(result.released) == 1 and result.late == result.released
    assert len(_deliveries(story_id)) == 2

    second = approved_story(settings, storage, tmp_path, "第二篇")
    with session_scope() as session:
        schedule.queue_story(session, second, "图文报道", now=at(START, 10))
    next_day = START + timedelta(days=1)
    with session_scope() as session:  # back only at 13:00: over the 180-minute limit
        result = schedule.tick(session, settings, RecordingQueue(), now=at(next_day, 13))
    assert result.released == [] and len(result.missed) == 1
    assert _deliveries(second) == []
    with session_scope() as session:
        slot = session.get(Slot, result.missed[0])
        assert slot.state == "missed" and "over the limit" in slot.note
        assert session.scalar(select(AuditEvent.action).where(AuditEvent.object_type == "slot")) == "missed"


def test_an_empty_slot_past_due_is_flagged_missed(series_id, settings):
    with session_scope() as session:
        result = schedule.tick(session, settings, RecordingQueue(), now=at(START, 8, 5))
    with session_scope() as session:
        slot = session.get(Slot, result.missed[0])
    assert slot.day == START and slot.note == "no story queued"


@pytest.mark.parametrize(("now", "lead", "expected"), [
    # Monday 09-28, two working days ahead: Tue 29 and Wed 30 (day 1 is filled, so not a gap).
    (at(START, 0), 2, [date(2026, 9, 29), date(2026, 9, 30)]),
    (at(START, 0), 1, [date(2026, 9, 29)]),
    (at(START, 0), 0, []),
    # Tuesday: the next two working days are Wed 30 and Thu 10-08 (National Day 10-01..07 lies between),
    # so every holiday slot must be filled now.
    (at(START + timedelta(days=1), 0), 2,
     [date(2026, 9, 29), date(2026, 9, 30), date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)]),
    # Past its 08:00 release a slot is no longer a gap but missed (the tick's business).
    (at(START + timedelta(days=1), 9), 1, [date(2026, 9, 30)]),
])
def test_gaps_are_flagged_working_days_before_they_are_due(series_id, settings, storage, tmp_path, now, lead,
                                                          expected):
    _queue_first(settings, storage, tmp_path)
    with session_scope() as session:
        open_soon = schedule.gaps(session, now=now, lead_workdays=lead)
        flagged = [e.day for e in schedule.calendar(session, START, START + timedelta(days=10), now=now,
                                                    lead_workdays=lead) if e.gap]
    assert [s.day for s in open_soon] == expected
    assert flagged == expected  # the calendar flags the same days


def test_gap_deadline_counts_official_working_days():
    assert schedule.gap_deadline(date(2026, 9, 30), 1) == date(2026, 10, 8)  # over National Day
    assert schedule.gap_deadline(date(2026, 10, 9), 1) == date(2026, 10, 10)  # Saturday make-up working day
    assert schedule.gap_deadline(date(2027, 3, 5), 1) == date(2027, 3, 8)  # beyond the data: Monday-Friday


def test_freeze_holds_releases_and_queued_deliveries_and_resume_lets_them_go(series_id, settings, storage, tmp_path):
    story_id = _queue_first(settings, storage, tmp_path)
    with session_scope() as session:
        admin, _ = create_user(session, "admin1", roles=["admin"], password="pw-admin-123")
        ops, _ = create_user(session, "ops1", roles=["ops"], password="pw-ops-12345")
    with pytest.raises(PermissionDenied):
        with session_scope() as session:
            schedule.freeze(session, "全国哀悼日", session.merge(ops))
    with pytest.raises(ValidationError, match="needs a reason"):
        with session_scope() as session:
            schedule.freeze(session, " ", session.merge(admin))
    with session_scope() as session:
        schedule.freeze(session, "全国哀悼日", session.merge(admin))
    with session_scope() as session:
        frozen = schedule.tick(session, settings, RecordingQueue(), now=at(START, 8, 1))
    assert frozen.frozen and frozen.released == [] and _deliveries(story_id) == []

    queue = RecordingQueue()
    with session_scope() as session:
        schedule.resume(session, queue, session.merge(admin))
    with session_scope() as session:
        result = schedule.tick(session, settings, queue, now=at(START, 8, 30))
    assert len(result.released) == 1 and result.late == result.released  # released late, and says so
    assert len(_deliveries(story_id)) == 2
    with session_scope() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "system")).all()
    assert actions == ["freeze", "resume"]


def test_freeze_holds_deliveries_already_planned(series_id, settings, storage, tmp_path):
    story_id = _queue_first(settings, storage, tmp_path)
    with session_scope() as session:
        schedule.tick(session, settings, RecordingQueue(), now=at(START, 8))
        admin, _ = create_user(session, "admin2", roles=["admin"], password="pw-admin-123")
    with session_scope() as session:
        held = schedule.freeze(session, "全国哀悼日", session.merge(admin))
    assert held == 2 and {d.state for d in _deliveries(story_id)} == {"held"}
    queue = RecordingQueue()
    with session_scope() as session:
        assert schedule.resume(session, queue, session.merge(admin)) == 2
    assert {d.state for d in _deliveries(story_id)} == {"planned"}
    assert sorted(queue.of("render")) == sorted(d.id for d in _deliveries(story_id))


def test_an_open_ended_series_with_a_holiday_rule_stops_where_the_holiday_data_ends(home, settings):
    with session_scope() as session:
        schedule.add_campaign(session, "民生实事")
        series = schedule.add_series(session, settings, "每日民生", campaign="民生实事", kind="图文",
                                     cadence_name="daily", start=date(2026, 12, 28), release_time="09:00",
                                     holidays="workdays")
        days = [s.day for s in schedule.slots_of(session, series.id)]
    # official working days to the end of the package's data (2026); none in 2027 until it is updated
    assert days == [date(2026, 12, 28), date(2026, 12, 29), date(2026, 12, 30), date(2026, 12, 31)]
