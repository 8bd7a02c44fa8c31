"""The schedule calendar (排期日历) through FastAPI's TestClient, on the real schedule service.

Dates are relative to today in Asia/Shanghai: two daily series (holidays="publish", so no
holiday data is needed) of one campaign start tomorrow, so their first slots are 缺稿 gaps and
every slot is still ahead.

Covers: login required; the default view (this month), the nav link, a bad date, view or
series refused in Chinese; the month view is a Monday-first grid with 一…日 headers and each slot
card in its day's cell (series, 第N期, time, state) in time order; the week view shows the seven
days of the week of `date`; 缺稿 on open slots within the lead time only, and the gap banner
counting them; every state's card (空档, 已排期, 已发布 with per-channel badges, 已错过, 已取消 of
an explicit schedule); the series filter; queueing an approved story through the form (the
select offers approved stories not yet queued in that series, never a draft) and the 303 back to
the same view with the Chinese flash; queueing refused with the service's Chinese message and
nothing changed — a draft story, a reviewer without the editor role (who sees no action forms),
a missing CSRF token; unqueue, move (landing on the target day), release by hand of a filled and
of a missed slot (render tasks queued, badges shown), a move to a day without a slot refused;
the freeze banner and release refused while frozen; the admin's freeze switch (暂停全部发布 with
a reason holds the planned deliveries, audited; 恢复发布 sends them on and removes the banner), an
empty reason refused in Chinese, an editor who sees no switch and whose forged POSTs are refused;
/api/calendar as JSON (Basic auth, ISO
dates, range checks, unknown series); the CSV and XLSX exports of services/exports.py with a
Chinese RFC 5987 file name, and their links shown only when a series is selected.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from services import schedule
from services.db import session_scope
from services.models import AuditEvent, ControlFlag, Delivery, Slot, User
from tests.helpers import add_site_accounts, approve, desk, make_story

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAMPAIGN = "群众满意度提升行动"
DAILY = "每日民生"
TALKS = "民生访谈"
APPROVED = "城区新增公办学位1200个"
DRAFT = "未送审的稿件"

pytestmark = pytest.mark.usefixtures("queue")  # every test records what the app sends


# --------------------------------------------------------------------------- fixtures & helpers


def today() -> date:
    return datetime.now(SHANGHAI).date()


@pytest.fixture
def world(settings, storage, tmp_path: Path) -> dict[str, Any]:
    """The desk, a website and an RSS account, a campaign with two daily series from tomorrow,
    one approved campaign story and one draft."""
    start = today() + timedelta(days=1)
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
        schedule.add_campaign(session, CAMPAIGN, label_template="群众满意度提升行动之{theme}篇")
        daily = schedule.add_series(session, settings, DAILY, campaign=CAMPAIGN, kind="图文", cadence_name="daily",
                                    start=start, release_time="08:00", count=20).id
        talks = schedule.add_series(session, settings, TALKS, campaign=CAMPAIGN, kind="访谈", cadence_name="daily",
                                    start=start, release_time="19:30", count=3).id
        approved = make_story(session, storage, tmp_path, title=APPROVED, campaign=CAMPAIGN)
        draft = make_story(session, storage, tmp_path, title=DRAFT, campaign=CAMPAIGN)
    approve(settings, storage, approved)
    return {"start": start, "daily": daily, "talks": talks, "approved": approved, "draft": draft}


def slot_id(series_id: int, day: date) -> int:
    with session_scope() as session:
        return session.scalar(select(Slot.id).where(Slot.series_id == series_id, Slot.day == day))


def slot_row(slot: int) -> tuple[str, int | None, date]:
    with session_scope() as session:
        row = session.get(Slot, slot)
        return row.state, row.story_id, row.day


def user(name: str):
    with session_scope() as session:
        return desk(session)[name]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "page carries no CSRF token"
    return match.group(1)


def client_for(app, name: str) -> TestClient:
    """A browser of its own, logged in as `name` (password pw-<name>-123)."""
    client = TestClient(app)
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": f"pw-{name}-123", "csrf": token,
                                           "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def page(client: TestClient, view: str, day: date, series: int | None = None) -> str:
    url = f"/calendar?view={view}&date={day.isoformat()}" + (f"&series={series}" if series else "")
    response = client.get(url)
    assert response.status_code == 200, response.text
    return response.text


def cell(html: str, day: date) -> str:
    """One day's cell of the grid (up to the next cell)."""
    match = re.search(rf'data-day="{day.isoformat()}">(.*?)(?=<td class="day|</tbody>)', html, re.DOTALL)
    assert match, f"no cell for {day}"
    return match.group(1)


