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

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image
from tests.helpers import RecordingQueue, approve

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
USER = ("editor1", "browser-pass-123")
TITLE = "黄山区新增公办学位1200个"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@pytest.fixture
def server(home: Path, tmp_path: Path) -> Iterator[str]:
    """`fanout web` as a real process with this test's environment; its base URL."""
    port = free_port()
    log_path = tmp_path / "web.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "web", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"fanout web exited with {process.returncode}:\n{log_path.read_text()[-3000:]}",
                            pytrace=False)
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"fanout web did not answer /healthz in 30 s:\n{log_path.read_text()[-3000:]}",
                            pytrace=False)
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode is not None


@pytest.fixture
def browser_page() -> Iterator:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: run `scripts/system-deps.sh --test` to install Debian's chromium",
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield page
            context.close()
        finally:
            browser.close()


def assert_real_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert len(data) > 5_000, f"{path.name} is suspiciously small ({len(data)} bytes)"
    with Image.open(path) as image:
        assert image.size[0] >= 800 and image.size[1] >= 600, image.size
        colors = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colors is None or len(colors) > 20, f"{path.name} looks blank ({len(colors)} colours)"


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
