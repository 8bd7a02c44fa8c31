"""Bulk import and export of stories: a manifest of stories and their media in; stories, their
review state and their delivery records out.

Import. A manifest lists one story per row: XLSX (the sheet named 稿件 or `stories`, else the
first sheet), CSV (UTF-8, with or without a BOM) or YAML/JSON (a list of mappings, or a mapping
whose `stories` key holds that list). Columns are named by key or by Chinese name (`COLUMNS`);
media paths are relative to the manifest's folder — inside an uploaded zip that carries the
manifest and its media, relative to the manifest's folder in the zip. `import_manifest` checks
every row before it writes anything and reports everything it finds as `RowError`s (row, column,
English and Chinese message) in one `ManifestError`:

* unknown or repeated columns (reported alone: rows are not checked against a wrong header);
* a missing title or body, text over the limits stories.py enforces and the database's column
  widths, an unknown campaign, a label that contradicts its campaign's template;
* a media path that is absolute or leads out of the manifest's folder, a missing file, a file
  that is not what its column says (stories.check_media: media.probe, as uploads are checked),
  in/out points outside the video;
* a row that repeats an earlier one (same title and body).

If any row is bad nothing is imported. Otherwise every story is made by stories.create_story
(a draft owned by the importing editor, audited) inside a savepoint of the caller's unit of work,
with one `import` audit event for the batch; should anything fail there, the savepoint rolls back
and the media blobs this import added to the store are deleted again. Row numbers are what a
person looks for: the spreadsheet row (the header is row 1), or the line a YAML entry starts on.

Export. `export_stories` takes the stories written, edited or published in a date range (Asia/
Shanghai days) and/or given ids: the current version, each version's review state, and every
delivery (channel, account, state, remote URL, published_at, last error). `to_xlsx` (sheets 稿件
and 发布记录), `to_csv` (the stories, then the delivery records under their own header row) and
`to_yaml` (JSON-compatible values) keep the stories part a manifest, so `write_zip` (the manifest
plus the media files it names) imports back as new drafts. Spreadsheet cells get the formula
guard of services/exports.py; import takes it off again.

`template` writes a manifest with two demo rows from the seed plans (as a zip, with its images).
Nothing here commits or imports the web or task frameworks.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import io
import logging
import math
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import yaml
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from services import audit
from services.errors import FanoutError, NotFound, ValidationError
from services.exports import _FORMULA_START, _display_width, _safe
from services.models import Asset, Campaign, Delivery, Story, StoryVersion, User
from services.reports import ZONE
from services.storage import Storage
from services.stories import (
    BODY_MAX,
    MediaInput,
    StoryInput,
    check_media,
    create_story,
    resolve_campaign_label,
    validate_story_input,
)
from services.users import require_role

log = logging.getLogger("fanout.bulk")

FORMATS = ("xlsx", "csv", "yaml")
MANIFEST_SUFFIXES = {".xlsx": "xlsx", ".csv": "csv", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}
MANIFEST_MAX_BYTES = 64 * 1024 * 1024  # 1,000 rows of the longest bodies stories.py allows fit
MAX_ROWS = 1000
ZIP_MAX_MEMBERS = 5000
ZIP_MAX_BYTES = 4 * 1024 * 1024 * 1024  # unpacked: one video at media.probe's 2 GiB cap and company
XLSX_CELL_MAX = 32_767  # characters Excel keeps in one cell
STORIES_SHEETS = ("稿件", "stories")
MEDIA_FOLDER = "media"


# --------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    kind: str = "text"  # text | tags | alts | path | paths | seconds
    help_zh: str = ""
    aliases: tuple[str, ...] = ()


COLUMNS: tuple[Column, ...] = (
    Column("title", "标题", help_zh="必填，200 字以内"),
    Column("body", "正文", help_zh="Markdown；与“正文文件”二选一，必须填写一项", aliases=("body_markdown",)),
    Column("body_file", "正文文件", "path", "Markdown 文件的路径（相对于清单所在文件夹），代替“正文”"),
    Column("summary", "摘要", help_zh="500 字以内"),
    Column("short_title", "短标题", help_zh="64 字以内"),
    Column("theme", "主题", help_zh="如 基础教育"),
    Column("unit", "责任单位", help_zh="如 县教育局", aliases=("responsible_unit",)),
    Column("project", "民生实事项目", help_zh="活动标签模板中的 {project}", aliases=("项目",)),
    Column("campaign", "活动", help_zh="活动名称或编号（须已存在）；活动有标签模板时，栏目标识由模板生成"),
    Column("label", "栏目标识", help_zh="放在开头的标识；选了带模板的活动时可留空"),
    Column("tags", "标签", "tags", "多个标签用逗号、顿号或换行分隔"),
    Column("cover", "封面", "path", "图片路径（相对于清单所在文件夹）"),
    Column("cover_alt", "封面替代文字", help_zh="封面的文字说明", aliases=("封面说明",)),
    Column("images", "配图", "paths", "图片路径，多张用换行或 | 分隔"),
    Column("image_alts", "配图替代文字", "alts", "与配图一一对应，用换行或 | 分隔", aliases=("配图说明",)),
    Column("video", "视频", "path", "视频路径（每篇最多一个）"),
    Column("video_in", "视频入点", "seconds", "秒，如 12 或 0:12；可空"),
    Column("video_out", "视频出点", "seconds", "秒，如 72 或 1:12；可空"),
)
# What an export adds before the manifest columns: read back, they are ignored (an import makes
# new drafts whatever state the exported story was in).
INFO_COLUMNS: tuple[Column, ...] = (
    Column("story_id", "稿件编号"),
    Column("version", "版本"),
    Column("review_state", "审核状态"),
    Column("versions", "各版本审核状态"),
    Column("status", "发布状态"),
    Column("author", "作者"),
    Column("created_at", "创建时间"),
)
DELIVERY_COLUMNS: tuple[Column, ...] = (
    Column("delivery_id", "发布任务编号"),
    Column("story_id", "稿件编号"),
    Column("version", "版本"),
    Column("channel", "渠道"),
    Column("account", "账号"),
    Column("state", "状态"),
    Column("remote_url", "链接"),
    Column("published_at", "发布时间"),
    Column("attempts", "尝试次数"),
    Column("last_error_code", "错误码"),
    Column("last_error", "最近错误"),
)
BY_KEY = {c.key: c for c in COLUMNS}
LIST_KINDS = ("tags", "alts", "paths")  # columns a YAML manifest may give as lists
# Widths the database holds that stories.py does not check itself.
WIDTH_CHECKED = ("short_title", "theme", "unit", "project", "label")


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


_LOOKUP = {_norm(name): column for column in COLUMNS for name in (column.key, column.zh, *column.aliases)}
_INFO = {_norm(name) for column in INFO_COLUMNS for name in (column.key, column.zh)}
_DELIVERY_HEADER = {_norm(DELIVERY_COLUMNS[0].key), _norm(DELIVERY_COLUMNS[0].zh)}


# --------------------------------------------------------------------------- errors & results


@dataclass(frozen=True)
class RowError:
    """One problem: `row` 0 is the file as a whole; `column` is named as the manifest names it."""

    row: int
    column: str
    message: str
    message_zh: str
    key: str = ""  # the column's key in COLUMNS, when it is one

    @property
    def column_zh(self) -> str:
        return BY_KEY[self.key].zh if self.key in BY_KEY else self.column


class ManifestError(ValidationError):
    """A manifest that cannot be imported; `errors` lists every problem found, in row order."""

    def __init__(self, errors: list[RowError], manifest: str = "") -> None:
        self.errors = sorted(errors, key=lambda e: e.row)
        self.manifest = manifest
        rows = {e.row for e in errors if e.row}
        where = f"{manifest}: " if manifest else ""
        if len(errors) == 1:
            super().__init__(f"{where}{_where_en(errors[0])}{errors[0].message}; nothing was imported",
                             f"{_where_zh(errors[0])}{errors[0].message_zh}；未导入任何稿件")
        else:
            super().__init__(f"{where}{len(errors)} problems in {len(rows)} rows; nothing was imported",
                             f"导入清单有 {len(errors)} 处问题（涉及 {len(rows)} 行），未导入任何稿件")


def _where_en(error: RowError) -> str:
    if not error.row:
        return ""
    return f"row {error.row}" + (f", column {error.column}" if error.column else "") + ": "


def _where_zh(error: RowError) -> str:
    if not error.row:
        return ""
    return f"第 {error.row} 行" + (f"“{error.column_zh}”列" if error.column else "") + "："


@dataclass
class ImportResult:
    manifest: str
    story_ids: list[int]
    rows: list[int]
    ignored_columns: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading a manifest


@dataclass
class Entry:
    """One manifest row: values by column key, and each column as the manifest names it."""

    row: int
    values: dict[str, Any]
    names: dict[str, str]


@dataclass
class Manifest:
    name: str
    folder: Path  # media paths are relative to it
    entries: list[Entry]
    ignored: list[str]


def _file_error(name: str, message: str, message_zh: str, row: int = 0) -> ManifestError:
    return ManifestError([RowError(row, "", message, message_zh)], name)


def _cell(value: Any, *, spreadsheet: bool) -> Any:
    """A cell as text (a YAML list stays a list of texts): numbers without a stray .0, dates in
    ISO form, line breaks as \\n; a spreadsheet cell loses the formula guard an export added."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() and value.tzinfo is None else value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_cell(v, spreadsheet=spreadsheet) for v in value]
    if isinstance(value, dict):
        return value  # refused where it is used
    text = str(value)
    if spreadsheet and text.startswith("'") and text[1:2] and text[1] in _FORMULA_START:
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _blank(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list):
        return all(_blank(v) for v in value)
    return value is None


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def _lookup(name: str) -> Column | None:
    return _LOOKUP.get(_norm(name))


