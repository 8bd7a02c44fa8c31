"""定时发布 on the story page through FastAPI's TestClient, on the real schedule service.

Dates are relative to today in Asia/Shanghai (never the wall-clock date written down): a time
two days ahead is always in the future, yesterday always in the past.

Covers: the story page of an approved story shows the 定时发布 form (a datetime-local input and
one checkbox per enabled account, labelled 渠道 · 名称) to an editor, a draft's page shows no form;
scheduling creates one explicit slot (no series) on the chosen account only, at the chosen
Beijing time, with the flash and the 排期 row (定时发布, local time, 已排期, 取消); a time in the
past, no account, no time, an unapproved story and a second pending schedule are each refused
with the service's Chinese message and create nothing; cancelling sets the slot to cancelled
and takes it off the page; a series slot the story is queued in is listed (栏目 第N期, linked to
the calendar) but cannot be cancelled here; a reviewer without the editor role sees no form and
is refused; a form without its CSRF token is refused.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services import schedule
from services.db import session_scope
from services.models import AuditEvent, Slot
from tests.helpers import add_site_accounts, approve, desk, make_story
from tests.integration.test_web import csrf_of, login
from tests.integration.test_web_calendar import flash_of, follow

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAMPAIGN = "群众满意度提升行动"
DAILY = "每日民生"
APPROVED = "城区新增公办学位1200个"
DRAFT = "未送审的稿件"

pytestmark = pytest.mark.usefixtures("queue")  # every test records what the app sends


# --------------------------------------------------------------------------- fixtures & helpers


def today() -> date:
    return datetime.now(SHANGHAI).date()


def local_value(day: date, at: time) -> str:
    """What a datetime-local input sends: YYYY-MM-DDTHH:MM (Beijing time)."""
    return f"{day.isoformat()}T{at:%H:%M}"


@pytest.fixture
def world(settings, storage, tmp_path: Path) -> dict[str, Any]:
    """The desk, a website and an RSS account (both enabled), a daily series from tomorrow, one
    approved campaign story and one draft."""
    with session_scope() as session:
        desk(session)
        website, rss = add_site_accounts(session, settings)
        schedule.add_campaign(session, CAMPAIGN, label_template="群众满意度提升行动之{theme}篇")
        daily = schedule.add_series(session, settings, DAILY, campaign=CAMPAIGN, kind="图文", cadence_name="daily",
                                    start=today() + timedelta(days=1), release_time="08:00", count=5).id
        approved = make_story(session, storage, tmp_path, title=APPROVED, campaign=CAMPAIGN)
        draft = make_story(session, storage, tmp_path, title=DRAFT, campaign=CAMPAIGN)
    approve(settings, storage, approved)
    return {"website": website, "rss": rss, "daily": daily, "approved": approved, "draft": draft}


def client_for(app, name: str) -> TestClient:
    """A browser of its own, logged in as a desk user (password pw-<name>-123)."""
    client = TestClient(app)
    response = login(client, name, f"pw-{name}-123")
    assert response.status_code == 303, response.text
    return client


def story_page(client: TestClient, story_id: int) -> str:
    response = client.get(f"/stories/{story_id}")
    assert response.status_code == 200, response.text
    return response.text


def schedule_form(html: str) -> str | None:
    match = re.search(r'<form method="post" action="/stories/\d+/schedule" class="schedule-form">.*?</form>',
                      html, re.DOTALL)
    return match.group(0) if match else None


def schedule_section(html: str) -> str:
    match = re.search(r'<div class="card" role="region" aria-labelledby="schedule-title" id="schedule">.*?</div>',
                      html, re.DOTALL)
    assert match, "no 排期 section"
    return match.group(0)


def post_schedule(client: TestClient, story_id: int, at: str, accounts: list[int]) -> Any:
    data: dict[str, Any] = {"csrf": csrf_of(story_page(client, story_id)), "at": at,
                            "account": [str(a) for a in accounts]}
    return client.post(f"/stories/{story_id}/schedule", data=data, follow_redirects=False)


def post_cancel(client: TestClient, story_id: int, slot: int) -> Any:
    return client.post(f"/stories/{story_id}/schedule/{slot}/cancel",
                       data={"csrf": csrf_of(story_page(client, story_id))}, follow_redirects=False)


def alert_of(html: str) -> str:
    match = re.search(r'<p class="error banner" role="alert">(.*?)</p>', html, re.DOTALL)
    assert match, "no error message"
    return match.group(1)


def text_of(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def explicit_slots() -> list[Slot]:
    with session_scope() as session:
        slots = list(session.scalars(select(Slot).where(Slot.series_id.is_(None)).order_by(Slot.id)))
        session.expunge_all()
        return slots


def schedule_events() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "schedule"))


# --------------------------------------------------------------------------- the form


def test_an_approved_story_offers_the_schedule_form_with_the_accounts(app, world) -> None:
    client = client_for(app, "editor")
    html = story_page(client, world["approved"])
    form = schedule_form(html)
    assert form is not None and "<h3>定时发布</h3>" in html
    assert f'action="/stories/{world["approved"]}/schedule"' in form
    assert re.search(r'<input type="datetime-local" name="at" required min="[\d-]+T\d\d:\d\d"', form)
    boxes = re.findall(r'<input type="checkbox" name="account" value="(\d+)">([^<]+)</label>', form)
    assert sorted(boxes) == sorted([(str(world["website"]), "网站 · 网站"), (str(world["rss"]), "RSS · RSS")])
    assert "尚未排期" in schedule_section(html)

    draft = story_page(client, world["draft"])
    assert schedule_form(draft) is None and "/schedule" not in draft
    assert "通过三审后才能定时发布" in schedule_section(draft)


def test_scheduling_creates_an_explicit_slot_on_the_chosen_account(app, world) -> None:
    day = today() + timedelta(days=2)
    client = client_for(app, "editor")
    response = post_schedule(client, world["approved"], local_value(day, time(9, 30)), [world["website"]])
    assert response.headers["location"] == f"/stories/{world['approved']}"
    after = follow(client, response)
    assert flash_of(after) == f"已设定定时发布：{day.isoformat()} 09:30"

    [slot] = explicit_slots()
    assert slot.series_id is None and slot.story_id == world["approved"] and slot.state == "filled"
    assert slot.account_ids == [world["website"]]  # the chosen account only, not RSS
    assert slot.release_at == datetime.combine(day, time(9, 30), SHANGHAI)
    assert slot.release_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") == f"{day.isoformat()} 09:30"
    assert slot.day == day and slot.issue_number == 0
    assert schedule_events() == 1

    section = schedule_section(after)
    row = re.search(rf'<tr data-slot="{slot.id}" data-state="filled">.*?</tr>', section, re.DOTALL).group(0)
    assert text_of(row) == f"定时发布 {day.isoformat()} 09:30 网站 · 网站 已排期 取消"
    assert f'action="/stories/{world["approved"]}/schedule/{slot.id}/cancel"' in row
    assert "已有待执行的定时发布" in after  # the form says a second one is refused


@pytest.mark.parametrize("case", ["past", "no_account", "no_time", "unapproved"])
def test_a_refused_schedule_shows_the_chinese_message_and_creates_nothing(app, world, case) -> None:
    ahead = local_value(today() + timedelta(days=2), time(9, 30))
    story, at, accounts, status, message = {
        "past": (world["approved"], local_value(today() - timedelta(days=1), time(10, 0)), [world["website"]],
                 422, "定时发布时间须晚于当前时间"),
        "no_account": (world["approved"], ahead, [], 422, "请至少选择一个发布账号"),
        "no_time": (world["approved"], "", [world["rss"]], 422, "请选择定时发布时间"),
        "unapproved": (world["draft"], ahead, [world["website"]], 409, f"稿件 {world['draft']} 尚未通过三审，不能排期"),
    }[case]
    client = client_for(app, "editor")
    response = post_schedule(client, story, at, accounts)
    assert response.status_code == status, response.text
    assert alert_of(response.text) == message
    assert explicit_slots() == [] and schedule_events() == 0
    if case == "no_account":  # the form keeps what the editor entered
        assert f'value="{ahead}"' in schedule_form(response.text)


def test_a_second_pending_schedule_is_refused(app, world) -> None:
    client = client_for(app, "editor")
    first = local_value(today() + timedelta(days=2), time(9, 30))
    follow(client, post_schedule(client, world["approved"], first, [world["website"]]))
    response = post_schedule(client, world["approved"], local_value(today() + timedelta(days=3), time(8, 0)),
                             [world["rss"]])
    assert response.status_code == 409 and alert_of(response.text) == "该稿件已有待执行的定时发布"
    assert [(s.state, s.account_ids) for s in explicit_slots()] == [("filled", [world["website"]])]


# --------------------------------------------------------------------------- cancel & the 排期 list


def test_cancelling_a_pending_schedule(app, world) -> None:
    day = today() + timedelta(days=3)
    with session_scope() as session:
        slot = schedule.schedule_story(session, world["approved"], datetime.combine(day, time(15, 0), SHANGHAI),
                                       ["website/网站", "rss/RSS"], actor=desk(session)["editor"]).id
    client = client_for(app, "editor")
    html = story_page(client, world["approved"])
    assert f"{day.isoformat()} 15:00" in schedule_section(html)
    assert "网站 · 网站、RSS · RSS" in schedule_section(html)

    reviewer = client_for(app, "r1")
    assert "取消</button>" not in schedule_section(story_page(reviewer, world["approved"]))
    refused = post_cancel(reviewer, world["approved"], slot)
    assert refused.status_code == 403 and alert_of(refused.text) == "当前用户没有权限（需要角色：editor、ops）"
    assert [s.state for s in explicit_slots()] == ["filled"]
    elsewhere = post_cancel(client, world["draft"], slot)  # the slot of another story
    assert elsewhere.status_code == 404 and alert_of(elsewhere.text) == f"期次 {slot} 不存在"

    after = follow(client, post_cancel(client, world["approved"], slot))
    assert flash_of(after) == f"已取消定时发布：{day.isoformat()} 15:00"
    assert [(s.id, s.state) for s in explicit_slots()] == [(slot, "cancelled")]
    assert f'data-slot="{slot}"' not in after and "尚未排期" in schedule_section(after)
    again = post_cancel(client, world["approved"], slot)
    assert again.status_code == 422 and "只能操作已排期的期次" in alert_of(again.text)


def test_a_series_slot_is_listed_but_not_cancelled_here(app, world) -> None:
    day = today() + timedelta(days=2)
    with session_scope() as session:
        queued = schedule.queue_story(session, world["approved"], str(world["daily"]), day=day)
        slot, issue = queued.id, queued.issue_number
    client = client_for(app, "editor")
    section = schedule_section(story_page(client, world["approved"]))
    row = re.search(rf'<tr data-slot="{slot}" data-state="filled">.*?</tr>', section, re.DOTALL).group(0)
    assert text_of(row) == f"{DAILY} 第{issue}期 {day.isoformat()} 08:00 全部已启用账号 已排期"
    assert f'href="/calendar?view=week&amp;date={day.isoformat()}#slot-{slot}"' in row
    refused = post_cancel(client, world["approved"], slot)
    assert refused.status_code == 422 and alert_of(refused.text) == "栏目期次请在排期日历中撤下"
    with session_scope() as session:
        assert session.get(Slot, slot).state == "filled"


# --------------------------------------------------------------------------- who may schedule


def test_a_reviewer_cannot_schedule(app, world) -> None:
    client = client_for(app, "r1")
    html = story_page(client, world["approved"])
    assert schedule_form(html) is None and f'action="/stories/{world["approved"]}/schedule"' not in html
    response = post_schedule(client, world["approved"], local_value(today() + timedelta(days=2), time(9, 30)),
                             [world["website"]])
    assert response.status_code == 403
    assert alert_of(response.text) == "当前用户没有权限（需要角色：editor、ops）"
    assert explicit_slots() == [] and schedule_events() == 0


def test_a_schedule_without_its_csrf_token_is_refused(app, world) -> None:
    response = client_for(app, "editor").post(
        f"/stories/{world['approved']}/schedule",
        data={"at": local_value(today() + timedelta(days=2), time(9, 30)), "account": [str(world["website"])]},
        follow_redirects=False)
    assert response.status_code == 403 and "表单已过期" in response.text
    assert explicit_slots() == []
