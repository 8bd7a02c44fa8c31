"""Editing the queue and the schedule: move, swap, reorder, unqueue, explicit schedules, release
by hand, and the campaign label a series demands — each refused with a clear message where an
editor could lose or double a release.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from services import schedule
from services.db import session_scope
from services.errors import Conflict, NotApproved, ValidationError
from services.models import AuditEvent, Delivery, Slot
from services.stories import StoryInput, edit_story
from tests.helpers import RecordingQueue, approve, desk, make_story
from tests.unit.test_schedule import CAMPAIGN, START, approved_story, at, series_id  # noqa: F401 - fixture

NOW = at(START, 0)


def _queued(settings, storage, tmp_path, titles):
    ids = [approved_story(settings, storage, tmp_path, title) for title in titles]
    with session_scope() as session:
        for story_id in ids:
            schedule.queue_story(session, story_id, "图文报道", now=NOW)
    return ids


def _plan():
    with session_scope() as session:
        return [(s.day, s.state, s.story_id) for s in session.scalars(select(Slot).where(Slot.series_id.is_not(None))
                                                                       .order_by(Slot.day))]


def test_move_into_an_open_day_and_onto_a_filled_one_swaps(series_id, settings, storage, tmp_path):
    first, second = _queued(settings, storage, tmp_path, ["甲", "乙"])
    with session_scope() as session:
        slot_of_first = session.scalar(select(Slot.id).where(Slot.story_id == first))
        moved = schedule.move_story(session, slot_of_first, START + timedelta(days=4), now=NOW)
        assert (moved.day, moved.issue_number, moved.story_id) == (START + timedelta(days=4), 5, first)
    plan = _plan()
    assert plan[0] == (START, "open", None) and plan[4] == (START + timedelta(days=4), "filled", first)
    with session_scope() as session:  # onto 乙's day: the two change places
        schedule.move_story(session, moved.id, START + timedelta(days=1), now=NOW)
    plan = _plan()
    assert plan[1][2] == first and plan[4][2] == second
    with pytest.raises(ValidationError, match="no slot on"):
        with session_scope() as session:
            schedule.move_story(session, moved.id, START + timedelta(days=40), now=NOW)
    with session_scope() as session:
        assert {"move", "swap"} <= set(session.scalars(select(AuditEvent.action)))


def test_a_slot_that_is_due_cannot_be_moved_swapped_or_emptied(series_id, settings, storage, tmp_path):
    first, second = _queued(settings, storage, tmp_path, ["甲", "乙"])
    late = at(START, 8, 1)
    with session_scope() as session:
        a, b = (session.scalar(select(Slot.id).where(Slot.story_id == i)) for i in (first, second))
    for action in (lambda s: schedule.move_story(s, a, START + timedelta(days=3), now=late),
                   lambda s: schedule.swap_slots(s, a, b, now=late),
                   lambda s: schedule.unqueue(s, a, now=late)):
        with pytest.raises(ValidationError, match="already due"):
            with session_scope() as session:
                action(session)
    assert _plan()[0] == (START, "filled", first)


def test_reorder_takes_exactly_the_queued_stories(series_id, settings, storage, tmp_path):
    ids = _queued(settings, storage, tmp_path, ["一", "二", "三"])
    with pytest.raises(ValidationError, match="exactly the queued stories"):
        with session_scope() as session:
            schedule.reorder(session, "图文报道", ids[:2], now=NOW)
    with session_scope() as session:
        schedule.reorder(session, "图文报道", list(reversed(ids)), now=NOW)
    assert [story for _day, _state, story in _plan()[:3]] == list(reversed(ids))


def test_unqueue_reopens_the_slot_and_the_story_can_be_queued_again(series_id, settings, storage, tmp_path):
    (story_id,) = _queued(settings, storage, tmp_path, ["甲"])
    with session_scope() as session:
        slot_id = session.scalar(select(Slot.id).where(Slot.story_id == story_id))
        schedule.unqueue(session, slot_id, now=NOW)
    assert _plan()[0] == (START, "open", None)
    with pytest.raises(ValidationError, match="expected filled"):
        with session_scope() as session:
            schedule.unqueue(session, slot_id, now=NOW)
    with session_scope() as session:
        assert schedule.queue_story(session, story_id, "图文报道", now=NOW).id == slot_id


def test_a_story_of_another_campaign_or_without_the_label_is_not_queued(series_id, settings, storage, tmp_path):
    with session_scope() as session:
        schedule.add_campaign(session, "乐享太平 民生先行", label_template="黄山市黄山区30项民生实事之{project}民生实事")
        plain = make_story(session, storage, tmp_path, title="未关联活动")
    approve(settings, storage, plain)
    with pytest.raises(ValidationError, match="not linked to campaign") as refused:
        with session_scope() as session:
            schedule.queue_story(session, plain, "图文报道", now=NOW)
    assert "缺少活动标签" in refused.value.message_zh
    with session_scope() as session:
        editor = desk(session)["editor"]
        story = make_story(session, storage, tmp_path, title="别的活动", campaign=CAMPAIGN)
        edit_story(session, storage, story, StoryInput(title="别的活动", body_markdown="正文。", theme="基础教育",
                                                       project="义务教育阶段学生营养餐", campaign="乐享太平 民生先行"),
                   actor=editor)
    approve(settings, storage, story)
    with pytest.raises(ValidationError, match="belongs to campaign"):
        with session_scope() as session:
            schedule.queue_story(session, story, "图文报道", now=NOW)


def test_an_explicit_schedule_releases_once_on_its_own_accounts(series_id, settings, storage, tmp_path):
    story_id = approved_story(settings, storage, tmp_path, "定时稿件")
    when = at(START + timedelta(days=2), 15, 30)
    with pytest.raises(ValidationError, match="in the past"):
        with session_scope() as session:
            schedule.schedule_story(session, story_id, at(START, 0), ["website/网站"], now=NOW)
    with session_scope() as session:
        slot = schedule.schedule_story(session, story_id, when, ["website/网站"], now=NOW)
        assert (slot.series_id, slot.state, slot.title_zh) == (None, "filled", "定时发布")
    with pytest.raises(Conflict):
        with session_scope() as session:
            schedule.schedule_story(session, story_id, when + timedelta(hours=1), ["rss/RSS"], now=NOW)
    queue = RecordingQueue()
    for minute in (29, 30, 31):
        with session_scope() as session:
            schedule.tick(session, settings, queue, now=when.replace(minute=minute))
    with session_scope() as session:
        deliveries = session.scalars(select(Delivery).where(Delivery.story_id == story_id)).all()
        assert [(d.account.channel, d.release_at) for d in deliveries] == [("website", when)]
        entries = schedule.calendar(session, when.date(), when.date(), now=when)
    explicit = [e for e in entries if e.series_id is None]
    assert explicit[0].state == "released" and explicit[0].time == "15:30"
    assert [d["channel"] for d in explicit[0].deliveries] == ["website"]


def test_an_unapproved_story_is_not_scheduled(series_id, settings, storage, tmp_path):
    with session_scope() as session:
        draft = make_story(session, storage, tmp_path, title="草稿", campaign=CAMPAIGN)
    with pytest.raises(NotApproved):
        with session_scope() as session:
            schedule.schedule_story(session, draft, at(START, 9), ["website/网站"], now=NOW)


def test_a_story_edited_after_queueing_is_held_as_missed_and_released_by_hand(series_id, settings, storage, tmp_path):
    (story_id,) = _queued(settings, storage, tmp_path, ["甲"])
    with session_scope() as session:  # a new version goes back into review: it must not go out unreviewed
        edit_story(session, storage, story_id, StoryInput(title="甲（修改）", body_markdown="改过的正文。",
                                                          theme="基础教育", campaign=CAMPAIGN),
                   actor=desk(session)["editor"])
    with session_scope() as session:
        result = schedule.tick(session, settings, RecordingQueue(), now=at(START, 8))
    assert result.released == [] and len(result.missed) == 1
    with session_scope() as session:
        slot = session.get(Slot, result.missed[0])
        assert "not approved" in slot.note
    with pytest.raises(NotApproved):
        with session_scope() as session:
            schedule.release_now(session, RecordingQueue(), slot.id, now=at(START, 9))
    approve(settings, storage, story_id)
    queue = RecordingQueue()
    with session_scope() as session:
        released = schedule.release_now(session, queue, slot.id, now=at(START, 9))
        assert released.state == "released" and "by hand" in released.note
    with session_scope() as session:
        numbers = [d.version.number for d in session.scalars(select(Delivery).where(Delivery.story_id == story_id))]
    assert numbers == [2, 2]
    with pytest.raises(ValidationError, match="no story to release"):
        with session_scope() as session:
            schedule.release_now(session, queue, slot.id, now=at(START, 9))


@pytest.mark.parametrize(("template", "fields", "expected"), [
    ("群众满意度提升行动之{theme}篇", {"theme": "基础教育"}, "群众满意度提升行动之基础教育篇"),
    ("黄山市黄山区30项民生实事之{project}民生实事", {"project": "老旧小区改造"},
     "黄山市黄山区30项民生实事之老旧小区改造民生实事"),
    ("{unit}·{theme}", {"unit": "县教育局", "theme": "基础教育"}, "县教育局·基础教育"),
    ("固定标签", {}, "固定标签"),
])
def test_label_templates_render_from_the_story_fields(template, fields, expected):
    from services.labels import render_label

    assert render_label(template, **fields) == expected


@pytest.mark.parametrize(("template", "fields", "message"), [
    ("之{project}民生实事", {"theme": "基础教育"}, "needs the story's project"),
    ("{title}篇", {}, "may use only"),
    ("{theme!r}篇", {"theme": "x"}, "may use only"),
    ("{theme篇", {"theme": "x"}, "malformed"),
])
def test_bad_label_templates_and_missing_fields_are_refused(template, fields, message):
    from services.labels import render_label

    with pytest.raises(ValidationError, match=message):
        render_label(template, **fields)


def test_a_campaign_with_a_bad_template_is_refused(home):
    with pytest.raises(ValidationError, match="may use only"):
        with session_scope() as session:
            schedule.add_campaign(session, "坏活动", label_template="{county}之声")


def test_a_campaign_story_carries_the_rendered_label_and_a_typed_label_must_agree(series_id, storage, tmp_path):
    with session_scope() as session:
        story_id = make_story(session, storage, tmp_path, title="关联活动", campaign=CAMPAIGN)
        from services.stories import get_story

        assert get_story(session, story_id).current.label == "群众满意度提升行动之基础教育篇"
    with pytest.raises(ValidationError, match="differs from the campaign"):
        with session_scope() as session:
            from services.stories import StoryInput as Input, create_story

            create_story(session, storage, Input(title="乱填标签", theme="基础教育", label="随便写的标签",
                                                  campaign=CAMPAIGN), actor=desk(session)["editor"])


def test_proofing_blocks_a_label_that_no_longer_matches_the_template(series_id, settings, storage, tmp_path):
    from services import review
    from services.models import Campaign

    with session_scope() as session:
        story_id = make_story(session, storage, tmp_path, title="模板改了", campaign=CAMPAIGN)
    with session_scope() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == CAMPAIGN))
        campaign.label_template = "群众满意度提升行动·{theme}"
    with session_scope() as session:
        version = review.current_version(session, story_id)[1]
        findings = review.run_proof(session, settings, version, "view", store=False)
    label = [f for f in findings if f.code == "label"]
    assert [f.key for f in label] == ["label:mismatch"] and label[0].severity == "block"
    assert "群众满意度提升行动·基础教育" in label[0].message_zh


def test_calendar_lists_slots_with_states_and_deliveries(series_id, settings, storage, tmp_path):
    first, _second = _queued(settings, storage, tmp_path, ["甲", "乙"])
    with session_scope() as session:
        schedule.tick(session, settings, RecordingQueue(), now=at(START, 8))
        entries = schedule.calendar(session, START, START + timedelta(days=2), now=at(START, 8))
    assert [(e.day, e.issue, e.state_zh) for e in entries] == [
        (START, 1, "已发布"), (START + timedelta(days=1), 2, "已排期"), (START + timedelta(days=2), 3, "空档")]
    assert entries[0].story_id == first and sorted(d["channel"] for d in entries[0].deliveries) == ["rss", "website"]
    assert {d["state"] for d in entries[0].deliveries} == {"planned"} and entries[1].deliveries == []
    assert entries[2].gap and not entries[1].gap
