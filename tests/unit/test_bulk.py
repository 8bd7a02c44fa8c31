"""Bulk import and export of stories (services/bulk.py) against the database, on SQLite and PostgreSQL.

Each bad manifest gets its exact errors (row, column, English, Chinese), every row is checked
before anything is written, and a failing import leaves nothing: no story, no asset, no audit
event, no file in the media store — also when it fails while storing, after validation. A
good manifest in each format makes drafts owned by the importing editor, audited. Export writes
the stories with their review state and delivery records, and its zip imports back as the same
stories with the same media.
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select, update

from services import bulk, dispatch, schedule
from services.db import session_scope
from services.errors import NotFound, PermissionDenied, ValidationError
from services.models import Asset, AuditEvent, Delivery, Story, StoryVersion
from services.stories import MediaInput, StoryInput, create_story
from tests.helpers import RecordingQueue, add_site_accounts, desk, jpeg, video

GOOD = {"标题": "教育稿件", "正文": "正文第一段。\n\n第二段。", "封面": "cover.jpg"}
GBK_CSV = "标题,正文\n稿件,正文\n".encode("gbk")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 2 s test video for the module (encoding one takes a few seconds)."""
    return video(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The manifest's folder with a cover, a second picture, a text file posing as a JPEG, and a
    picture just outside it."""
    here = tmp_path / "manifest"
    here.mkdir()
    jpeg(here / "cover.jpg")
    jpeg(here / "photo.jpg", color=(20, 140, 60))
    (here / "notes.jpg").write_text("this is not a picture", encoding="utf-8")
    jpeg(tmp_path / "outside.jpg", color=(90, 90, 200))
    return here


def write_csv(folder: Path, rows: list[dict[str, str]], name: str = "stories.csv", bom: bool = True) -> Path:
    header = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([row.get(k, "") for k in header] for row in rows)
    path = folder / name
    path.write_bytes(buffer.getvalue().encode("utf-8-sig" if bom else "utf-8"))
    return path


def write_xlsx(folder: Path, rows: list[dict[str, Any]], name: str = "stories.xlsx") -> Path:
    header = list(dict.fromkeys(k for row in rows for k in row))
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append([row.get(k) for k in header])
    path = folder / name
    book.save(path)
    return path


def write_yaml(folder: Path, rows: list[dict[str, Any]], name: str = "stories.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(rows, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run_import(storage, path: Path, actor: str | None = "editor",  # noqa: ANN001
               name: str | None = None) -> bulk.ImportResult:
    with session_scope() as session:
        user = desk(session)[actor] if actor else None
        return bulk.import_manifest(session, storage, path, actor=user, name=name)


def failing(storage, path: Path, name: str | None = None) -> list[tuple[int, str, str, str]]:  # noqa: ANN001
    with pytest.raises(bulk.ManifestError) as caught:
        run_import(storage, path, name=name)
    return [(e.row, e.column, e.message, e.message_zh) for e in caught.value.errors]


def counts(settings) -> tuple[int, int, int, int]:  # noqa: ANN001
    """(stories, assets, audit events, files in the media store)."""
    with session_scope() as session:
        desk(session)  # the users exist before and after, whatever the test did first
    with session_scope() as session:
        numbers = tuple(session.scalar(select(func.count()).select_from(model)) for model in (Story, Asset, AuditEvent))
    files = [p for p in settings.media_dir.rglob("*") if p.is_file()] if settings.media_dir.exists() else []
    return (*numbers, len(files))


def zip_of(folder: Path, members: dict[str, bytes | Path]) -> Path:
    path = folder.parent / "upload.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content.read_bytes() if isinstance(content, Path) else content)
    return path


# --------------------------------------------------------------------------- bad manifests, exact errors


def _row(**cells: str) -> list[dict[str, str]]:
    return [{**GOOD, **cells}]


BAD_ROWS = [
    # (case, rows, [(row, column, English, Chinese)])
    ("empty title", _row(标题="  "), [(2, "标题", "title must not be empty", "标题不能为空")]),
    ("no body", _row(正文=""), [(2, "正文", "the body is empty (fill in body or body_file)",
                                 "正文不能为空（填写“正文”或“正文文件”）")]),
    ("title too long", _row(标题="长" * 201), [(2, "标题", "title is 201 characters; the limit is 200",
                                                "标题共 201 字，超过上限 200 字")]),
    ("summary too long", _row(摘要="摘" * 501), [(2, "摘要", "summary is 501 characters; the limit is 500",
                                                  "摘要共 501 字，超过上限 500 字")]),
    ("body too long", _row(正文="字" * 50_001), [(2, "正文", "body is 50001 characters; the limit is 50000",
                                                  "正文共 50001 字，超过上限 50000 字")]),
    ("theme wider than its column", _row(主题="题" * 65), [(2, "主题", "theme is 65 characters; the limit is 64",
                                                           "主题共 65 字，超过上限 64 字")]),
    ("path out of the folder", _row(封面="../outside.jpg"), [
        (2, "封面", "../outside.jpg: the path leads out of the manifest's folder",
         "“../outside.jpg”指向清单所在文件夹之外，不允许")]),
    ("sneaky path out of the folder", _row(封面="media/../../outside.jpg"), [
        (2, "封面", "media/../../outside.jpg: the path leads out of the manifest's folder",
         "“media/../../outside.jpg”指向清单所在文件夹之外，不允许")]),
    ("absolute path", _row(封面="/etc/hostname"), [
        (2, "封面", "/etc/hostname: an absolute path; give it relative to the manifest's folder",
         "“/etc/hostname”是绝对路径，请写相对于清单所在文件夹的路径")]),
    ("windows absolute path", _row(封面="C:\\Users\\a.jpg"), [
        (2, "封面", "C:\\Users\\a.jpg: an absolute path; give it relative to the manifest's folder",
         "“C:\\Users\\a.jpg”是绝对路径，请写相对于清单所在文件夹的路径")]),
    ("missing media file", _row(封面="nope.jpg"), [
        (2, "封面", "nope.jpg: file not found next to the manifest", "找不到文件“nope.jpg”")]),
    ("text posing as a picture", _row(封面="notes.jpg"), [
        (2, "封面", "notes.jpg: unsupported type: content is text, not an accepted image (JPEG/PNG/WebP/GIF) "
                  "or video (MP4/MOV/WebM)", "notes.jpg：这是文本文件，不是图片或视频（文件扩展名与内容不符）")]),
    ("picture as the video", _row(视频="photo.jpg"), [
        (2, "视频", "photo.jpg: expected a video, got image (image/jpeg)", "photo.jpg：应为视频，实际是 image/jpeg")]),
    ("more alt texts than images", _row(配图="photo.jpg", 配图替代文字="一|二"), [
        (2, "配图替代文字", "2 alt texts for 1 images", "配图替代文字有 2 条，配图只有 1 张")]),
    ("cover alt without a cover", _row(封面="", 封面替代文字="说明"), [
        (2, "封面替代文字", "a cover alt text without a cover", "填写了封面替代文字，但没有封面")]),
    ("in point is no number", _row(视频入点="十秒"), [
        (2, "视频入点", "video_in is not a number of seconds: '十秒'", "“视频入点”应为秒数，如 75 或 1:15"),
        (2, "视频入点", "in/out points need a video", "设置入点和出点须同时填写视频")]),
    ("out point without a video", _row(视频出点="1:10"), [
        (2, "视频出点", "in/out points need a video", "设置入点和出点须同时填写视频")]),
    ("body and body file", _row(正文文件="body.md"), [
        (2, "正文文件", "give the body or a body file, not both", "“正文”和“正文文件”只能填写一项")]),
    ("body file out of the folder", _row(正文="", 正文文件="../outside.jpg"), [
        (2, "正文文件", "../outside.jpg: the path leads out of the manifest's folder",
         "“../outside.jpg”指向清单所在文件夹之外，不允许")]),
    ("unknown campaign", _row(活动="没有这个活动"), [
        (2, "活动", "no campaign '没有这个活动'", "活动“没有这个活动”不存在")]),
    ("a row twice", [GOOD, {"标题": "另一篇", "正文": "别的"}, dict(GOOD)], [
        (4, "标题", "repeats row 2 (same title and body)", "与第 2 行重复（标题和正文相同）")]),
    ("unknown column", _row(titel="x"), [
        (1, "titel", "unknown column 'titel' (did you mean 'title'?); the columns are listed in the import template",
         "无法识别的列“titel”（是否应为“title”？）；可用的列见导入模板")]),
    ("repeated column", [{"title": "a", "标题": "b", "正文": "c"}], [
        (1, "标题", "column '标题' repeats column 'title'", "“标题”列与“title”列重复")]),
    ("no title column", [{"正文": "c"}], [(1, "", "the manifest has no title (标题) column", "导入清单缺少“标题”列")]),
]


@pytest.mark.parametrize("case,rows,expected", BAD_ROWS, ids=[row[0] for row in BAD_ROWS])
def test_each_bad_row_gets_its_exact_error_and_nothing_is_imported(home, settings, storage, folder, case, rows,
                                                                    expected):
    (folder / "body.md").write_text("正文文件", encoding="utf-8")
    before = counts(settings)
    assert failing(storage, write_csv(folder, rows)) == expected
    assert counts(settings) == before


def test_every_row_is_checked_and_all_problems_come_back_at_once(home, settings, storage, folder):
    rows = [
        {"标题": "好的一篇", "正文": "正文", "封面": "cover.jpg", "配图": "photo.jpg", "配图替代文字": "配图说明"},
        {"标题": "", "正文": "正文", "封面": "nope.jpg"},
        {"标题": "第三篇", "正文": "正文", "封面": "../outside.jpg", "配图": "notes.jpg"},
        {"标题": "第四篇", "正文": "正文", "视频": "cover.jpg"},
    ]
    before = counts(settings)
    errors = failing(storage, write_csv(folder, rows))
    assert [(row, column) for row, column, _, _ in errors] == [
        (3, "标题"), (3, "封面"), (4, "封面"), (4, "配图"), (5, "视频")]
    assert counts(settings) == before  # the good first row was not imported either


def test_a_row_with_a_value_under_no_header(home, settings, storage, folder):
    path = folder / "extra.csv"
    path.write_text("标题,正文\n稿件,正文,多出来的\n", encoding="utf-8")
    assert failing(storage, path) == [(2, "C", "a value in column C, which has no header", "C 列有内容，但这一列没有列名")]


def test_a_link_out_of_the_folder_is_refused(home, settings, storage, folder):
    (folder / "link.jpg").symlink_to(folder.parent / "outside.jpg")
    assert failing(storage, write_csv(folder, _row(封面="link.jpg"))) == [
        (2, "封面", "link.jpg: the path leads out of the manifest's folder", "“link.jpg”指向清单所在文件夹之外，不允许")]


def test_in_and_out_points_are_checked_against_the_video(home, settings, storage, folder, clip):
    shutil.copy(clip, folder / "clip.mp4")
    assert failing(storage, write_csv(folder, _row(视频="clip.mp4", 视频入点="5"))) == [
        (2, "视频", "clip.mp4: in 5 s / out 2 s leave less than 1 s", "clip.mp4：入点和出点之间至少要有 1 秒")]


BAD_FILES = [
    # (case, file name, content, [(row, column, English, Chinese)])
    ("csv not utf-8", "gbk.csv", GBK_CSV, [
        (0, "", "the CSV file is not UTF-8 text (in Excel, save as “CSV UTF-8”)",
         "文件不是 UTF-8 编码（在 Excel 中请另存为“CSV UTF-8（逗号分隔）”）")]),
    ("yaml not utf-8", "gbk.yaml", "- 标题: 稿件\n".encode("gbk"), [
        (0, "", "the YAML file is not UTF-8 text", "文件不是 UTF-8 编码")]),
    ("empty csv", "empty.csv", b"", [(0, "", "the manifest is empty: no header row, no stories",
                                     "导入清单是空的：没有表头，也没有稿件")]),
    ("header only", "header.csv", "标题,正文\n".encode(), [(0, "", "the manifest lists no stories",
                                                            "导入清单中没有稿件")]),
    ("not a workbook", "fake.xlsx", b"PK\x03\x04 not really", [
        (0, "", "not a readable XLSX workbook (BadZipFile)", "不是有效的 Excel（.xlsx）文件")]),
    ("broken yaml", "bad.yaml", "- 标题: 一\n  正文: [未闭合\n".encode(), [
        (3, "", "not valid YAML: expected ',' or ']', but got '<stream end>'",
         "YAML 格式有误：expected ',' or ']', but got '<stream end>'")]),
    ("yaml of the wrong shape", "shape.yaml", "标题: 一\n".encode(), [
        (0, "", "a YAML manifest is a list of stories (or a mapping with a `stories` list)",
         "YAML 清单应为稿件列表（或含 stories 列表的映射）")]),
    ("yaml with an unknown key", "key.yaml", "- 标题: 一\n  正文: 二\n- 标题: 三\n  正文: 四\n  作家: 五\n".encode(), [
        (3, "作家", "unknown column '作家'; the columns are listed in the import template",
         "无法识别的列“作家”；可用的列见导入模板")]),
    ("yaml lists and mappings where text goes", "nested.yaml",
     "- 标题: [一, 二]\n  正文: 正文\n  配图: {a: b}\n".encode(), [
         (1, "标题", "title wants text", "“标题”应为文字"), (1, "配图", "images wants a list of texts", "“配图”应为文字列表")]),
    ("not a manifest type", "stories.txt", b"title\nx\n", [
        (0, "", "a manifest is an .xlsx, .csv, .yaml/.yml or .json file (or a .zip with one)",
         "导入清单应为 .xlsx、.csv、.yaml/.yml 或 .json 文件（或包含清单的 .zip）")]),
]


@pytest.mark.parametrize("case,name,content,expected", BAD_FILES, ids=[row[0] for row in BAD_FILES])
def test_each_bad_file_gets_its_exact_error(home, settings, storage, folder, case, name, content, expected):
    path = folder / name
    path.write_bytes(content)
    before = counts(settings)
    assert failing(storage, path) == expected
    assert counts(settings) == before


BAD_ZIPS = [
    ("member escapes", {"stories.csv": "标题,正文\n一,二\n".encode(), "../evil.jpg": b"x"}, [
        (0, "", "zip member '../evil.jpg' would land outside the folder", "压缩包内的“../evil.jpg”路径不安全（指向压缩包之外）")]),
    ("absolute member", {"/etc/evil": b"x", "stories.csv": "标题,正文\n一,二\n".encode()}, [
        (0, "", "zip member '/etc/evil' would land outside the folder", "压缩包内的“/etc/evil”路径不安全（指向压缩包之外）")]),
    ("no manifest", {"media/a.jpg": b"x"}, [
        (0, "", "the zip holds no manifest (.xlsx, .csv, .yaml, .yml or .json)",
         "压缩包中没有导入清单（.xlsx、.csv、.yaml、.yml 或 .json）")]),
    ("two manifests", {"a.csv": b"title,body\n", "b.yaml": b"[]"}, [
        (0, "", "the zip holds more than one manifest: a.csv, b.yaml", "压缩包中有多个导入清单：a.csv, b.yaml，请只保留一个")]),
]


@pytest.mark.parametrize("case,members,expected", BAD_ZIPS, ids=[row[0] for row in BAD_ZIPS])
def test_each_bad_zip_gets_its_exact_error(home, settings, storage, folder, case, members, expected):
    before = counts(settings)
    assert failing(storage, zip_of(folder, members)) == expected
    assert counts(settings) == before
    assert not (folder.parent / "evil.jpg").exists()


# --------------------------------------------------------------------------- nothing half-imported


def test_a_failure_while_storing_leaves_no_story_and_no_new_file(home, settings, storage, folder, monkeypatch):
    # A story imported earlier uses cover.jpg: its asset and file must survive the failed import.
    run_import(storage, write_csv(folder, [{"标题": "早先导入", "正文": "正文", "封面": "cover.jpg"}], name="first.csv"))
    before = counts(settings)
    real = bulk.create_story
    made = []

    def create_then_fail(session, store, data, *, actor=None):  # noqa: ANN001, ANN202
        if made:
            raise RuntimeError("the disk filled up")
        made.append(real(session, store, data, actor=actor))
        return made[-1]

    monkeypatch.setattr(bulk, "create_story", create_then_fail)
    rows = [{"标题": "第一篇", "正文": "正文", "封面": "photo.jpg", "配图": "cover.jpg"},
            {"标题": "第二篇", "正文": "正文", "封面": "cover.jpg"}]
    with pytest.raises(RuntimeError):
        run_import(storage, write_csv(folder, rows))
    assert made, "the first row was created before the failure"
    assert counts(settings) == before  # photo.jpg's blob was added and removed again; cover.jpg's kept
    with session_scope() as session:
        kept = session.scalar(select(Asset))
        assert storage.local_path(kept.storage_key).read_bytes() == (folder / "cover.jpg").read_bytes()


# --------------------------------------------------------------------------- good manifests


def test_csv_with_chinese_headers_makes_audited_drafts_of_the_editor(home, settings, storage, folder):
    (folder / "正文.md").write_text("# 小标题\r\n\r\n来自文件的正文。", encoding="utf-8")
    rows = [
        {"标题": "第一篇", "正文": "- 以连字符开头的列表\n- 第二项", "摘要": "摘要一", "主题": "基础教育", "责任单位": "县教育局",
         "标签": "教育、民生，课后服务", "封面": "cover.jpg", "封面替代文字": "封面说明",
         "配图": "photo.jpg | cover.jpg", "配图替代文字": "第一张\n第二张", "栏目标识": "群众满意度提升行动之基础教育篇"},
        {"标题": "第二篇", "正文文件": "正文.md", "短标题": "短"},
    ]
    for bom in (True, False):
        result = run_import(storage, write_csv(folder, rows, bom=bom))
        assert result.rows == [2, 3] and len(result.story_ids) == 2 and result.ignored_columns == []
    with session_scope() as session:
        editor = desk(session)["editor"]
        first = session.get(Story, result.story_ids[0])
        version = first.current
        assert first.created_by_id == editor.id and version.created_by_id == editor.id
        assert version.review_state == "draft" and first.status == "draft"
        assert version.body_markdown == "- 以连字符开头的列表\n- 第二项"
        assert version.tags == ["教育", "民生", "课后服务"] and version.label == "群众满意度提升行动之基础教育篇"
        assert [(m.role, m.alt) for m in version.media] == [("cover", "封面说明"), ("image", "第一张"),
                                                             ("image", "第二张")]
        assert version.media[0].asset_sha256 == version.media[2].asset_sha256  # one asset per file
        second = session.get(Story, result.story_ids[1]).current
        assert second.body_markdown == "# 小标题\n\n来自文件的正文。" and second.short_title == "短"
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "import")).all()
        assert len(events) == 2 and events[-1].actor_id == editor.id
        assert events[-1].data["stories"] == result.story_ids and events[-1].data["rows"] == [2, 3]
        created = session.scalars(select(AuditEvent.object_id).where(AuditEvent.action == "create",
                                                                     AuditEvent.object_type == "story")).all()
        assert {str(i) for i in result.story_ids} <= set(created)
        assert session.scalar(select(func.count()).select_from(Asset)) == 2


def test_xlsx_and_yaml_with_english_columns(home, settings, storage, folder, clip):
    shutil.copy(clip, folder / "clip.mp4")
    rows = [{"title": "表格稿件", "body": "正文", "cover": "cover.jpg", "video": "clip.mp4", "video_in": 0.5,
             "video_out": 1.75, "tags": "甲,乙"}]
    result = run_import(storage, write_xlsx(folder, rows))
    yaml_rows = [{"title": "YAML 稿件", "body": "正文\n第二行", "tags": ["甲", "乙"], "images": ["photo.jpg"],
                  "image_alts": ["替代文字"], "story_id": 99, "review_state": "approved"}]
    from_yaml = run_import(storage, write_yaml(folder, yaml_rows))
    assert from_yaml.ignored_columns == ["review_state", "story_id"]  # informational: an import makes drafts
    with session_scope() as session:
        media = session.get(Story, result.story_ids[0]).current.media
        assert [(m.role, m.in_point, m.out_point) for m in media] == [("cover", None, None), ("video", 0.5, 1.75)]
        version = session.get(Story, from_yaml.story_ids[0]).current
        assert version.review_state == "draft" and version.tags == ["甲", "乙"]
        assert [(m.role, m.alt) for m in version.media] == [("image", "替代文字")]


def test_json_indented_with_tabs(home, settings, storage, folder):
    import json

    path = folder / "stories.json"
    path.write_text(json.dumps({"stories": [{"title": "JSON 稿件", "body": "第一行\n\t缩进的第二行", "cover": "cover.jpg"}]},
                               ensure_ascii=False, indent="\t"), encoding="utf-8")
    result = run_import(storage, path)
    with session_scope() as session:
        assert session.get(Story, result.story_ids[0]).current.body_markdown == "第一行\n\t缩进的第二行"


def test_campaign_labels_come_from_the_template(home, settings, storage, folder):
    with session_scope() as session:
        schedule.add_campaign(session, "黄山区民生实事", label_template="黄山市黄山区30项民生实事之{project}民生实事")
    good = {"标题": "老旧小区改造", "正文": "正文", "活动": "黄山区民生实事", "民生实事项目": "老旧小区改造"}
    result = run_import(storage, write_csv(folder, [good]))
    with session_scope() as session:
        assert session.get(Story, result.story_ids[0]).current.label == "黄山市黄山区30项民生实事之老旧小区改造民生实事"
    assert failing(storage, write_csv(folder, [{**good, "标题": "另一篇", "栏目标识": "别的标识"}])) == [
        (2, "栏目标识", "label '别的标识' differs from the campaign's '黄山市黄山区30项民生实事之老旧小区改造民生实事'",
         "标签“别的标识”与活动标签“黄山市黄山区30项民生实事之老旧小区改造民生实事”不一致，请留空由系统生成")]
    assert failing(storage, write_csv(folder, [{**good, "标题": "第三篇", "民生实事项目": ""}])) == [
        (2, "活动", "the campaign label needs the story's project", "活动标签需要填写稿件的项目")]


def test_a_zip_of_manifest_and_media_with_gbk_names(home, settings, storage, folder):
    manifest = "标题,正文,封面\n压缩包稿件,正文,图片/封面.jpg\n".encode("utf-8")
    path = folder.parent / "gbk.zip"

    class GbkName(zipfile.ZipInfo):  # what Chinese Windows tools write: GBK bytes, no UTF-8 flag
        def _encodeFilenameFlags(self):  # noqa: N802, ANN202 - zipfile's hook
            return self.filename.encode("gbk"), self.flag_bits

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in (("清单/稿件.csv", manifest), ("清单/图片/封面.jpg", (folder / "cover.jpg").read_bytes())):
            archive.writestr(GbkName(name), data)
    with zipfile.ZipFile(path) as archive:
        assert all(not (i.flag_bits & 0x800) for i in archive.infolist())
    result = run_import(storage, path, name="gbk.zip")
    assert result.manifest == "gbk.zip" and len(result.story_ids) == 1
    with session_scope() as session:
        media = session.get(Story, result.story_ids[0]).current.media
        assert [(m.role, m.asset.original_name) for m in media] == [("cover", "封面.jpg")]


def test_only_editors_import(home, settings, storage, folder):
    with pytest.raises(PermissionDenied):
        run_import(storage, write_csv(folder, [GOOD]), actor="r1")
    assert run_import(storage, write_csv(folder, [GOOD]), actor=None).story_ids  # the operator at the CLI


def test_the_template_zip_imports_as_it_is(home, settings, storage, tmp_path):
    path = tmp_path / "template.zip"
    path.write_bytes(bulk.template_bytes("zip"))
    result = run_import(storage, path)
    with session_scope() as session:
        versions = [session.get(Story, i).current for i in result.story_ids]
        assert [v.unit for v in versions] == ["县教育局", "区住房城乡建设局"]
        assert versions[1].label == "黄山市黄山区30项民生实事之老旧小区改造民生实事"
        assert [m.role for m in versions[1].media] == ["cover", "image"]
    book = load_workbook(io.BytesIO(bulk.template_bytes("xlsx")))
    assert book.sheetnames == ["稿件", "填写说明"] and book["稿件"]["A1"].value == "标题"
    assert [r[0].value for r in book["填写说明"].iter_rows(min_row=2, max_row=3)] == ["标题", "正文"]
    rows = yaml.safe_load(bulk.template_bytes("yaml"))["stories"]
    assert [r["title"] for r in rows] == [versions[0].title, versions[1].title]


# --------------------------------------------------------------------------- export and the round trip


@pytest.fixture
def published(home, settings, storage, tmp_path, clip) -> dict[str, Any]:
    """Two stories: one with every kind of media, a campaign label, a formula-like title and a
    body that starts with a list; its two deliveries (website published, RSS failed)."""
    with session_scope() as session:
        account_ids = add_site_accounts(session, settings)
        schedule.add_campaign(session, "群众满意度提升行动", label_template="群众满意度提升行动之{theme}篇")
        editor = desk(session)["editor"]
        first = create_story(session, storage, StoryInput(
            title="=1+1 不是公式", body_markdown="- 第一项\n- 第二项\n\n正文。", summary="摘要", short_title="短标题",
            tags=["教育", "民生"], theme="基础教育", unit="县教育局", project="课后服务", campaign="群众满意度提升行动",
            media=[MediaInput(path=jpeg(tmp_path / "封面.jpg"), role="cover", alt="封面图"),
                   MediaInput(path=jpeg(tmp_path / "一.jpg", color=(1, 2, 3)), role="image", alt="第一张"),
                   MediaInput(path=jpeg(tmp_path / "二.jpg", color=(4, 5, 6)), role="image"),
                   MediaInput(path=clip, role="video", in_point=0.25, out_point=1.5)]), actor=editor).id
        second = create_story(session, storage, StoryInput(title="第二篇", body_markdown="正文"), actor=editor).id
        session.execute(update(StoryVersion).where(StoryVersion.story_id == first).values(review_state="approved"))
    with session_scope() as session:
        ids = dispatch.plan_publication(session, RecordingQueue(), first).created
        at = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
        session.execute(update(Delivery).where(Delivery.id == ids[0]).values(
            state="published", published_at=at, remote_url="http://127.0.0.1:8000/site/stories/1/"))
        session.execute(update(Delivery).where(Delivery.id == ids[1]).values(
            state="failed", last_error="feed write failed", last_error_code="io", attempts=3))
    return {"first": first, "second": second, "deliveries": ids, "accounts": account_ids}


def test_export_carries_review_state_and_delivery_records(home, settings, storage, published):
    with session_scope() as session:
        export = bulk.export_stories(session)
    first, second = export.stories
    assert (first["story_id"], first["version"], first["review_state"], first["versions"]) == (
        published["first"], 1, "approved", "v1 approved")
    assert (second["review_state"], second["author"]) == ("draft", "editor")
    assert first["label"] == "群众满意度提升行动之基础教育篇" and first["campaign"] == "群众满意度提升行动"
    assert first["image_alts"] == ["第一张"] and len(first["images"]) == 2
    assert (first["video_in"], first["video_out"]) == (0.25, 1.5)
    rows = [(d["channel"], d["state"], d["remote_url"], d["published_at"], d["last_error"]) for d in export.deliveries]
    assert rows == [
        ("website", "published", "http://127.0.0.1:8000/site/stories/1/", "2026-11-20T10:00:00+08:00", ""),
        ("rss", "failed", "", "", "feed write failed")]
    book = load_workbook(io.BytesIO(bulk.to_xlsx(export)))
    assert book.sheetnames == ["稿件", "发布记录"]
    stories, deliveries = book["稿件"], book["发布记录"]
    header = [c.value for c in stories[1]]
    assert header[:3] == ["稿件编号", "版本", "审核状态"] and "标题" in header
    assert stories.cell(row=2, column=header.index("标题") + 1).value == "'=1+1 不是公式"  # formula guard
    assert [c.value for c in deliveries[1]][:6] == ["发布任务编号", "稿件编号", "版本", "渠道", "账号", "状态"]
    assert [c.value for c in deliveries[3]][3:6] == ["rss", "RSS", "failed"]
    text = bulk.to_csv(export).decode("utf-8-sig")
    assert text.startswith("稿件编号,版本,审核状态") and "\r\n\r\n发布任务编号," in text
    document = yaml.safe_load(bulk.to_yaml(export))
    assert document["deliveries"][0]["published_at"] == "2026-11-20T10:00:00+08:00"
    import json

    json.dumps(document)  # JSON-compatible: no dates or other YAML-only types


@pytest.mark.parametrize("fmt", bulk.FORMATS)
def test_export_zip_imports_back_as_the_same_stories(home, settings, storage, published, tmp_path, fmt):
    with session_scope() as session:
        export = bulk.export_stories(session, story_ids=[published["first"], published["second"]])
    path = tmp_path / f"export-{fmt}.zip"
    bulk.write_zip(export, fmt, storage, path)
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist()[0] == f"stories.{fmt}" and len(archive.namelist()) == 1 + 4
    before = counts(settings)
    result = run_import(storage, path)
    assert counts(settings)[1] == before[1]  # same files: no new asset

    def content(version: StoryVersion) -> tuple:
        return (version.title, version.body_markdown, version.summary, version.short_title, version.tags,
                version.theme, version.unit, version.project, version.campaign_id, version.label,
                [(m.role, m.asset_sha256, m.alt, m.in_point, m.out_point) for m in version.media])

    with session_scope() as session:
        originals = [content(session.get(Story, i).current) for i in (published["first"], published["second"])]
        copies = [session.get(Story, i).current for i in result.story_ids]
        assert [content(v) for v in copies] == originals
        assert all(v.review_state == "draft" for v in copies)  # an import makes drafts, whatever was exported


def test_export_by_date_range_and_ids(home, settings, storage, published):
    old = datetime(2026, 1, 5, 4, 0, tzinfo=timezone.utc)
    with session_scope() as session:
        for model in (Story, StoryVersion):
            session.execute(update(model).where(model.id > 0).values(created_at=old))
    with session_scope() as session:
        def ids(**kwargs: Any) -> list[int]:
            return [row["story_id"] for row in bulk.export_stories(session, **kwargs).stories]

        assert ids(start=date(2026, 1, 5), end=date(2026, 1, 5)) == [published["first"], published["second"]]
        assert ids(start=date(2026, 11, 20), end=date(2026, 11, 20)) == [published["first"]]  # published that day
        assert ids(start=date(2026, 11, 21)) == []
        assert ids(end=date(2026, 1, 4)) == []
        assert ids(story_ids=[published["second"]]) == [published["second"]]
        with pytest.raises(NotFound):
            bulk.export_stories(session, story_ids=[published["second"], 999])
        with pytest.raises(ValidationError):
            bulk.export_stories(session, start=date(2026, 2, 1), end=date(2026, 1, 1))


def test_xlsx_refuses_a_body_excel_cannot_hold(home):
    export = bulk.StoryExport(stories=[{"story_id": 7, "title": "长", "body": "字" * (bulk.XLSX_CELL_MAX + 1)}],
                              deliveries=[])
    with pytest.raises(ValidationError) as caught:
        bulk.to_xlsx(export)
    assert caught.value.message.startswith("story 7's body is 32768 characters")
    assert yaml.safe_load(bulk.to_yaml(export))["stories"][0]["body"] == "字" * (bulk.XLSX_CELL_MAX + 1)


def test_row_errors_name_rows_by_what_people_see(home):
    error = bulk.ManifestError([bulk.RowError(3, "title", "title must not be empty", "标题不能为空", "title")], "x.csv")
    assert error.message == "x.csv: row 3, column title: title must not be empty; nothing was imported"
    assert error.message_zh == "第 3 行“标题”列：标题不能为空；未导入任何稿件"
    several = bulk.ManifestError([bulk.RowError(2, "a", "m", "z"), bulk.RowError(2, "b", "m", "z"),
                                  bulk.RowError(5, "a", "m", "z")])
    assert several.message == "3 problems in 2 rows; nothing was imported"
