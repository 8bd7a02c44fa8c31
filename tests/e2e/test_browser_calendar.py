"""The schedule calendar (排期日历) in a real browser: Debian's chromium via Playwright against
`fanout web`.

Dates are relative to today in Asia/Shanghai (daily series with holidays="publish": no holiday
data needed). Seeded in-process: the desk, a website and an RSS account, a campaign with a daily
图文 series (09:30) starting the day after tomorrow and a daily 访谈 series (19:30) starting
tomorrow, and two approved campaign stories, one already queued in the 访谈 series. In the
browser the editor logs in, follows 排期日历 in the nav to the month view (一…日 headers, the
gap banner), opens the week view of the 图文 series' first issue, picks the approved story in
that open slot's select and clicks 排入: the flash confirms it and the card shows 已排期 with the
story's title. Then the release tick runs in-process at that slot's release time (the web
process is not involved), and the render/publish pipeline runs in-process for the deliveries
it planned; after a reload the card shows 已发布 and one badge per channel (网站 · 已发布,
RSS · 已发布), while the same day's 访谈 issue (19:30, still open and within two working days)
carries the 缺稿 flag and the gap banner counts it. Full-page screenshots are real, non-blank
PNGs; the week view's is also written to /tmp/calendar.png for people to look at.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.e2e.conftest import assert_real_png
from tests.helpers import (
    RecordingQueue,
    add_site_accounts,
    approve,
    desk,
    make_story,
    run_pipeline,
)

pytestmark = pytest.mark.browser

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAMPAIGN = "群众满意度提升行动"
SERIES = "教育民生图文"
TALKS = "民生访谈"
TITLE = "城区新增公办学位1200个"
OTHER = "县人民医院新增夜间门诊"
SHOT = Path("/tmp/calendar.png")


@pytest.fixture
def world(settings, storage, tmp_path: Path) -> dict:
    from services import schedule
    from services.db import session_scope
    from services.models import Slot

    today = datetime.now(SHANGHAI).date()
    start = today + timedelta(days=2)
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
        schedule.add_campaign(session, CAMPAIGN, label_template="群众满意度提升行动之{theme}篇")
        series = schedule.add_series(session, settings, SERIES, campaign=CAMPAIGN, kind="图文", cadence_name="daily",
                                     start=start, release_time="09:30", count=10)
        talks = schedule.add_series(session, settings, TALKS, campaign=CAMPAIGN, kind="访谈", cadence_name="daily",
                                    start=today + timedelta(days=1), release_time="19:30", count=10)
        story = make_story(session, storage, tmp_path, title=TITLE, campaign=CAMPAIGN)
        other = make_story(session, storage, tmp_path, title=OTHER, campaign=CAMPAIGN)
        slot = session.scalar(select(Slot).where(Slot.series_id == series.id, Slot.day == start))
        talk = session.scalar(select(Slot.id).where(Slot.series_id == talks.id, Slot.day == start))
        ids = {"slot": slot.id, "release_at": slot.release_at, "series": series.id, "talks": talks.id, "talk": talk}
    approve(settings, storage, story)
    approve(settings, storage, other)
    with session_scope() as session:  # the 访谈 series has its fifth issue filled already
        schedule.queue_story(session, other, str(ids["talks"]), day=today + timedelta(days=5))
    return {**ids, "start": start, "story": story}


def log_in(page, server: str, name: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server}/login")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(f"pw-{name}-123")
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{server}/")


def test_editor_queues_a_story_in_the_calendar_and_sees_it_released(server: str, world: dict,
                                                                     browser_page, settings, storage,
                                                                     tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from services import schedule
    from services.db import session_scope
    from services.models import Slot

    page = browser_page
    start, slot = world["start"], world["slot"]
    log_in(page, server, "editor")

    # -- the month view from the nav, then the week of the series' first issue
    page.get_by_role("link", name="排期日历").click()
    expect(page).to_have_url(f"{server}/calendar")
    expect(page.get_by_role("heading", level=1)).to_contain_text("排期日历")
    expect(page.locator("table.calendar.month thead th")).to_have_text(["一", "二", "三", "四", "五", "六", "日"])
    expect(page.locator(".gap-banner")).to_contain_text("个期次缺稿，需在 2 个工作日内补齐")
    page.goto(f"{server}/calendar?view=week&date={start.isoformat()}")
    expect(page.locator("table.calendar.week td.day")).to_have_count(7)
    card = page.locator(f'article[data-slot="{slot}"]')
    expect(card.locator(".slot-state")).to_have_text("空档")
    expect(card).to_contain_text(f"{SERIES} 第1期")
    expect(card.locator(".time")).to_have_text("09:30")

    # -- pick the approved story in the open slot and queue it
    card.get_by_role("combobox").select_option(label=f"{TITLE}（#{world['story']}）")
    card.get_by_role("button", name="排入").click()
    expect(page.get_by_role("status").filter(has_text="已将")).to_have_text(
        f"已将《{TITLE}》排入{SERIES} 第1期（{start.month}月{start.day}日）")
    card = page.locator(f'article[data-slot="{slot}"]')
    expect(card.locator(".slot-state")).to_have_text("已排期")
    expect(card.get_by_role("link", name=TITLE)).to_have_attribute("href", f"/stories/{world['story']}")
    expect(card.get_by_role("button", name="撤下")).to_be_visible()
    page.screenshot(path=str(tmp_path / "calendar-queued.png"), full_page=True)
    with session_scope() as session:
        assert session.get(Slot, slot).state == "filled"

    # -- the release tick at the slot's time, then the deliveries' render and publish, in-process
    queue = RecordingQueue()
    with session_scope() as session:
        result = schedule.tick(session, settings, queue, now=world["release_at"])
    assert result.released == [slot] and not result.frozen
    rendered = queue.of("render")
    assert len(rendered) == 2
    assert run_pipeline(settings, storage, queue, rendered) == ["published", "published"]

    page.reload()
    card = page.locator(f'article[data-slot="{slot}"]')
    expect(card.locator(".slot-state")).to_have_text("已发布")
    badges = card.locator(".badges .badge")
    expect(badges).to_have_count(2)
    expect(badges.filter(has_text="网站")).to_have_text("网站 · 已发布")
    expect(badges.filter(has_text="RSS")).to_have_text("RSS · 已发布")
    expect(card.get_by_role("button", name="立即发布")).to_have_count(0)
    expect(page.locator(f'article[data-slot="{world["talk"]}"] .gap-flag')).to_have_text("缺稿")
    expect(page.locator(".gap-banner")).to_contain_text("个期次缺稿，需在 2 个工作日内补齐")
    page.evaluate("window.scrollTo(0, 0)")
    week_shot = tmp_path / "calendar-week.png"
    page.screenshot(path=str(week_shot), full_page=True)
    assert_real_png(week_shot)
    shutil.copyfile(week_shot, SHOT)

    page.get_by_role("link", name="月视图").click()
    expect(page.locator("table.calendar.month")).to_be_visible()
    expect(page.locator(f'article[data-slot="{slot}"] .slot-state')).to_have_text("已发布")
    month_shot = tmp_path / "calendar-month.png"
    page.screenshot(path=str(month_shot), full_page=True)
    assert_real_png(month_shot)
    assert_real_png(tmp_path / "calendar-queued.png")
