"""批量导入 / 导出 on the story list, through FastAPI's TestClient.

An editor uploads a manifest: a bad one comes back (422) with every problem in a Chinese table
(行 / 列 / 问题) and nothing imported; a zip of manifest and media imports as drafts of that editor
and the flash names them. CSRF, login and role are checked (a reviewer neither sees the forms nor
may use them). The 导出 link downloads the stories with their delivery records as XLSX, CSV or YAML,
filtered by date; the template downloads, and the template zip imports through the form.
"""

from __future__ import annotations

import io
import re
import zipfile
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from services.db import session_scope
from services.models import Asset, AuditEvent, Story
from tests.helpers import desk, jpeg


def client_for(app, name: str | None) -> TestClient:  # noqa: ANN001 - a FastAPI app
    client = TestClient(app)
    if name is not None:
        token = csrf_of(client.get("/login").text)
        response = client.post("/login", data={"username": name, "password": f"pw-{name}-123", "csrf": token,
                                               "next": "/"}, follow_redirects=False)
        assert response.status_code == 303, response.text
    return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "page carries no CSRF token"
    return match.group(1)


def upload(client: TestClient, name: str, content: bytes, *, csrf: str | None = None) -> Any:
    token = csrf_of(client.get("/").text) if csrf is None else csrf
    return client.post("/stories/import", data={"csrf": token}, files={"manifest": (name, content)},
                       follow_redirects=False)


def error_table(html: str) -> list[list[str]]:
    table = re.search(r'<table class="import-errors">(.*?)</table>', html, re.S)
    assert table, "no error table on the page"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)[1:]
    return [[unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in rows]


def state(settings) -> tuple[int, int, int]:  # noqa: ANN001
    with session_scope() as session:
        stories = session.scalar(select(func.count()).select_from(Story))
        assets = session.scalar(select(func.count()).select_from(Asset))
    files = [p for p in settings.media_dir.rglob("*") if p.is_file()] if settings.media_dir.exists() else []
    return stories, assets, len(files)


@pytest.fixture
def people(home: Path) -> dict[str, int]:
    with session_scope() as session:
        return {name: user.id for name, user in desk(session).items()}


def test_a_bad_manifest_shows_every_problem_in_chinese_and_imports_nothing(app, people, settings):
    client = client_for(app, "editor")
    manifest = ("标题,正文,封面,视频入点\n"
                "好的一篇,正文,,\n"
                ",正文,,\n"
                "第三篇,,../../etc/passwd,十秒\n").encode("utf-8-sig")
    before = state(settings)
    response = upload(client, "稿件清单.csv", manifest)
    assert response.status_code == 422
    assert "“稿件清单.csv”：导入清单有 5 处问题（涉及 2 行），未导入任何稿件" in unescape(response.text)
    assert error_table(response.text) == [
        ["3", "标题", "标题不能为空"],
        ["4", "正文", "正文不能为空（填写“正文”或“正文文件”）"],
        ["4", "封面", "“../../etc/passwd”指向清单所在文件夹之外，不允许"],
        ["4", "视频入点", "“视频入点”应为秒数，如 75 或 1:15"],
        ["4", "视频入点", "设置入点和出点须同时填写视频"],
    ]
    assert "还没有稿件" in response.text  # the list is shown again, still empty
    assert state(settings) == before
    broken = upload(client, "清单.xlsx", b"not a workbook")
    assert broken.status_code == 422 and error_table(broken.text) == [["整个文件", "—", "不是有效的 Excel（.xlsx）文件"]]


def test_a_zip_of_manifest_and_media_imports_as_drafts_of_the_editor(app, people, settings, tmp_path):
    client = client_for(app, "editor")
    cover = jpeg(tmp_path / "cover.jpg").read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("稿件/清单.yaml", yaml.safe_dump([
            {"标题": "压缩包里的第一篇", "正文": "正文一", "封面": "图片/封面.jpg", "封面替代文字": "封面说明"},
            {"标题": "压缩包里的第二篇", "正文": "正文二", "配图": "图片/封面.jpg"},
        ], allow_unicode=True))
        archive.writestr("稿件/图片/封面.jpg", cover)
    response = upload(client, "本周稿件.zip", buffer.getvalue())
    assert response.status_code == 303 and response.headers["location"] == "/"
    page = client.get("/").text
    flash = re.search(r'<p class="flash"[^>]*>([^<]+)</p>', page).group(1)
    with session_scope() as session:
        stories = session.scalars(select(Story).order_by(Story.id)).all()
        ids = [s.id for s in stories]
        assert [s.current.title for s in stories] == ["压缩包里的第一篇", "压缩包里的第二篇"]
        assert {s.created_by_id for s in stories} == {people["editor"]}
        assert {s.current.review_state for s in stories} == {"draft"}
        assert [(m.role, m.alt) for m in stories[0].current.media] == [("cover", "封面说明")]
        assert session.scalar(select(func.count()).select_from(Asset)) == 1
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "import"))
        assert event.actor_id == people["editor"] and event.data["manifest"] == "本周稿件.zip"
    assert unescape(flash) == f"已从“本周稿件.zip”导入 2 篇稿件（草稿，需提交审核）：#{ids[0]}、#{ids[1]}"
    assert "压缩包里的第一篇" in page and "压缩包里的第二篇" in page


