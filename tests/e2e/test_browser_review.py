"""三审三校 in a real browser: Debian's chromium driven by Playwright against `fanout web`.

Covers: the web app started as its own process (`python -m services.cli web`) on a free port;
the desk (editor, r1, r2, r3), a website and an RSS account and one draft story (its cover
lacks alt text, so the proof checks raise one warning) seeded in-process. In the browser the
editor logs in and submits the story from its page (no publish button yet: 通过三审后才能发布);
then r1, r2 and r3 in turn log in, follow 审核 (with its badge) to their inbox, open the story,
see the proof findings and the two sandboxed preview iframes (the website page with its cover
image loaded through the preview route, the RSS item), tick 我已确认 for the warning and
approve; finally the editor sees 已通过三审 and the 发布 button. Screenshots of each step are
written under the test's tmp_path and checked to be real, non-blank PNGs whose preview iframes
are painted (not blank boxes). Chromium missing is a failure that names
`scripts/system-deps.sh --test`, never a skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from tests.e2e.conftest import assert_real_png
from tests.helpers import desk, jpeg

pytestmark = pytest.mark.browser

TITLE = "黄山区城区新增公办学位1200个"
LABEL = "黄山市黄山区30项民生实事之教育民生实事"


@pytest.fixture
def draft_story(settings, storage, tmp_path: Path) -> int:  # noqa: ANN001
    """The desk, a website and an RSS account, and one draft story by the editor."""
    from services.accounts import add_account
    from services.db import session_scope
    from services.stories import MediaInput, StoryInput, create_story

    with session_scope() as session:
        users = desk(session)
        add_account(session, settings, "website", "区融媒体中心网站")
        add_account(session, settings, "rss", "区融媒体中心订阅")
        story = create_story(session, storage, StoryInput(
            title=TITLE, label=LABEL, theme="基础教育", unit="区教育局", summary="秋季学期新增公办学位1200个。",
            body_markdown="今年秋季学期，全区新增公办学位 **1200** 个。\n\n新建的两所学校已投入使用。",
            media=[MediaInput(path=jpeg(tmp_path / "cover.jpg", color=(40, 110, 170)), role="cover", alt="")]),
            actor=users["editor"])
        return story.id


def settle_previews(page) -> None:  # noqa: ANN001
    """Before a full-page shot: both previews loaded with their images, scrolled to the top (a
    full-page shot leaves iframes blank that were scrolled out of view, as filling the opinion
    does), and two frames rendered."""
    from playwright.sync_api import expect

    for title in ("网站预览", "RSS预览"):
        frame = page.frame_locator(f"iframe[title='{title}']")
        expect(frame.get_by_role("heading", level=1)).to_have_text(TITLE)
        expect(frame.locator("img").first).to_be_visible()
        assert frame.locator("img").first.evaluate("img => img.complete && img.naturalWidth > 0"), title
    page.evaluate("window.scrollTo(0, 0)")
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def assert_painted(path: Path, frames) -> None:  # noqa: ANN001
    """Each iframe's area of a full-page shot (taken scrolled to the top) shows its page, not a blank box."""
    with Image.open(path) as image:
        for index in range(frames.count()):
            box = frames.nth(index).bounding_box()
            area = image.convert("RGB").crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]),
                                              int(box["y"] + box["height"])))
            colors = area.getcolors(maxcolors=1 << 16)
            assert colors is None or len(colors) > 20, f"{path.name}: iframe {index} is blank ({len(colors)} colours)"