def grid(html: str) -> str:
    return html[html.index('<table class="calendar'):html.index("</table>")]


def card(html: str, slot: int) -> str:
    match = re.search(rf'<article [^>]*data-slot="{slot}"[^>]*>.*?</article>', html, re.DOTALL)
    assert match, f"no card for slot {slot}"
    return match.group(0)


def text_of(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def state_of(html: str, slot: int) -> str:
    return re.search(r'data-state="(\w+)"', card(html, slot)).group(1)


def options(fragment: str) -> list[int]:
    return [int(v) for v in re.findall(r'<option value="(\d+)"', fragment)]


def act(client: TestClient, action: str, slot: int, view: str, day: date, series: int | None = None,
        **fields: Any) -> Any:
    """POST a slot's form the way the browser does: CSRF token and the hidden view fields."""
    html = page(client, view, day, series)
    data = {"csrf": csrf_of(html), "view": view, "date": day.isoformat(), **fields}
    if series:
        data["series"] = str(series)
    return client.post(f"/calendar/slots/{slot}/{action}", data=data, follow_redirects=False)


def follow(client: TestClient, response: Any) -> str:
    assert response.status_code == 303, response.text
    followed = client.get(response.headers["location"])
    assert followed.status_code == 200
    return followed.text


def flash_of(html: str) -> str:
    match = re.search(r'<p class="flash" role="status">(.*?)</p>', html, re.DOTALL)
    assert match, "no flash message"
    return match.group(1)


def alert_of(html: str) -> str:
    match = re.search(r'<p class="flash flash-error" role="alert">(.*?)</p>', html, re.DOTALL)
    assert match, "no error message"
    return match.group(1)


# --------------------------------------------------------------------------- views


def test_the_calendar_wants_a_login(app, world) -> None:
    response = TestClient(app).get("/calendar", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/calendar"


def test_default_is_this_month_and_the_nav_links_it(app, world) -> None:
    html = client_for(app, "editor").get("/calendar").text
    now = today()
    assert f"{now.year}年{now.month}月" in html
    assert '<a href="/calendar">排期日历</a>' in html
    assert f'data-day="{now.replace(day=1).isoformat()}"' in html
    client = client_for(app, "editor")
    bad_date = client.get("/calendar?date=2026-13-01")
    assert bad_date.status_code == 422 and "日期格式应为 YYYY-MM-DD" in bad_date.text
    assert client.get("/calendar?view=year").status_code == 422
    unknown = client.get("/calendar?series=9999")
    assert unknown.status_code == 404 and "栏目“9999”不存在" in unknown.text


def test_month_view_puts_each_slot_in_its_day_cell(app, world) -> None:
    start = world["start"]
    html = page(client_for(app, "editor"), "month", start)
    headers = re.findall(r'<th class="[^"]*" scope="col">(.)</th>', html)
    assert headers == ["一", "二", "三", "四", "五", "六", "日"]
    days = [date.fromisoformat(d) for d in re.findall(r'data-day="([\d-]+)"', html)]
    assert len(days) % 7 == 0 and days[0].weekday() == 0 and days[-1].weekday() == 6
    assert days[0] <= start.replace(day=1) and days == [days[0] + timedelta(days=i) for i in range(len(days))]

    first = cell(html, start)
    daily, talks = slot_id(world["daily"], start), slot_id(world["talks"], start)
    assert first.index(f'data-slot="{daily}"') < first.index(f'data-slot="{talks}"')  # 08:00 before 19:30
    assert text_of(card(first, daily)).startswith(f"08:00 空档 缺稿 {DAILY} 第1期")
    assert text_of(card(first, talks)).startswith(f"19:30 空档 缺稿 {TALKS} 第1期")
    assert 'class="slot slot-open gap"' in card(first, daily)
    yesterday = cell(html, start - timedelta(days=1)) if start.day > 1 else ""
    assert "data-slot" not in yesterday  # nothing before the series starts
    second = start + timedelta(days=1)
    if second.month == start.month:
        assert f"{DAILY}</a> 第2期" in cell(html, second)


def test_week_view_shows_the_week_of_the_date_with_detail(app, world) -> None:
    start, daily = world["start"], world["daily"]
    later = start + timedelta(days=18)  # 第19期, far beyond the lead time
    html = page(client_for(app, "editor"), "week", later)
    monday = later - timedelta(days=later.weekday())
    days = [date.fromisoformat(d) for d in re.findall(r'data-day="([\d-]+)"', html)]
    assert days == [monday + timedelta(days=i) for i in range(7)]
    assert re.findall(r'scope="col">周(.)', html) == ["一", "二", "三", "四", "五", "六", "日"]
    later_card = card(cell(html, later), slot_id(daily, later))
    assert text_of(later_card).startswith(f"08:00 空档 图文 {DAILY} 第19期 待排入稿件")
    assert "缺稿" not in later_card and 'class="slot slot-open"' in later_card
    assert "排入" in later_card  # the week view shows the forms open, not behind 操作
    assert "<details" not in later_card
    assert TALKS not in grid(html)  # its three issues are long over by then


def test_gaps_are_flagged_and_counted(app, world) -> None:
    start = world["start"]
    with session_scope() as session:
        gaps = schedule.gaps(session, lead_workdays=2)
    assert len(gaps) >= 2  # both series' first issues at least
    html = page(client_for(app, "editor"), "month", start)
    assert f"{len(gaps)} 个期次缺稿，需在 2 个工作日内补齐" in html
    for gap in gaps:
        assert f"#slot-{gap.id}" in html
    only_talks = page(client_for(app, "editor"), "month", start, world["talks"])
    talk_gaps = [g for g in gaps if g.series_id == world["talks"]]
    assert f"{len(talk_gaps)} 个期次缺稿" in only_talks


def test_every_state_has_its_card_and_the_series_filter(app, world, queue, settings) -> None:
    start, daily = world["start"], world["daily"]
    filled_day, released_day, missed_day = (start + timedelta(days=n) for n in (2, 3, 4))
    to_release, to_miss = slot_id(daily, released_day), slot_id(daily, missed_day)
    with session_scope() as session:
        schedule.queue_story(session, world["approved"], str(daily), day=released_day)
        schedule.release_now(session, queue, to_release)
        session.execute(update(Slot).where(Slot.id == to_miss).values(state="missed", note="no story queued"))
        explicit = schedule.schedule_story(session, world["approved"],
                                           datetime(filled_day.year, filled_day.month, filled_day.day, 10, 0,
                                                    tzinfo=SHANGHAI), ["website/网站"]).id
        schedule.unqueue(session, explicit)
        schedule.queue_story(session, world["approved"], str(world["talks"]), day=start + timedelta(days=2))
    client = client_for(app, "editor")

    def card_on(day: date, slot: int) -> str:  # the week view of the slot's own day
        return card(cell(page(client, "week", day), day), slot)

    assert 'data-state="open"' in card_on(start + timedelta(days=1), slot_id(daily, start + timedelta(days=1)))
    talks_card = card_on(filled_day, slot_id(world["talks"], filled_day))
    assert 'data-state="filled"' in talks_card and "已排期" in talks_card
    assert f'href="/stories/{world["approved"]}">{APPROVED}</a>' in talks_card
    released = card_on(released_day, to_release)
    assert 'class="slot slot-released"' in released and "已发布" in released
    assert "网站 · 已计划" in released and "RSS · 已计划" in released  # one badge per channel
    assert "立即发布" not in released and "撤下" not in released
    missed = card_on(missed_day, to_miss)
    assert "已错过" in missed and "缺稿" not in missed and "未排入稿件" in missed  # the note, in Chinese
    cancelled = card_on(filled_day, explicit)
    assert "已取消" in cancelled and "定时发布" in cancelled and "slot-cancelled" in cancelled
    html = page(client, "week", released_day)
    assert re.search(r"已发布 1</span>", html)  # the legend counts the view's states

    only_daily = page(client, "week", released_day, daily)
    assert f'data-slot="{explicit}"' not in only_daily and TALKS + "</a>" not in only_daily
    assert f'<option value="{daily}" selected>{DAILY}</option>' in only_daily
    assert f'href="/calendar/export.csv?series={daily}"' in only_daily
    assert f'href="/calendar/export.xlsx?series={daily}"' in only_daily
    assert "/calendar/export.csv" not in html  # no series chosen: nothing to export


# --------------------------------------------------------------------------- queueing


def test_an_editor_queues_an_approved_story_from_the_calendar(app, world) -> None:
    start, daily = world["start"], world["daily"]
    day = start + timedelta(days=2)
    target = slot_id(daily, day)
    client = client_for(app, "editor")
    html = page(client, "week", day, daily)
    form = card(html, target)
    assert options(form) == [world["approved"]]  # approved only, never the draft
    response = act(client, "queue", target, "week", day, daily, story_id=str(world["approved"]))
    location = urlsplit(response.headers["location"])
    assert location.path == "/calendar" and location.fragment == f"slot-{target}"
    assert parse_qs(location.query) == {"view": ["week"], "date": [day.isoformat()], "series": [str(daily)]}
    after = follow(client, response)
    assert flash_of(after) == f"已将《{APPROVED}》排入{DAILY} 第3期（{day.month}月{day.day}日）"
    assert state_of(after, target) == "filled" and "已排期" in card(after, target)
    assert slot_row(target) == ("filled", world["approved"], day)
    for other in (day - timedelta(days=1), day + timedelta(days=1)):  # already queued in this series
        other_card = card(page(client, "week", other, daily), slot_id(daily, other))
        assert options(other_card) == [] and "暂无可排入的已通过三审稿件" in other_card
    overall = page(client, "week", start)
    assert options(card(overall, slot_id(world["talks"], start))) == [world["approved"]]  # the other series


def test_queueing_a_draft_is_refused_with_the_chinese_message(app, world) -> None:
    day = world["start"] + timedelta(days=2)
    target = slot_id(world["daily"], day)
    client = client_for(app, "editor")
    after = follow(client, act(client, "queue", target, "month", day, story_id=str(world["draft"])))
    assert alert_of(after) == f"稿件 {world['draft']} 尚未通过三审，不能排期"
    assert slot_row(target) == ("open", None, day)
    assert state_of(after, target) == "open"
    again = client.get(f"/calendar?view=month&date={day.isoformat()}").text
    assert "flash-error" not in again  # shown once


def test_a_reviewer_sees_the_calendar_but_cannot_queue(app, world) -> None:
    day = world["start"] + timedelta(days=2)
    target = slot_id(world["daily"], day)
    client = client_for(app, "r1")
    html = page(client, "week", day)
    assert f'data-slot="{target}"' in html
    assert "/queue" not in html and "排入</button>" not in html  # no action forms for a reviewer
    after = follow(client, act(client, "queue", target, "week", day, story_id=str(world["approved"])))
    assert alert_of(after) == "当前用户没有权限（需要角色：editor、ops）"
    assert slot_row(target) == ("open", None, day)


def test_a_form_without_its_csrf_token_is_refused(app, world) -> None:
    target = slot_id(world["daily"], world["start"])
    response = client_for(app, "editor").post(f"/calendar/slots/{target}/queue",
                                              data={"story_id": str(world["approved"])}, follow_redirects=False)
    assert response.status_code == 403 and "表单已过期" in response.text
    assert slot_row(target)[0] == "open"


# --------------------------------------------------------------------------- unqueue, move, release


def test_unqueue_move_and_release_by_hand(app, world, queue) -> None:
    start, daily, story = world["start"], world["daily"], world["approved"]
    first_day, moved_day = start + timedelta(days=3), start + timedelta(days=5)
    first, moved = slot_id(daily, first_day), slot_id(daily, moved_day)
    with session_scope() as session:
        schedule.queue_story(session, story, str(daily), day=first_day, actor=user("editor"))
    client = client_for(app, "editor")
    filled = card(page(client, "week", first_day), first)
    assert "撤下" in filled and "调整到" in filled and "立即发布" in filled and "<select" not in filled

    response = act(client, "move", first, "week", first_day, to_day=moved_day.isoformat())
    assert parse_qs(urlsplit(response.headers["location"]).query)["date"] == [moved_day.isoformat()]
    after = follow(client, response)
    assert flash_of(after) == f"已调整到{DAILY} 第6期（{moved_day.month}月{moved_day.day}日）"
    assert slot_row(first) == ("open", None, first_day) and slot_row(moved) == ("filled", story, moved_day)
    assert state_of(after, moved) == "filled"

    nowhere = start + timedelta(days=40)  # beyond the series' 20 issues
    after = follow(client, act(client, "move", moved, "week", moved_day, to_day=nowhere.isoformat()))
    assert alert_of(after) == f"栏目“{DAILY}”在 {nowhere:%m月%d日} 没有期次"
    assert slot_row(moved) == ("filled", story, moved_day)

    after = follow(client, act(client, "unqueue", moved, "week", moved_day))
    assert flash_of(after).startswith(f"已撤下{DAILY} 第6期")
    assert slot_row(moved) == ("open", None, moved_day) and state_of(after, moved) == "open"

    with session_scope() as session:
        schedule.queue_story(session, story, str(daily), day=first_day, actor=user("editor"))
    assert queue.of("render") == []
    after = follow(client, act(client, "release", first, "week", first_day))
    assert flash_of(after) == f"已立即发布{DAILY} 第4期（{first_day.month}月{first_day.day}日），各渠道发布任务已创建"
    assert slot_row(first)[0] == "released"
    assert len(queue.of("render")) == 2  # website and RSS, sent after the commit
    released = card(after, first)
    assert "已发布" in released and "网站 · 已计划" in released and "RSS · 已计划" in released


def test_a_missed_slot_is_released_by_hand(app, world, queue) -> None:
    day = world["start"] + timedelta(days=1)
    target = slot_id(world["daily"], day)
    with session_scope() as session:
        session.execute(update(Slot).where(Slot.id == target).values(state="missed", story_id=world["approved"],
                                                                   note="the story's current version is not approved"))
    client = client_for(app, "editor")
    missed = card(page(client, "week", day), target)
    assert "已错过" in missed and "立即发布" in missed and "撤下" not in missed
    after = follow(client, act(client, "release", target, "week", day))
    assert flash_of(after).startswith("已立即发布")
    assert slot_row(target)[0] == "released" and len(queue.of("render")) == 2


def test_freeze_shows_a_banner_and_holds_releases(app, world, queue) -> None:
    from services.users import create_user

    day = world["start"] + timedelta(days=2)
    target = slot_id(world["daily"], day)
    with session_scope() as session:
        admin, _ = create_user(session, "admin1", roles=["admin"], password="pw-admin1-123")
        schedule.queue_story(session, world["approved"], str(world["daily"]), day=day)
        schedule.freeze(session, "全国哀悼日", admin)
    client = client_for(app, "editor")
    html = page(client, "month", day)
    assert "发布已暂停（冻结中）：全国哀悼日" in html
    after = follow(client, act(client, "release", target, "month", day))
    assert alert_of(after) == "发布已暂停（冻结中），不能立即发布"
    assert slot_row(target)[0] == "filled" and queue.sent == []


def make_admin() -> None:
    from services.users import create_user

    with session_scope() as session:
        create_user(session, "admin1", roles=["admin"], password="pw-admin1-123")


def is_frozen() -> bool:
    with session_scope() as session:
        return schedule.is_frozen(session)


def delivery_states() -> dict[int, str]:
    with session_scope() as session:
        return dict(session.execute(select(Delivery.id, Delivery.state)).tuples().all())


def switch(client: TestClient, action: str, day: date, **fields: Any) -> Any:
    """POST the freeze switch's form as the browser does, from the month view of `day`."""
    html = page(client, "month", day)
    data = {"csrf": csrf_of(html), "view": "month", "date": day.isoformat(), **fields}
    return client.post(f"/calendar/{action}", data=data, follow_redirects=False)


def test_an_admin_freezes_and_resumes_all_releases(app, world, queue) -> None:
    make_admin()
    day = world["start"] + timedelta(days=2)
    with session_scope() as session:
        released = schedule.queue_story(session, world["approved"], str(world["daily"]), day=day)
        schedule.release_now(session, queue, released.id)  # plans the website and RSS deliveries
    planned = delivery_states()
    assert sorted(set(planned.values())) == ["planned"] and len(planned) == 2
    queue.sent.clear()

    client = client_for(app, "admin1")
    html = page(client, "month", day)
    assert 'action="/calendar/freeze"' in html and 'action="/calendar/resume"' not in html
    assert re.search(r'<input type="text" id="freeze-reason" name="reason" required[^>]*placeholder="[^"]*全国哀悼日',
                     html)
    assert "freeze-banner" not in html

    response = switch(client, "freeze", day, reason="  全国哀悼日 ")
    location = urlsplit(response.headers["location"])
    assert location.path == "/calendar" and parse_qs(location.query) == {"view": ["month"], "date": [day.isoformat()]}
    after = follow(client, response)
    assert flash_of(after) == "已暂停全部发布（全国哀悼日），2 个待发布任务已暂停"
    assert "发布已暂停（冻结中）：全国哀悼日" in after
    assert 'action="/calendar/resume"' in after and 'action="/calendar/freeze"' not in after
    assert is_frozen() and set(delivery_states().values()) == {"held"}
    with session_scope() as session:
        flag = session.get(ControlFlag, schedule.FREEZE)
        assert flag.reason == "全国哀悼日"
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "freeze")).all()
        assert [(e.actor_name, e.object_id) for e in events] == [("admin1", schedule.FREEZE)]
        assert "全国哀悼日" in events[0].summary and "2 deliveries held" in events[0].summary
    assert queue.sent == []

    after = follow(client, switch(client, "resume", day))
    assert flash_of(after) == "已恢复发布，2 个暂停的发布任务已继续发送"
    assert "freeze-banner" not in after and "发布已暂停" not in after
    assert 'action="/calendar/freeze"' in after and 'action="/calendar/resume"' not in after
    assert not is_frozen() and delivery_states() == planned  # back to planned …
    assert sorted(queue.of("render")) == sorted(planned)  # … and sent on to render after the commit
    with session_scope() as session:
        assert session.scalar(select(AuditEvent.summary).where(AuditEvent.action == "resume")) \
            == "resumed releases (2 deliveries sent on)"


