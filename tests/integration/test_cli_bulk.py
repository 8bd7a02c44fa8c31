"""`fanout story import` / `fanout story export` as a person runs them: real subprocesses, exit codes,
the per-row error table, nothing imported from a bad manifest, and an export that imports back."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml
from openpyxl import load_workbook
from sqlalchemy import func, select

from services.db import session_scope
from services.models import AuditEvent, Story
from tests.helpers import desk, jpeg


def fanout(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def stories() -> list[dict]:
    listed = fanout("story", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def media_files(home: Path) -> list[Path]:
    media = home / "media"
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


def test_the_template_imports_and_prints_the_new_ids(home, tmp_path):
    with session_scope() as session:
        editor_id = desk(session)["editor"].id
    template = tmp_path / "模板.zip"
    written = fanout("story", "import", "--template", str(template))
    assert written.returncode == 0 and written.stdout.strip() == f"template: {template}", written.stderr
    result = fanout("story", "import", str(template), "--as", "editor")
    assert result.returncode == 0, result.stderr
    ids = [int(line) for line in result.stdout.split()]
    assert len(ids) == 2
    assert result.stderr.strip() == "imported 2 stories from 模板.zip as drafts"
    assert sorted(row["id"] for row in stories()) == ids and all(row["status"] == "draft" for row in stories())
    with session_scope() as session:
        assert {session.get(Story, i).created_by_id for i in ids} == {editor_id}
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "import"))
        assert event.actor_name == "editor" and event.data["stories"] == ids
    for suffix in ("xlsx", "csv", "yaml"):
        path = tmp_path / f"template.{suffix}"
        assert fanout("story", "import", "--template", str(path)).returncode == 0
    assert load_workbook(tmp_path / "template.xlsx")["稿件"]["A1"].value == "标题"
    assert next(csv.reader(io.StringIO((tmp_path / "template.csv").read_text(encoding="utf-8-sig"))))[:2] == [
        "标题", "正文"]
    assert len(yaml.safe_load((tmp_path / "template.yaml").read_text(encoding="utf-8"))["stories"]) == 2


def test_a_bad_manifest_prints_every_problem_and_imports_nothing(home, tmp_path):
    folder = tmp_path / "清单"
    folder.mkdir()
    jpeg(folder / "cover.jpg")
    jpeg(tmp_path / "outside.jpg")
    manifest = folder / "稿件.csv"
    manifest.write_text("标题,正文,封面\n"
                        "好的一篇,正文,cover.jpg\n"
                        ",正文,cover.jpg\n"
                        "第三篇,正文,../outside.jpg\n"
                        "好的一篇,正文,cover.jpg\n", encoding="utf-8")
    with session_scope() as session:
        desk(session)
    result = fanout("story", "import", str(manifest), "--as", "editor")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "row  column  problem",
        "3    标题    title must not be empty",
        "4    封面    ../outside.jpg: the path leads out of the manifest's folder",
        "5    标题    repeats row 2 (same title and body)",
        "error: 稿件.csv: 3 problems in 3 rows; nothing was imported",
    ]
    assert stories() == [] and media_files(home) == []
    unknown = folder / "unknown.csv"
    unknown.write_text("标题,正文,作者名\n一,二,三\n", encoding="utf-8")
    refused = fanout("story", "import", str(unknown))
    assert refused.returncode == 1 and refused.stderr.splitlines() == [
        "row  column  problem",
        "1    作者名  unknown column '作者名'; the columns are listed in the import template",
        "error: unknown.csv: row 1, column 作者名: unknown column '作者名'; the columns are listed in the import "
        "template; nothing was imported",
    ]


def test_usage_errors_are_one_line(home, tmp_path):
    with session_scope() as session:
        desk(session)
    jpeg(tmp_path / "cover.jpg")
    good = tmp_path / "good.csv"
    good.write_text("标题,正文,封面\n一,二,cover.jpg\n", encoding="utf-8")
    cases = [
        (("story", "import"), "error: give a MANIFEST to import (or --template FILE to write a template)"),
        (("story", "import", str(tmp_path / "none.csv")), f"error: manifest not found: {tmp_path / 'none.csv'}"),
        (("story", "import", str(good), "--template", str(tmp_path / "t.xlsx")),
         "error: give a MANIFEST to import or --template FILE, not both"),
        (("story", "import", "--template", str(tmp_path / "t.doc")),
         "error: --template writes .xlsx, .csv, .yaml or .zip, not 't.doc'"),
        (("story", "import", str(good), "--as", "r1"), "error: user r1 lacks role editor"),
        (("story", "export", "--from", "2026-02-01", "--to", "2026-01-01", "-o", str(tmp_path / "x.csv")),
         "error: the range ends (2026-01-01) before it starts (2026-02-01)"),
        (("story", "export", "--story", "42", "-o", str(tmp_path / "x.csv")), "error: no story 42"),
        (("story", "export", "--from", "yesterday", "-o", str(tmp_path / "x.csv")),
         "error: not a date (YYYY-MM-DD): 'yesterday'"),
    ]
    for args, line in cases:
        result = fanout(*args)
        assert result.returncode != 0 and result.stderr.strip().splitlines() == [line], (args, result.stderr)
    assert stories() == [] and not (tmp_path / "x.csv").exists()


def test_export_in_each_format_and_the_media_zip_imports_back(home, tmp_path):
    with session_scope() as session:
        desk(session)
    folder = tmp_path / "in"
    folder.mkdir()
    jpeg(folder / "a.jpg")
    jpeg(folder / "b.jpg", color=(10, 200, 10))
    (folder / "stories.yaml").write_text(yaml.safe_dump([
        {"title": "导出一", "body": "正文一", "cover": "a.jpg", "cover_alt": "封面一", "tags": ["甲"]},
        {"title": "导出二", "body": "正文二", "images": ["b.jpg", "a.jpg"], "image_alts": ["乙", "甲"]},
    ], allow_unicode=True), encoding="utf-8")
    imported = fanout("story", "import", str(folder / "stories.yaml"), "--as", "editor")
    assert imported.returncode == 0, imported.stderr
    first_ids = [int(i) for i in imported.stdout.split()]
    for fmt in ("xlsx", "csv", "yaml"):
        out = tmp_path / f"out.{fmt}"
        result = fanout("story", "export", "--format", fmt, "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"wrote 2 stories and 0 delivery records to {out}"
    sheet = load_workbook(tmp_path / "out.xlsx")["稿件"]
    header = [c.value for c in sheet[1]]
    assert [sheet.cell(row=r, column=header.index("标题") + 1).value for r in (2, 3)] == ["导出一", "导出二"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text(encoding="utf-8-sig"))))
    assert [(r["稿件编号"], r["审核状态"], r["配图替代文字"]) for r in rows] == [
        (str(first_ids[0]), "draft", ""), (str(first_ids[1]), "draft", "乙\n甲")]
    document = yaml.safe_load((tmp_path / "out.yaml").read_text(encoding="utf-8"))
    assert [s["title"] for s in document["stories"]] == ["导出一", "导出二"] and document["deliveries"] == []
    only = fanout("story", "export", "--story", str(first_ids[1]), "--format", "csv", "--media",
                  "-o", str(tmp_path / "one.zip"))
    assert only.returncode == 0, only.stderr
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        assert archive.namelist()[0] == "stories.csv" and len(archive.namelist()) == 3  # manifest + 2 pictures
    again = fanout("story", "import", str(tmp_path / "one.zip"), "--as", "editor")
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip().startswith("imported 1 story from one.zip as drafts (ignored the export's columns: ")
    new_id = int(again.stdout.strip())
    with session_scope() as session:
        copy, original = session.get(Story, new_id).current, session.get(Story, first_ids[1]).current
        assert [(m.role, m.asset_sha256, m.alt) for m in copy.media] == [
            (m.role, m.asset_sha256, m.alt) for m in original.media]
        assert session.scalar(select(func.count()).select_from(Story)) == 3