def log_in(page, server: str, name: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.goto(f"{server}/login")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(f"pw-{name}-123")
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{server}/")
    expect(page.get_by_role("heading", name="稿件", exact=True)).to_be_visible()


def log_out(page, server: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(f"{server}/login")


def test_editor_and_three_reviewers_take_a_story_to_approved(server: str, draft_story: int,  # noqa: ANN001
                                                             browser_page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser_page
    shots = tmp_path / "screenshots"
    shots.mkdir()
    taken: list[str] = []

    def shot(name: str) -> None:
        page.screenshot(path=str(shots / name), full_page=True)
        taken.append(name)

    # -- the editor submits the story from its page
    log_in(page, server, "editor")
    expect(page.get_by_role("link", name="审核", exact=True)).to_have_count(0)  # not a reviewer
    row = page.locator("table.stories tbody tr", has_text=TITLE)
    expect(row.locator(".badge", has_text="草稿")).to_be_visible()
    row.get_by_role("link", name=TITLE).click()
    expect(page).to_have_url(f"{server}/stories/{draft_story}")
    expect(page.get_by_text("通过三审后才能发布")).to_be_visible()
    expect(page.get_by_role("button", name="发布到全部渠道")).to_have_count(0)
    shot("01-editor-draft.png")
    page.get_by_role("button", name="提交审核").click()
    expect(page).to_have_url(f"{server}/stories/{draft_story}")
    expect(page.get_by_role("status")).to_contain_text("已提交审核，等待初审")
    expect(page.get_by_role("button", name="撤回")).to_be_visible()
    shot("02-editor-submitted.png")
    log_out(page, server)

    # -- 初审, 复审, 终审
    for step, (name, level_zh, after_zh) in enumerate(
            (("r1", "初审", "待复审"), ("r2", "复审", "待终审"), ("r3", "终审", "已通过三审")), start=3):
        log_in(page, server, name)
        nav = page.locator("a.nav-review")
        expect(nav).to_have_text("审核 1")
        nav.click()
        expect(page).to_have_url(f"{server}/review")
        section = page.locator(f"section#level-{step - 2}")
        expect(section.get_by_role("heading")).to_have_text(f"待{level_zh} 1")
        inbox_row = section.locator("tbody tr", has_text=TITLE)
        expect(inbox_row).to_contain_text("1 个提示")
        shot(f"{step:02d}-{name}-inbox.png")
        inbox_row.get_by_role("link", name=TITLE).click()
        expect(page).to_have_url(f"{server}/review/{draft_story}")
        expect(page.locator(".waiting")).to_have_text(f"当前等待：{level_zh}")

        warning = page.locator("li.finding.warn")
        expect(warning).to_have_count(1)
        expect(warning).to_contain_text("缺少替代文字")
        frames = page.locator("iframe.frame")
        expect(frames).to_have_count(2)
        for index in range(2):
            sandbox = frames.nth(index).get_attribute("sandbox")
            assert sandbox is not None and "allow-scripts" not in sandbox
        website = page.frame_locator("iframe[title='网站预览']")
        expect(website.get_by_role("heading", level=1)).to_have_text(TITLE)
        cover = website.locator("figure.story-figure img")
        expect(cover).to_be_visible()
        box = cover.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 60, f"cover image not laid out: {box}"
        rss = page.frame_locator("iframe[title='RSS预览']")
        expect(rss.get_by_role("heading", level=1)).to_have_text(TITLE)
        expect(page.locator(".preview code")).to_have_count(2)  # the post hashes

        for box_index in range(page.locator("input[name=ack]").count()):
            page.locator("input[name=ack]").nth(box_index).check()
        page.get_by_label("审核意见（退回时必填）").fill(f"{level_zh}：内容属实，同意。")
        settle_previews(page)
        shot(f"{step:02d}-{name}-review.png")
        assert_painted(shots / f"{step:02d}-{name}-review.png", frames)
        page.get_by_role("button", name=f"通过{level_zh}").click()
        expect(page).to_have_url(f"{server}/review/{draft_story}")
        expect(page.get_by_role("status")).to_have_text(f"已签署{level_zh}：通过")
        expect(page.locator("section", has=page.locator("#story-title")).locator(".badge").first).to_have_text(after_zh)
        expect(page.locator("table.signatures tbody tr")).to_have_count(step - 2)
        settle_previews(page)
        shot(f"{step:02d}-{name}-signed.png")
        assert_painted(shots / f"{step:02d}-{name}-signed.png", frames)
        log_out(page, server)

    # -- the editor sees it approved, with the publish button
    log_in(page, server, "editor")
    row = page.locator("table.stories tbody tr", has_text=TITLE)
    expect(row.locator(".badge", has_text="已通过三审")).to_be_visible()
    row.get_by_role("link", name=TITLE).click()
    expect(page.get_by_text("审核状态：已通过三审")).to_be_visible()
    expect(page.get_by_role("button", name="发布到全部渠道")).to_be_visible()
    expect(page.get_by_text("通过三审后才能发布")).to_have_count(0)
    signatures = page.locator("table.signatures tbody tr")
    expect(signatures).to_have_count(3)
    for level_zh, reviewer in (("初审", "r1"), ("复审", "r2"), ("终审", "r3")):
        expect(signatures.filter(has_text=level_zh)).to_contain_text(reviewer)
    shot("06-editor-approved.png")

    assert len(taken) == 12
    for name in taken:
        assert_real_png(shots / name)