def test_a_freeze_without_a_reason_is_refused(app, world) -> None:
    make_admin()
    client = client_for(app, "admin1")
    after = follow(client, switch(client, "freeze", world["start"], reason="   "))
    assert alert_of(after) == "暂停发布须填写原因"
    assert not is_frozen() and "freeze-banner" not in after
    after = follow(client, switch(client, "resume", world["start"]))
    assert alert_of(after) == "当前没有暂停发布"


def test_an_editor_has_no_freeze_switch_and_a_forged_one_is_refused(app, world) -> None:
    make_admin()
    client = client_for(app, "editor")
    html = page(client, "month", world["start"])
    assert "/calendar/freeze" not in html and "/calendar/resume" not in html and "暂停全部发布" not in html
    after = follow(client, switch(client, "freeze", world["start"], reason="全国哀悼日"))
    assert alert_of(after) == "当前用户没有权限（需要角色：admin）"
    assert not is_frozen() and "freeze-banner" not in after
    with session_scope() as session:
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "freeze")) is None

    with session_scope() as session:
        schedule.freeze(session, "全国哀悼日", session.scalar(select(User).where(User.username == "admin1")))
    html = page(client, "month", world["start"])
    assert "发布已暂停（冻结中）：全国哀悼日" in html and "/calendar/resume" not in html and "恢复发布</button>" not in html
    after = follow(client, switch(client, "resume", world["start"]))
    assert alert_of(after) == "当前用户没有权限（需要角色：admin）"
    assert is_frozen()
    unsigned = client.post("/calendar/freeze", data={"reason": "全国哀悼日"}, follow_redirects=False)
    assert unsigned.status_code == 403 and "表单已过期" in unsigned.text