def _unknown(row: int, name: str) -> RowError:
    known = sorted({c.key for c in COLUMNS} | {c.zh for c in COLUMNS})
    close = difflib.get_close_matches(name.strip(), known, n=1, cutoff=0.6)
    hint_en = f" (did you mean {close[0]!r}?)" if close else ""
    hint_zh = f"（是否应为“{close[0]}”？）" if close else ""
    return RowError(row, name, f"unknown column {name!r}{hint_en}; the columns are listed in the import template",
                    f"无法识别的列“{name}”{hint_zh}；可用的列见导入模板")


def _tabular(name: str, rows: list[tuple[int, list[Any]]]) -> tuple[list[Entry], list[str]]:
    """Header row (the first non-empty one) plus data rows -> entries. Stops at an export's
    delivery-records header; skips empty rows."""
    rows = [(n, cells) for n, cells in rows if not all(_blank(_cell(c, spreadsheet=True)) for c in cells)]
    if not rows:
        raise _file_error(name, "the manifest is empty: no header row, no stories", "导入清单是空的：没有表头，也没有稿件")
    header_row, header = rows[0]
    positions: dict[int, Column] = {}
    names: dict[str, str] = {}
    ignored: list[str] = []
    problems: list[RowError] = []
    for index, raw in enumerate(header):
        text = str(_cell(raw, spreadsheet=True)).strip()
        if not text:
            continue
        column = _lookup(text)
        if column is None:
            if _norm(text) in _INFO:
                ignored.append(text)
            else:
                problems.append(_unknown(header_row, text))
            continue
        if column.key in names:
            problems.append(RowError(header_row, text, f"column {text!r} repeats column {names[column.key]!r}",
                                     f"“{text}”列与“{names[column.key]}”列重复", column.key))
            continue
        positions[index] = column
        names[column.key] = text
    problems += _missing_columns(header_row, names)
    if problems:
        raise ManifestError(problems, name)
    entries = []
    for number, cells in rows[1:]:
        first = str(_cell(cells[0], spreadsheet=True)).strip() if cells else ""
        if first and _norm(first) in _DELIVERY_HEADER:
            break  # an export's delivery records follow: not stories
        values: dict[str, Any] = {}
        for index, raw in enumerate(cells):
            value = _cell(raw, spreadsheet=True)
            if index in positions:
                values[positions[index].key] = value
            elif not _blank(value) and (index >= len(header) or _blank(_cell(header[index], spreadsheet=True))):
                letter = _column_letter(index)
                problems.append(RowError(number, letter, f"a value in column {letter}, which has no header",
                                         f"{letter} 列有内容，但这一列没有列名"))
        entries.append(Entry(number, values, names))
    if problems:
        raise ManifestError(problems, name)
    return entries, ignored


