"""批量导入 in a real browser: an editor uploads a manifest with mistakes and sees each one in
Chinese (row, column, problem) with nothing imported, fixes it, and sees the new drafts listed.
Screenshots are checked to be real PNGs. Chromium missing is a failure, never a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import assert_real_png

pytestmark = pytest.mark.browser

USER = ("editor-bulk", "bulk-pass-12345")
HEADER = "标题,正文,主题,责任单位,栏目标识,封面\n"


@pytest.fixture
def editor(settings) -> None:  # noqa: ANN001
    from services.db import session_scope
    from services.users import create_user

    with session_scope() as session:
        create_user(session, USER[0], roles=["editor"], password=USER[1], display_name="李编辑")


def _story_count() -> int:
    from sqlalchemy import func, select

    from services.db import session_scope
    from services.models import Story

    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Story))


def test_an_editor_imports_a_manifest_after_fixing_what_it_reports(server: str, editor, browser_page,  # noqa: ANN001
                                                                   tmp_path: Path) -> None:
    from playwright.sync_api import expect

    bad = tmp_path / "清单-有误.csv"
    bad.write_text(HEADER
                   + "新建学校投入使用,今年秋季新增学位1200个。,基础教育,区教育局,群众满意度提升行动之基础教育篇,\n"
                   + ",没有标题的一行。,基础教育,区教育局,群众满意度提升行动之基础教育篇,\n"
                   + "封面路径越界,正文。,基础教育,区教育局,群众满意度提升行动之基础教育篇,../../etc/passwd\n",
                   encoding="utf-8")
    good = tmp_path / "清单.csv"
    good.write_text(HEADER
                    + "新建学校投入使用,今年秋季新增学位1200个。,基础教育,区教育局,群众满意度提升行动之基础教育篇,\n"
                    + "老旧小区改造完工,12个小区完成改造。,老旧小区改造,区住建局,群众满意度提升行动之城市更新篇,\n",
                    encoding="utf-8")
    page = browser_page
    page.goto(f"{server}/login")
    page.get_by_label("用户名").fill(USER[0])
    page.get_by_label("密码").fill(USER[1])
    page.get_by_role("button", name="登录").click()
    expect(page.locator("input[name=manifest]")).to_be_hidden()  # folded: the list comes first
    page.get_by_role("heading", name="批量导入与导出").click()

    page.locator("input[name=manifest]").set_input_files(str(bad))
    page.get_by_role("button", name="批量导入").click()
    expect(page.get_by_role("alert")).to_contain_text("清单-有误.csv")  # shown unfolded, with the problems
    problems = page.locator("table.import-errors tbody tr")
    expect(problems).to_have_count(2)
    expect(problems.nth(0)).to_contain_text("标题")
    expect(problems.nth(1)).to_contain_text("封面")
    page.screenshot(path=str(tmp_path / "bulk-errors.png"), full_page=True)
    assert_real_png(tmp_path / "bulk-errors.png")
    assert _story_count() == 0  # one bad row: nothing imported

    page.locator("input[name=manifest]").set_input_files(str(good))  # still unfolded after the errors
    page.get_by_role("button", name="批量导入").click()
    expect(page.locator("table.stories tbody tr", has_text="新建学校投入使用")).to_have_count(1)
    expect(page.locator("table.stories tbody tr", has_text="老旧小区改造完工")).to_have_count(1)
    page.screenshot(path=str(tmp_path / "bulk-imported.png"), full_page=True)
    assert_real_png(tmp_path / "bulk-imported.png")
    assert _story_count() == 2