# --------------------------------------------------------------------------- JSON & exports


def test_the_calendar_api(app, world) -> None:
    start, daily = world["start"], world["daily"]
    with session_scope() as session:
        schedule.queue_story(session, world["approved"], str(daily), day=start + timedelta(days=1))
    client = TestClient(app)
    query = f"from={start.isoformat()}&to={(start + timedelta(days=2)).isoformat()}"
    assert client.get(f"/api/calendar?{query}").status_code == 401
    auth = ("editor", "pw-editor-123")
    entries = client.get(f"/api/calendar?{query}&series={daily}", auth=auth).json()
    assert [(e["day"], e["issue"], e["state"], e["time"]) for e in entries] == [
        ((start + timedelta(days=n)).isoformat(), n + 1, "filled" if n == 1 else "open", "08:00") for n in range(3)]
    second = entries[1]
    assert second["story_id"] == world["approved"] and second["story_title"] == APPROVED
    assert second["state_zh"] == "已排期" and second["series"] == DAILY and second["deliveries"] == []
    assert entries[0]["gap"] is True and set(entries[0]) >= {"slot_id", "series_id", "kind", "unit", "theme", "note"}
    both = client.get(f"/api/calendar?{query}", auth=auth).json()
    assert sorted({e["series"] for e in both}) == sorted([DAILY, TALKS]) and len(both) == 6

    backwards = client.get(f"/api/calendar?from={start.isoformat()}&to={(start - timedelta(days=1)).isoformat()}",
                           auth=auth)
    assert backwards.status_code == 422 and backwards.json()["detail_zh"] == "结束日期早于起始日期"
    assert client.get("/api/calendar?from=2026-02-30", auth=auth).status_code == 422
    unknown = client.get(f"/api/calendar?{query}&series=9999", auth=auth)
    assert unknown.status_code == 404 and unknown.json()["detail_zh"] == "栏目“9999”不存在"
    month = client.get("/api/calendar", auth=auth)
    assert month.status_code == 200 and isinstance(month.json(), list)