def _missing_columns(row: int, names: dict[str, str]) -> list[RowError]:
    problems = []
    if "title" not in names:
        problems.append(RowError(row, "", "the manifest has no title (标题) column", "导入清单缺少“标题”列"))
    if "body" not in names and "body_file" not in names:
        problems.append(RowError(row, "", "the manifest has no body (正文) or body_file (正文文件) column",
                                 "导入清单缺少“正文”列（或“正文文件”列）"))
    return problems


def _decode(data: bytes, name: str, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if what == "CSV file":  # Excel on Chinese Windows saves plain CSV as GBK
            raise _file_error(name, f"the {what} is not UTF-8 text (in Excel, save as “CSV UTF-8”)",
                              "文件不是 UTF-8 编码（在 Excel 中请另存为“CSV UTF-8（逗号分隔）”）") from None
        raise _file_error(name, f"the {what} is not UTF-8 text", "文件不是 UTF-8 编码") from None


def _read_csv(path: Path, name: str) -> list[tuple[int, list[Any]]]:
    text = _decode(path.read_bytes(), name, "CSV file")
    try:
        return [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)]
    except csv.Error as exc:
        raise _file_error(name, f"not a readable CSV file: {exc}", "不是有效的 CSV 文件") from None


def _read_xlsx(path: Path, name: str) -> list[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise _file_error(name, f"not a readable XLSX workbook ({exc.__class__.__name__})",
                          "不是有效的 Excel（.xlsx）文件") from None
    try:
        sheet = next((book[s] for s in book.sheetnames if s.strip().lower() in STORIES_SHEETS), book.worksheets[0])
        return [(n, list(row)) for n, row in enumerate(sheet.iter_rows(values_only=True), start=1)]
    finally:
        book.close()


def _read_yaml(path: Path, name: str, *, json: bool = False) -> tuple[list[Entry], list[str]]:
    """YAML, or JSON (which YAML reads too, once its tab indentation is spaces: valid JSON has no
    raw tab inside a string), with each entry numbered by the line it starts on."""
    text = _decode(path.read_bytes(), name, "JSON file" if json else "YAML file")
    if json:
        text = text.replace("\t", " ")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise _file_error(name, f"not valid YAML: {problem}", f"YAML 格式有误：{problem}", line) from None
    finally:
        loader.dispose()
    items_node = node
    if isinstance(document, dict) and "stories" in document:
        document = document["stories"]
        items_node = next(v for k, v in node.value if getattr(k, "value", None) == "stories")
    if not isinstance(document, list):
        raise _file_error(name, "a YAML manifest is a list of stories (or a mapping with a `stories` list)",
                          "YAML 清单应为稿件列表（或含 stories 列表的映射）")
    entries: list[Entry] = []
    problems: list[RowError] = []
    ignored: set[str] = set()
    reported: set[str] = set()
    for item, item_node in zip(document, items_node.value):
        line = item_node.start_mark.line + 1
        if not isinstance(item, dict):
            problems.append(RowError(line, "", "an entry is not a mapping of column: value",
                                     "条目应为“列名: 内容”的映射"))
            continue
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        for key, raw in item.items():
            key_text = str(key).strip()
            column = _lookup(key_text)
            if column is None:
                if _norm(key_text) in _INFO:
                    ignored.add(key_text)
                elif key_text not in reported:
                    reported.add(key_text)
                    problems.append(_unknown(line, key_text))
                continue
            if column.key in names:
                problems.append(RowError(line, key_text, f"column {key_text!r} repeats column {names[column.key]!r}",
                                         f"“{key_text}”与“{names[column.key]}”重复", column.key))
                continue
            names[column.key] = key_text
            values[column.key] = _cell(raw, spreadsheet=False)
        entries.append(Entry(line, values, names))
    if problems:
        raise ManifestError(problems, name)
    return entries, sorted(ignored)


def read_manifest(path: Path, *, name: str | None = None, fmt: str | None = None) -> Manifest:
    """Parse a manifest file (format from `fmt`, else from the suffix of `name` or `path`)."""
    name = name or path.name
    fmt = fmt or MANIFEST_SUFFIXES.get(Path(name).suffix.lower())
    if fmt is None:
        raise _file_error(name, "a manifest is an .xlsx, .csv, .yaml/.yml or .json file (or a .zip with one)",
                          "导入清单应为 .xlsx、.csv、.yaml/.yml 或 .json 文件（或包含清单的 .zip）")
    try:
        size = path.stat().st_size
    except OSError:
        raise _file_error(name, "the manifest file is not readable", "无法读取导入清单文件") from None
    if size > MANIFEST_MAX_BYTES:
        raise _file_error(name, f"the manifest is larger than {MANIFEST_MAX_BYTES >> 20} MB",
                          f"导入清单超过 {MANIFEST_MAX_BYTES >> 20} MB")
    if fmt in ("yaml", "json"):
        entries, ignored = _read_yaml(path, name, json=fmt == "json")
    else:
        entries, ignored = _tabular(name, _read_xlsx(path, name) if fmt == "xlsx" else _read_csv(path, name))
    entries = [e for e in entries if not all(_blank(v) for v in e.values.values())]
    if not entries:
        raise _file_error(name, "the manifest lists no stories", "导入清单中没有稿件")
    if len(entries) > MAX_ROWS:
        raise _file_error(name, f"the manifest lists {len(entries)} stories; at most {MAX_ROWS} at a time",
                          f"导入清单有 {len(entries)} 篇稿件，每次最多导入 {MAX_ROWS} 篇")
    return Manifest(name=name, folder=path.parent, entries=entries, ignored=ignored)


# --------------------------------------------------------------------------- checking rows


class _Problem(Exception):
    def __init__(self, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.message, self.message_zh = message, message_zh


def _resolve(folder: Path, text: str) -> Path:
    """A manifest path inside `folder`: never absolute, never out of it (through .. or a link)."""
    cleaned = text.strip().replace("\\", "/")
    if "\x00" in cleaned:
        raise _Problem(f"{text!r} is not a valid path", f"“{text}”不是有效的路径")
    if cleaned.startswith("/") or re.match(r"^[A-Za-z]:", cleaned):
        raise _Problem(f"{text}: an absolute path; give it relative to the manifest's folder",
                       f"“{text}”是绝对路径，请写相对于清单所在文件夹的路径")
    base = folder.resolve()
    target = (base / cleaned).resolve()
    if not target.is_relative_to(base):
        raise _Problem(f"{text}: the path leads out of the manifest's folder",
                       f"“{text}”指向清单所在文件夹之外，不允许")
    if not target.is_file():
        raise _Problem(f"{text}: file not found next to the manifest", f"找不到文件“{text}”")
    return target


def _split(value: Any, pattern: str) -> list[str]:
    items = value if isinstance(value, list) else re.split(pattern, value)
    return [str(item).strip() for item in items]


def _seconds(text: str) -> float:
    text = text.strip()
    if ":" in text:
        minutes, seconds = text.split(":", 1)
        value = int(minutes) * 60 + float(seconds)
    else:
        value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _width_limit(key: str) -> int:
    return StoryVersion.__table__.c[key].type.length


def _stories_rule(**fields: Any) -> FanoutError | None:
    """stories.py's own check of some fields (its limits and wording), run on those fields alone."""
    try:
        validate_story_input(StoryInput(**{"title": "-", **fields}))
    except FanoutError as exc:
        return exc
    return None


class _RowChecker:
    """Turns one manifest entry into a StoryInput, collecting every problem of the row."""

    def __init__(self, session: Session, folder: Path, probes: dict[tuple, Any]) -> None:
        self.session = session
        self.folder = folder
        self.probes = probes  # the same file in the same role is probed once per manifest

    def check(self, entry: Entry) -> tuple[StoryInput | None, list[RowError]]:
        errors: list[RowError] = []

        refused: set[str] = set()  # columns already reported as the wrong shape: no second error

        def fail(key: str, message: str, message_zh: str) -> None:
            if key not in refused:
                errors.append(RowError(entry.row, entry.names.get(key, key), message, message_zh, key))

        values: dict[str, Any] = {}
        for key, value in entry.values.items():  # YAML can hold mappings and nested lists: refused
            listed = BY_KEY[key].kind in LIST_KINDS
            if isinstance(value, dict) or (isinstance(value, list) and (
                    not listed or any(isinstance(v, (list, dict)) for v in value))):
                fail(key, f"{key} wants {'a list of texts' if listed else 'text'}",
                     f"“{BY_KEY[key].zh}”应为{'文字列表' if listed else '文字'}")
                refused.add(key)
                value = ""
            values[key] = value

        def text(key: str) -> str:
            value = values.get(key, "")
            return value if isinstance(value, str) else ""

        title = text("title")
        if (problem := _stories_rule(title=title)) is not None:
            fail("title", problem.message, problem.message_zh)
        body, body_file = text("body"), text("body_file").strip()
        if body.strip() and body_file:
            fail("body_file", "give the body or a body file, not both", "“正文”和“正文文件”只能填写一项")
        elif body_file:
            body = self._body_file(body_file, fail)
        elif not body.strip():
            fail("body", "the body is empty (fill in body or body_file)", "正文不能为空（填写“正文”或“正文文件”）")
        if body and (problem := _stories_rule(body_markdown=body)) is not None:
            fail("body_file" if body_file else "body", problem.message, problem.message_zh)
        summary = text("summary")
        if (problem := _stories_rule(summary=summary)) is not None:
            fail("summary", problem.message, problem.message_zh)
        fields = {key: text(key).strip() for key in WIDTH_CHECKED}
        for key, value in fields.items():
            limit = _width_limit(key)
            if len(value) > limit:
                fail(key, f"{key} is {len(value)} characters; the limit is {limit}",
                     f"{BY_KEY[key].zh}共 {len(value)} 字，超过上限 {limit} 字")
        campaign = text("campaign").strip()
        tags = [t for t in _split(values.get("tags", ""), r"[,，、;；|\n]") if t]
        media = self._media(values, text, fail)
        if errors:
            return None, errors
        data = StoryInput(title=title, body_markdown=body, summary=summary, short_title=fields["short_title"],
                          tags=tags, theme=fields["theme"], unit=fields["unit"], label=fields["label"],
                          project=fields["project"], campaign=campaign or None, media=media)
        if (problem := _stories_rule(**{k: v for k, v in vars(data).items() if k != "campaign"})) is not None:
            fail("", problem.message, problem.message_zh)
        try:
            resolve_campaign_label(self.session, data)
        except NotFound as exc:
            fail("campaign", exc.message, exc.message_zh)
        except FanoutError as exc:
            fail("label" if data.label.strip() else "campaign", exc.message, exc.message_zh)
        return (None if errors else data), errors

    def _body_file(self, path_text: str, fail) -> str:  # noqa: ANN001 - the row's fail()
        try:
            path = _resolve(self.folder, path_text)
            if path.stat().st_size > BODY_MAX * 4:  # UTF-8 is at most 4 bytes a character
                raise _Problem(f"{path_text}: the body file is longer than {BODY_MAX} characters",
                               f"“{path_text}”超过 {BODY_MAX} 字")
            return path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
        except _Problem as exc:
            fail("body_file", exc.message, exc.message_zh)
        except UnicodeDecodeError:
            fail("body_file", f"{path_text}: the body file is not UTF-8 text", f"“{path_text}”不是 UTF-8 编码的文本")
        except OSError:
            fail("body_file", f"{path_text}: the body file is not readable", f"无法读取“{path_text}”")
        return ""

    def _media(self, values: dict[str, Any], text, fail) -> list[MediaInput]:  # noqa: ANN001 - the row's text()/fail()
        media: list[MediaInput] = []
        cover, cover_alt = text("cover").strip(), text("cover_alt").strip()
        if cover:
            self._add(media, "cover", cover, "cover", cover_alt, fail)
        elif cover_alt:
            fail("cover_alt", "a cover alt text without a cover", "填写了封面替代文字，但没有封面")
        images = [p for p in _split(values.get("images", ""), r"[|\n]") if p]
        alts = _split(values.get("image_alts", ""), r"[|\n]")
        while alts and not alts[-1]:
            alts.pop()
        if len(alts) > len(images):
            fail("image_alts", f"{len(alts)} alt texts for {len(images)} images",
                 f"配图替代文字有 {len(alts)} 条，配图只有 {len(images)} 张")
        for n, image in enumerate(images):
            self._add(media, "images", image, "image", alts[n] if n < len(alts) else "", fail)
        video = text("video").strip()
        points: list[float | None] = []
        given = []
        for key in ("video_in", "video_out"):
            raw = text(key).strip()
            if raw:
                given.append(key)
            try:
                points.append(_seconds(raw) if raw else None)
            except ValueError:
                fail(key, f"{key} is not a number of seconds: {raw!r}", f"“{BY_KEY[key].zh}”应为秒数，如 75 或 1:15")
                points.append(None)
        if video:
            self._add(media, "video", video, "video", "", fail, in_point=points[0], out_point=points[1])
        elif given:
            fail(given[0], "in/out points need a video", "设置入点和出点须同时填写视频")
        return media

    def _add(self, media: list[MediaInput], key: str, path_text: str, role: str, alt: str, fail,  # noqa: ANN001
             in_point: float | None = None, out_point: float | None = None) -> None:
        try:
            path = _resolve(self.folder, path_text)
        except _Problem as exc:
            fail(key, exc.message, exc.message_zh)
            return
        item = MediaInput(path=path, role=role, alt=alt, original_name=path.name, in_point=in_point,
                          out_point=out_point)
        probe_key = (path, role, in_point, out_point)
        if probe_key not in self.probes:
            try:
                check_media(item)
                self.probes[probe_key] = None
            except FanoutError as exc:
                self.probes[probe_key] = exc
        problem = self.probes[probe_key]
        if problem is not None:
            fail(key, problem.message, problem.message_zh)
            return
        media.append(item)


def check_manifest(session: Session, manifest: Manifest) -> list[tuple[int, StoryInput]]:
    """Every row as a StoryInput, or a ManifestError listing every problem of every row."""
    checker = _RowChecker(session, manifest.folder, {})
    errors: list[RowError] = []
    checked: list[tuple[int, StoryInput]] = []
    seen: dict[tuple[str, str], int] = {}
    for entry in manifest.entries:
        data, problems = checker.check(entry)
        errors += problems
        if data is None:
            continue
        key = (" ".join(data.title.split()), data.body_markdown.strip())
        if key in seen:
            errors.append(RowError(entry.row, entry.names.get("title", "title"),
                                   f"repeats row {seen[key]} (same title and body)",
                                   f"与第 {seen[key]} 行重复（标题和正文相同）", "title"))
            continue
        seen[key] = entry.row
        checked.append((entry.row, data))
    if errors:
        raise ManifestError(errors, manifest.name)
    return checked


# --------------------------------------------------------------------------- importing


class _TrackingStorage:
    """The media store, noting which keys this import added (to delete them again on failure)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.added: list[str] = []

    def put_file(self, key: str, src: Path) -> None:
        fresh = not self.inner.exists(key)
        self.inner.put_file(key, src)
        if fresh:
            self.added.append(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def local_path(self, key: str) -> Path:
        return self.inner.local_path(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def _forget_added(session: Session, storage: Storage, keys: list[str]) -> None:
    """Delete the blobs an import added, unless a committed asset row uses them meanwhile."""
    if not keys:
        return
    try:
        kept = set(session.scalars(select(Asset.storage_key).where(Asset.storage_key.in_(keys))))
    except Exception:  # the database is gone too: leave the blobs (harmless, content addressed)
        log.warning("import failed; could not check %d new media blobs, left in the store", len(keys))
        return
    for key in keys:
        if key in kept:
            continue
        try:
            storage.delete(key)
        except Exception:
            log.warning("import failed; could not delete the media blob %s", key)


@contextlib.contextmanager
def _unpacked(source: Path, name: str, work_dir: Path | None) -> Iterator[tuple[Path, str]]:
    """The manifest to read: `source` itself, or the one manifest inside the zip `source`."""
    if Path(name).suffix.lower() != ".zip":
        yield source, name
        return
    with tempfile.TemporaryDirectory(prefix="import-", dir=work_dir) as tmp:
        root = Path(tmp)
        manifest = _unzip(source, root, name)
        yield manifest, f"{name}/{manifest.relative_to(root).as_posix()}"


def _member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as its maker meant it: zips from Chinese Windows tools carry GBK names
    without the UTF-8 flag, which zipfile reads as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437", errors="replace")
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _unzip(source: Path, root: Path, name: str) -> Path:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise _file_error(name, "not a readable zip file", "不是有效的 zip 压缩包") from None
    with archive:
        members = archive.infolist()
        if len(members) > ZIP_MAX_MEMBERS:
            raise _file_error(name, f"the zip holds more than {ZIP_MAX_MEMBERS} files",
                              f"压缩包内文件超过 {ZIP_MAX_MEMBERS} 个")
        written = 0
        manifests: list[Path] = []
        for info in members:
            member = _member_name(info).replace("\\", "/")
            parts = [p for p in member.split("/") if p not in ("", ".")]
            if info.is_dir() or not parts or parts[0] == "__MACOSX":
                continue
            if member.startswith("/") or re.match(r"^[A-Za-z]:", member) or ".." in parts or "\x00" in member:
                raise _file_error(name, f"zip member {member!r} would land outside the folder",
                                  f"压缩包内的“{member}”路径不安全（指向压缩包之外）")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _file_error(name, f"zip member {member!r} is a symbolic link", f"压缩包内的“{member}”是符号链接，不允许")
            if info.flag_bits & 0x1:
                raise _file_error(name, "the zip is encrypted", "压缩包已加密，无法读取")
            target = root.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > ZIP_MAX_BYTES:
                            raise _file_error(name, f"the zip unpacks to more than {ZIP_MAX_BYTES >> 30} GB",
                                              f"压缩包解压后超过 {ZIP_MAX_BYTES >> 30} GB")
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as exc:
                raise _file_error(name, f"zip member {member!r} cannot be read ({exc.__class__.__name__})",
                                  f"压缩包内的“{member}”已损坏，无法读取") from None
            if Path(parts[-1]).suffix.lower() in MANIFEST_SUFFIXES and not parts[-1].startswith(("~$", ".")):
                manifests.append(target)
    if not manifests:
        raise _file_error(name, "the zip holds no manifest (.xlsx, .csv, .yaml, .yml or .json)",
                          "压缩包中没有导入清单（.xlsx、.csv、.yaml、.yml 或 .json）")
    depth = min(len(m.relative_to(root).parts) for m in manifests)
    top = sorted(m for m in manifests if len(m.relative_to(root).parts) == depth)
    if len(top) > 1:
        listed = ", ".join(m.relative_to(root).as_posix() for m in top)
        raise _file_error(name, f"the zip holds more than one manifest: {listed}",
                          f"压缩包中有多个导入清单：{listed}，请只保留一个")
    return top[0]


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def import_manifest(session: Session, storage: Storage, source: Path, *, actor: User | None = None,
                    name: str | None = None, work_dir: Path | None = None) -> ImportResult:
    """Import the manifest (or zip of manifest and media) at `source`, all rows or none.

    `name` is the file's name as the person knows it (its suffix decides the format: an upload
    is spooled under another name); `actor` None is the operator at the CLI, a user must be an
    editor and owns the drafts. Raises ManifestError (every problem) or PermissionDenied.
    """
    if actor is not None:
        require_role(actor, "editor")
    display = name or source.name
    with _unpacked(source, display, work_dir) as (path, manifest_name):
        manifest = read_manifest(path, name=manifest_name)
        checked = check_manifest(session, manifest)
        store = _TrackingStorage(storage)
        ids: list[int] = []
        try:
            with session.begin_nested():
                for row, data in checked:
                    try:
                        ids.append(create_story(session, store, data, actor=actor).id)
                    except FanoutError as exc:  # checked a moment ago; e.g. a campaign removed meanwhile
                        raise ManifestError([RowError(row, "", exc.message, exc.message_zh)], manifest.name) from exc
                digest = _digest(source)
                audit.record(session, actor=actor, action="import", object_type="manifest", object_id=digest[:16],
                             summary=f"imported {len(ids)} stories from {display}: {', '.join(map(str, ids))}",
                             data={"manifest": display, "sha256": digest, "stories": ids,
                                   "rows": [row for row, _ in checked]})
                session.flush()
        except BaseException:
            _forget_added(session, storage, store.added)
            raise
    log.info("imported %d stories from %s", len(ids), display)
    return ImportResult(manifest=display, story_ids=ids, rows=[row for row, _ in checked],
                        ignored_columns=manifest.ignored)


# --------------------------------------------------------------------------- exporting


@dataclass
class StoryExport:
    stories: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    media: dict[str, str] = field(default_factory=dict)  # manifest path -> storage key


def _local(moment: datetime | None) -> str:
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(ZONE).isoformat(timespec="seconds")


def export_stories(session: Session, *, start: date | None = None, end: date | None = None,
                   story_ids: list[int] | None = None) -> StoryExport:
    """Stories written, edited or published in [start, end] (Asia/Shanghai days; either end may
    be open) and/or with the given ids, oldest first, with every delivery of each."""
    from services.dispatch import delivery_view

    if start and end and end < start:
        raise ValidationError(f"the range ends ({end}) before it starts ({start})", "结束日期不能早于开始日期")
    query = select(Story).order_by(Story.id)
    if story_ids:
        wanted = sorted(set(story_ids))
        found = set(session.scalars(select(Story.id).where(Story.id.in_(wanted))))
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFound(f"no story {', '.join(map(str, missing))}", f"稿件 {'、'.join(map(str, missing))} 不存在")
        query = query.where(Story.id.in_(wanted))
    if start or end:
        lo = datetime.combine(start, time.min, tzinfo=ZONE) if start else None
        hi = datetime.combine(end + timedelta(days=1), time.min, tzinfo=ZONE) if end else None

        def within(column):  # noqa: ANN001, ANN202 - a datetime column
            conditions = [column.is_not(None)]
            if lo is not None:
                conditions.append(column >= lo)
            if hi is not None:
                conditions.append(column < hi)
            return conditions

        query = query.where(or_(
            and_(*within(Story.created_at)),
            exists().where(StoryVersion.story_id == Story.id, *within(StoryVersion.created_at)),
            exists().where(Delivery.story_id == Story.id, *within(Delivery.published_at)),
        ))
    stories = list(session.scalars(query))
    authors = dict(session.execute(select(User.id, User.username)).all())
    campaigns = dict(session.execute(select(Campaign.id, Campaign.name)).all())
    result = StoryExport(stories=[], deliveries=[])
    for story in stories:
        version = story.current
        row: dict[str, Any] = {
            "story_id": story.id, "version": version.number, "review_state": version.review_state,
            "versions": ", ".join(f"v{v.number} {v.review_state}" for v in story.versions),
            "status": story.status, "author": authors.get(story.created_by_id, "") if story.created_by_id else "",
            "created_at": _local(story.created_at),
            "title": version.title, "body": version.body_markdown, "summary": version.summary,
            "short_title": version.short_title, "theme": version.theme, "unit": version.unit,
            "project": version.project, "campaign": campaigns.get(version.campaign_id, ""),
            "label": version.label, "tags": list(version.tags or []),
            "cover": "", "cover_alt": "", "images": [], "image_alts": [], "video": "", "video_in": None,
            "video_out": None,
        }
        for item in version.media:
            path = f"{MEDIA_FOLDER}/{item.asset_sha256}{Path(item.asset.storage_key).suffix}"
            result.media[path] = item.asset.storage_key
            if item.role == "cover" and not row["cover"]:
                row["cover"], row["cover_alt"] = path, item.alt
            elif item.role == "video" and not row["video"]:
                row["video"], row["video_in"], row["video_out"] = path, item.in_point, item.out_point
            else:  # a second cover, or an image
                row["images"].append(path)
                row["image_alts"].append(item.alt)
        while row["image_alts"] and not row["image_alts"][-1]:
            row["image_alts"].pop()
        result.stories.append(row)
    if stories:
        deliveries = session.scalars(select(Delivery).where(Delivery.story_id.in_([s.id for s in stories]))
                                     .order_by(Delivery.story_id, Delivery.id))
        for delivery in deliveries:
            view = delivery_view(delivery)
            result.deliveries.append({
                "delivery_id": view["id"], "story_id": view["story_id"], "version": view["version"],
                "channel": view["channel"], "account": view["account"], "state": view["state"],
                "remote_url": view["remote_url"] or "", "published_at": _local(delivery.published_at),
                "attempts": view["attempts"], "last_error_code": view["last_error_code"] or "",
                "last_error": view["last_error"] or "",
            })
    return result


STORY_EXPORT_COLUMNS = (*INFO_COLUMNS, *COLUMNS)


def _flat(key: str, value: Any) -> Any:
    """A value as one spreadsheet cell: lists joined (tags by 、, paths and alt texts by lines)."""
    if isinstance(value, list):
        return ("、" if key == "tags" else "\n").join(str(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


def _story_cells(row: dict[str, Any], columns: tuple[Column, ...]) -> list[Any]:
    return [_flat(c.key, row.get(c.key, "")) for c in columns]


def to_csv(export: StoryExport, *, columns: tuple[Column, ...] = STORY_EXPORT_COLUMNS) -> bytes:
    """The stories (a manifest: header then one row each), a blank row, then the delivery
    records under their own header; UTF-8 with a BOM for Excel, formula guard on every cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.zh for c in columns])
    writer.writerows([_safe(cell) for cell in _story_cells(row, columns)] for row in export.stories)
    if export.deliveries:
        writer.writerow([])
        writer.writerow([c.zh for c in DELIVERY_COLUMNS])
        writer.writerows([_safe(_flat(c.key, d[c.key])) for c in DELIVERY_COLUMNS] for d in export.deliveries)
    return buffer.getvalue().encode("utf-8-sig")


