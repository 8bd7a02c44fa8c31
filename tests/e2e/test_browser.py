"""The editor UI in a real browser: Debian's chromium driven by Playwright against `fanout web`.

Covers: the web app started as its own process (`python -m services.cli web`) on a free port
and answering /healthz; a user and one story published in-process to the website and RSS;
in the browser, `/` leads to the login page, logging in shows the story list with the title
and the per-channel badges 「网站 · 已发布」「RSS · 已发布」, the story's page shows its
deliveries table, and /site/ shows the story card. Screenshots of each step are written under
the test's tmp_path and checked to be real, non-blank PNGs. Chromium missing is a failure
that names `scripts/system-deps.sh --test`, never a skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from tests.e2e.conftest import assert_real_png
from tests.helpers import RecordingQueue, approve

pytestmark = pytest.mark.browser

USER = ("editor1", "browser-pass-123")
TITLE = "黄山区新增公办学位1200个"



@pytest.fixture
def published_story(settings, storage, tmp_path: Path) -> int:  # noqa: ANN001
    """A user and one story published in-process to a website and an RSS account."""
    from services import dispatch
    from services.accounts import add_account
    from services.db import session_scope
    from services.stories import MediaInput, StoryInput, create_story
    from services.users import create_user

    cover = tmp_path / "cover.jpg"
    Image.new("RGB", (1200, 800), (40, 110, 170)).save(cover, "JPEG", quality=85)
    with session_scope() as session:
        create_user(session, USER[0], roles=["editor"], password=USER[1], display_name="张编辑")
        story = create_story(session, storage, StoryInput(
            title=TITLE, body_markdown="今年秋季学期，全区新增公办学位 **1200** 个。", theme="基础教育",
            unit="区教育局", label="黄山市黄山区30项民生实事之教育民生实事",
            media=[MediaInput(path=cover, role="cover", alt="新建校舍外景")]))
        story_id = story.id
        add_account(session, settings, "website", "区融媒体中心网站")
        add_account(session, settings, "rss", "区融媒体中心订阅")
    queue = RecordingQueue()
    approve(settings, storage, story_id)
    with session_scope() as session:
        planned = dispatch.plan_publication(session, queue, story_id)
    for delivery_id in planned.created:
        assert dispatch.render_delivery(settings, storage, queue, delivery_id, worker="test") == "ready"
        assert dispatch.publish_delivery(settings, storage, queue, delivery_id, worker="test") == "published"
    return story_id


def test_login_story_list_story_page_and_site(server: str, published_story: int, browser_page,  # noqa: ANN001
                                              tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser_page
    shots = tmp_path / "screenshots"
    shots.mkdir()

    page.goto(f"{server}/")
    expect(page).to_have_url(f"{server}/login?next=/")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    page.screenshot(path=str(shots / "1-login.png"), full_page=True)

    page.get_by_label("用户名").fill(USER[0])
    page.get_by_label("密码").fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_have_text("用户名或密码错误")

    page.get_by_label("密码").fill(USER[1])
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{server}/")
    expect(page.get_by_role("heading", name="稿件")).to_be_visible()
    row = page.locator("table.stories tbody tr", has_text=TITLE)
    expect(row).to_have_count(1)
    expect(row.locator(".badge", has_text="网站 · 已发布")).to_be_visible()
    expect(row.locator(".badge", has_text="RSS · 已发布")).to_be_visible()
    expect(page.get_by_text("张编辑（editor）")).to_be_visible()
    page.screenshot(path=str(shots / "2-stories.png"), full_page=True)

    row.get_by_role("link", name=TITLE).click()
    expect(page).to_have_url(f"{server}/stories/{published_story}")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(page.get_by_role("heading", name="各渠道发布")).to_be_visible()
    deliveries = page.locator("section table tbody tr")
    expect(deliveries).to_have_count(2)
    expect(deliveries.filter(has_text="网站 · 区融媒体中心网站")).to_contain_text("已发布")
    expect(deliveries.filter(has_text="RSS · 区融媒体中心订阅")).to_contain_text("已发布")
    page.screenshot(path=str(shots / "3-story.png"), full_page=True)

    page.goto(f"{server}/site/")
    card = page.get_by_role("link", name=TITLE).first
    expect(card).to_be_visible()
    expect(page.get_by_text("新增公办学位").first).to_be_visible()
    page.screenshot(path=str(shots / "4-site.png"), full_page=True)
    card.click()
    expect(page).to_have_url(f"{server}/site/stories/{published_story}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    cover = page.get_by_role("img", name="新建校舍外景")
    expect(cover).to_be_visible()
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", cover.element_handle())
    page.screenshot(path=str(shots / "5-site-story.png"), full_page=True)

    for name in ("1-login.png", "2-stories.png", "3-story.png", "4-site.png", "5-site-story.png"):
        assert_real_png(shots / name)