def test_exports_of_one_series(app, world) -> None:
    from services import exports

    daily = world["daily"]
    with session_scope() as session:
        schedule.queue_story(session, world["approved"], str(daily), day=world["start"] + timedelta(days=1))
    client = client_for(app, "editor")

    response = client.get(f"/calendar/export.csv?series={daily}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote(f'{DAILY}排期表.csv')}" in disposition
    assert f'filename="schedule-{daily}.csv"' in disposition
    with session_scope() as session:
        assert response.content == exports.to_csv(exports.schedule_table(session, str(daily)))
    text = response.content.decode("utf-8-sig")
    assert APPROVED in text and text.count("\r\n") == 21  # the header and the series' 20 issues

    response = client.get(f"/calendar/export.xlsx?series={daily}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert f"filename*=UTF-8''{quote(f'{DAILY}排期表.xlsx')}" in response.headers["content-disposition"]
    assert zipfile.is_zipfile(io.BytesIO(response.content))
    from openpyxl import load_workbook

    cells = [c for row in load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True) for c in row]
    assert APPROVED in cells and DAILY in "".join(str(c) for c in cells if c)

    missing = client.get("/calendar/export.csv")
    assert missing.status_code == 422 and "请先选择要导出的栏目" in missing.text
    assert client.get("/calendar/export.xlsx?series=9999").status_code == 404
    assert TestClient(app).get(f"/calendar/export.csv?series={daily}", follow_redirects=False).status_code == 303