def _sheet(book: Any, title: str, columns: tuple[Column, ...], rows: list[list[Any]],
           help_rows: list[list[str]] | None = None) -> None:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    sheet = book.create_sheet(title)
    sheet.append([c.zh for c in columns])
    for index in range(1, len(columns) + 1):
        sheet.cell(row=1, column=index).font = Font(bold=True)
    for values in rows:
        sheet.append([v if isinstance(v, int) and not isinstance(v, bool)
                      else _safe(ILLEGAL_CHARACTERS_RE.sub("", str(v))) for v in values])
    for index, column in enumerate(columns, start=1):
        widest = max([_display_width(column.zh)] + [_display_width(str(r[index - 1]).split("\n")[0][:60])
                                                     for r in rows])
        sheet.column_dimensions[get_column_letter(index)].width = min(max(widest + 4, 8), 60)
    top = Alignment(vertical="top")
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            cell.alignment = top
    sheet.freeze_panes = "A2"


def to_xlsx(export: StoryExport, *, columns: tuple[Column, ...] = STORY_EXPORT_COLUMNS,
            help_sheet: bool = False) -> bytes:
    """Sheet 稿件 (a manifest: header in row 1) and sheet 发布记录; with `help_sheet` a 填写说明
    sheet lists each column. Refuses a body Excel could not hold in one cell."""
    from openpyxl import Workbook

    for row in export.stories:
        if len(row.get("body") or "") > XLSX_CELL_MAX:
            raise ValidationError(
                f"story {row.get('story_id', '')}'s body is {len(row['body'])} characters; an XLSX cell holds "
                f"{XLSX_CELL_MAX}: export as CSV or YAML", f"稿件 {row.get('story_id', '')} 的正文超过 Excel 单元格上限"
                f"（{XLSX_CELL_MAX} 字），请导出为 CSV 或 YAML")
    book = Workbook()
    book.remove(book.active)
    _sheet(book, STORIES_SHEETS[0], columns, [_story_cells(row, columns) for row in export.stories])
    if not help_sheet or export.deliveries:
        _sheet(book, "发布记录", DELIVERY_COLUMNS,
               [[_flat(c.key, d[c.key]) for c in DELIVERY_COLUMNS] for d in export.deliveries])
    if help_sheet:
        explain = book.create_sheet("填写说明")
        explain.append(["列名", "英文列名", "说明"])
        for column in COLUMNS:
            explain.append([column.zh, column.key, column.help_zh])
        explain.append([])
        explain.append(["", "", "每行一篇稿件；任何一行有误则整份清单都不导入。导入的稿件为草稿，需提交三审。"])
        explain.append(["", "", "媒体路径相对于清单所在文件夹；可把清单和媒体文件一起打包为 zip 上传。"])
        explain.column_dimensions["A"].width = 16
        explain.column_dimensions["B"].width = 14
        explain.column_dimensions["C"].width = 80
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