def test_csrf_login_role_and_a_missing_file(app, people, settings):
    manifest = "标题,正文\n一篇,正文\n".encode()
    anonymous = client_for(app, None)
    assert anonymous.get("/stories/export", follow_redirects=False).headers["location"] == "/login?next=/stories/export"
    editor = client_for(app, "editor")
    assert upload(editor, "a.csv", manifest, csrf="forged").status_code == 403
    empty = editor.post("/stories/import", data={"csrf": csrf_of(editor.get("/").text)}, follow_redirects=False)
    assert empty.status_code == 422 and "请选择要导入的清单文件（Excel、CSV、YAML 或 zip）" in unescape(empty.text)
    reviewer = client_for(app, "r1")
    page = reviewer.get("/").text
    assert 'action="/stories/import"' not in page and "/stories/export" not in page
    refused = upload(reviewer, "a.csv", manifest, csrf=csrf_of(page))
    assert refused.status_code == 403 and "当前用户没有权限" in unescape(refused.text)
    assert reviewer.get("/stories/export").status_code == 403
    assert state(settings)[0] == 0


def test_export_downloads_stories_and_delivery_records(app, people, settings, tmp_path):
    from datetime import datetime, timezone

    from sqlalchemy import update

    from services import dispatch
    from services.models import Delivery, StoryVersion
    from tests.helpers import RecordingQueue, add_site_accounts

    client = client_for(app, "editor")
    assert upload(client, "a.csv", "标题,正文\n导出稿件,正文\n另一篇,正文\n".encode()).status_code == 303
    with session_scope() as session:
        add_site_accounts(session, settings)
        first, second = session.scalars(select(Story.id).order_by(Story.id)).all()
        session.execute(update(StoryVersion).where(StoryVersion.story_id == first).values(review_state="approved"))
        session.execute(update(Story).values(created_at=datetime(2026, 3, 1, tzinfo=timezone.utc)))
        session.execute(update(StoryVersion).values(created_at=datetime(2026, 3, 1, tzinfo=timezone.utc)))
    with session_scope() as session:
        delivery_ids = dispatch.plan_publication(session, RecordingQueue(), first).created
        session.execute(update(Delivery).where(Delivery.id == delivery_ids[0]).values(
            state="published", published_at=datetime(2026, 5, 4, 1, 0, tzinfo=timezone.utc),
            remote_url="http://127.0.0.1:8000/site/stories/1/"))
    assert 'href="/stories/export?format=xlsx"' in client.get("/").text  # the 导出 link
    response = client.get("/stories/export?format=xlsx")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="fanout-stories.xlsx"'
    book = load_workbook(io.BytesIO(response.content))
    stories, deliveries = book["稿件"], book["发布记录"]
    assert [c.value for c in stories[2]][:3] == [first, 1, "approved"]
    assert [c.value for c in stories[3]][:3] == [second, 1, "draft"]
    assert [[c.value for c in row][3:8] for row in deliveries.iter_rows(min_row=2)] == [
        ["website", "网站", "published", "http://127.0.0.1:8000/site/stories/1/", "2026-05-04T09:00:00+08:00"],
        ["rss", "RSS", "planned", None, None]]
    in_may = client.get("/stories/export?format=yaml&start=2026-05-01&end=2026-05-31")
    assert in_may.headers["content-disposition"] == 'attachment; filename="fanout-stories-20260501-20260531.yaml"'
    document = yaml.safe_load(in_may.content)
    assert [s["story_id"] for s in document["stories"]] == [first]  # published in May; written in March
    assert len(document["deliveries"]) == 2
    in_march = client.get("/stories/export?format=csv&start=2026-03-01&end=2026-03-01")
    text = in_march.content.decode("utf-8-sig")
    assert in_march.headers["content-type"].startswith("text/csv") and text.startswith("稿件编号,版本,审核状态")
    assert "导出稿件" in text and "另一篇" in text and "\r\n\r\n发布任务编号," in text
    bad = client.get("/stories/export?format=xlsx&start=2026-13-01")
    assert bad.status_code == 422 and "开始日期格式应为 YYYY-MM-DD" in bad.text
    assert client.get("/stories/export?format=pdf").status_code == 404


def test_the_template_downloads_and_its_zip_imports_through_the_form(app, people, settings):
    client = client_for(app, "editor")
    page = client.get("/").text
    for fmt in ("xlsx", "zip", "csv", "yaml"):
        assert f'href="/stories/import/template.{fmt}"' in page
    book = load_workbook(io.BytesIO(client.get("/stories/import/template.xlsx").content))
    assert book.sheetnames == ["稿件", "填写说明"]
    assert client.get("/stories/import/template.csv").content.decode("utf-8-sig").startswith("标题,正文,")
    assert client.get("/stories/import/template.pdf").status_code == 404
    archive = client.get("/stories/import/template.zip")
    assert archive.headers["content-type"] == "application/zip"
    assert upload(client, "template.zip", archive.content).status_code == 303
    with session_scope() as session:
        units = [s.current.unit for s in session.scalars(select(Story).order_by(Story.id))]
    assert units == ["县教育局", "区住房城乡建设局"]