class _Dumper(yaml.SafeDumper):
    """Multi-line text (bodies) as literal blocks, everything else as PyYAML writes it."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(export: StoryExport, *, columns: tuple[Column, ...] = STORY_EXPORT_COLUMNS) -> bytes:
    """`stories` (a manifest) and `deliveries`, with JSON-compatible values only."""
    document: dict[str, Any] = {"stories": [{c.key: row.get(c.key, "") for c in columns} for row in export.stories]}
    if columns is STORY_EXPORT_COLUMNS or export.deliveries:
        document["deliveries"] = export.deliveries
    return yaml.dump(document, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100).encode("utf-8")


def serialise(export: StoryExport, fmt: str) -> bytes:
    if fmt == "xlsx":
        return to_xlsx(export)
    if fmt == "csv":
        return to_csv(export)
    if fmt == "yaml":
        return to_yaml(export)
    raise ValidationError(f"unknown export format {fmt!r}; use xlsx, csv or yaml", "导出格式应为 xlsx、csv 或 yaml")


def write_zip(export: StoryExport, fmt: str, storage: Storage, out: Path) -> None:
    """`stories.<fmt>` and the media it names under media/, atomically: an import of the zip
    recreates the stories (as new drafts) with the same files."""
    from media.fsutil import atomic_path

    manifest = serialise(export, fmt)
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"stories.{fmt}", manifest)
            for path, key in sorted(export.media.items()):
                archive.write(storage.local_path(key), path, compress_type=zipfile.ZIP_STORED)


# --------------------------------------------------------------------------- the template


def _template_rows() -> list[dict[str, Any]]:
    """Two demo rows from the seed plans: 群众满意度提升 (000) and 黄山区民生实事 (004)."""
    from services.demo import LABEL, THEMES

    education = THEMES[0]
    return [
        {"title": education["title"], "body": education["body"], "summary": education["summary"],
         "theme": education["theme"], "unit": education["unit"], "label": LABEL.format(theme=education["theme"]),
         "tags": ["群众满意度提升", education["theme"]], "cover": f"{MEDIA_FOLDER}/基础教育封面.jpg",
         "cover_alt": "县城中小学课后服务课堂", "images": [], "image_alts": []},
        {"title": "老旧小区改造项目点位公开 欢迎群众监督",
         "body": "黄山区公开 2025 年**老旧小区改造**民生实事项目点位，在建项目设立公示牌，接受群众监督。\n\n"
                 "各小区在党群服务中心设置民生实事咨询窗口，摆放政策材料，每季度公开实施进展。\n\n"
                 "欢迎居民通过政风行风热线反映意见建议。",
         "summary": "公开老旧小区改造项目点位，设立在建公示牌，每季度公开实施进展。",
         "theme": "居住环境", "unit": "区住房城乡建设局", "project": "老旧小区改造",
         "label": "黄山市黄山区30项民生实事之老旧小区改造民生实事", "tags": ["民生实事", "温暖人心"],
         "cover": f"{MEDIA_FOLDER}/老旧小区改造封面.jpg", "cover_alt": "改造后的小区",
         "images": [f"{MEDIA_FOLDER}/在建公示牌.jpg"], "image_alts": ["小区入口的在建项目公示牌"]},
    ]


TEMPLATE_IMAGES = {  # file -> (title, subtitle) of the demo picture
    "基础教育封面.jpg": ("课后服务“5+2”全覆盖", "基础教育"),
    "老旧小区改造封面.jpg": ("老旧小区改造", "黄山区民生实事"),
    "在建公示牌.jpg": ("在建项目公示牌", "欢迎群众监督"),
}


def template(fmt: str) -> bytes:
    """A manifest with the template's two rows (XLSX also explains each column)."""
    export = StoryExport(stories=_template_rows(), deliveries=[])
    if fmt == "xlsx":
        return to_xlsx(export, columns=COLUMNS, help_sheet=True)
    if fmt == "csv":
        return to_csv(export, columns=COLUMNS)
    if fmt == "yaml":
        lines = ["# Fanout 稿件批量导入清单：每个条目一篇稿件；媒体路径相对于本文件所在文件夹。",
                 "# 可用的列（中文或英文列名均可）："]
        lines += [f"#   {c.key}（{c.zh}）：{c.help_zh}" if c.help_zh else f"#   {c.key}（{c.zh}）" for c in COLUMNS]
        return ("\n".join(lines) + "\n").encode("utf-8") + to_yaml(export, columns=COLUMNS)
    raise ValidationError(f"unknown template format {fmt!r}; use xlsx, csv, yaml or zip",
                          "模板格式应为 xlsx、csv、yaml 或 zip")


def template_zip() -> bytes:
    """The XLSX template plus its demo images under media/: imports as it is."""
    from media.generate import make_demo_image

    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="template-") as tmp, \
            zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("稿件导入模板.xlsx", template("xlsx"))
        for seed, (file_name, (title, subtitle)) in enumerate(TEMPLATE_IMAGES.items()):
            picture = make_demo_image(Path(tmp) / f"{seed}.jpg", title, subtitle, size=(1200, 750), seed=seed)
            archive.write(picture, f"{MEDIA_FOLDER}/{file_name}", compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


def template_bytes(fmt: str) -> bytes:
    return template_zip() if fmt == "zip" else template(fmt)
