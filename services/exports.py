"""Schedule tables for people outside the system: one series' plan as CSV or XLSX.

County media centers hand their plans round as tables, not as a calendar UI: the seed plan's
附件1 (系列新闻发布会安排: 序号 / 场次 / 时间 / 备注) and 附件3 (系列访谈播出时间: 序号 / 单位 /
播出时间 / 备注) list one row per issue. `schedule_table` lays a series out in that shape from the
database schedule (services/schedule.py), one row per slot in day order, open slots included so
the table shows the whole plan; `to_csv` and `to_xlsx` serialise it. The CLI (`fanout calendar`)
and the web routes call these; nothing here commits, sends or imports the web/Celery layers.

Story titles, themes and units are user input, so every cell is guarded against spreadsheet
formula injection: a cell that starts with =, +, - or @ (or a tab/carriage return) gets a
leading apostrophe and is shown as text.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy.orm import Session

from services import schedule
from services.schedule import SLOT_STATES_ZH

HEADER_FIRST, HEADER_TIME, HEADER_NOTE = "序号", "时间", "备注"
# The second column names what distinguishes one issue from the next: a press conference is a
# 场次 (文体生活专场, 基础教育专场, … in 附件1), an interview is given by a 单位 (附件3); for 图文,
# 短视频 and other series the issue is simply its story, so the column is its 内容 (the title).
SECOND_COLUMN = {"新闻发布会": "场次", "访谈": "单位"}
SECOND_COLUMN_DEFAULT = "内容"
TITLE_SUFFIX = {"新闻发布会": "安排", "访谈": "播出时间"}
TITLE_SUFFIX_DEFAULT = "发布安排"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Column widths (in Excel's character units) at least wide enough to fill the table in by hand.
_MIN_WIDTHS = (8, 24, 16, 20)
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")

# The notes services/schedule.py writes on a slot, in Chinese; anything else is shown as written.
_NOTES_ZH: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^no story queued$"), "未排入稿件"),
    (re.compile(r"^released (\d+) minutes late$"), "延迟{0}分钟发布"),
    (re.compile(r"^released by hand \((\w+)\)$"), "人工发布（原状态：{0}）"),
    (re.compile(r"^released .+ late, over the limit of .+$"), "超过最长延迟，未自动发布"),
    (re.compile(r"^the story's current version is not approved$"), "稿件当前版本未通过审核"),
    (re.compile(r"^no enabled account to publish to$"), "没有可用的发布账号"),
]


@dataclass
class ScheduleTable:
    """A series' plan as rows of text: `header` is [序号, 场次|单位|内容, 时间, 备注]."""

    title: str
    header: list[str]
    rows: list[list[str]]
    series: str = ""  # the series' name (the XLSX sheet is named after it)
    kind: str = ""  # the series' kind (图文, 短视频, 新闻发布会, 访谈, other)
    campaign: str = ""


def note_zh(note: str) -> str:
    """A slot's note (written in English by services/schedule.py) in Chinese; unknown notes as written."""
    note = (note or "").strip()
    for pattern, text in _NOTES_ZH:
        match = pattern.match(note)
        if match:
            groups = [SLOT_STATES_ZH.get(g, g) for g in match.groups()]
            return text.format(*groups)
    return note


def _title(campaign: str, series: str, kind: str) -> str:
    """附件1/附件3 style: 群众满意度提升行动新闻发布会安排, 群众满意度提升系列访谈播出时间 (the
    campaign is left out when the series' name already says it, e.g. 群众满意度提升 in both)."""
    stem = re.sub(r"(行动|工作|活动)$", "", campaign)
    subject = series if not campaign or (stem and stem in series) else f"{campaign}{series}"
    return subject + TITLE_SUFFIX.get(kind, TITLE_SUFFIX_DEFAULT)


def _second_cell(kind: str, title: str, unit: str, theme: str) -> str:
    if kind == "新闻发布会":
        theme = theme.strip()
        if theme:
            return theme if theme.endswith("专场") else f"{theme}专场"
        return title
    if kind == "访谈":
        return unit.strip() or title
    return title


def schedule_table(session: Session, series_ref: str) -> ScheduleTable:
    """The series named by `series_ref` (id or name) as a 附件1/附件3-shaped table.

    One row per slot in day order, whatever its state: 序号 is the issue number (第N期), the
    second column the story's 专场 theme / unit / title (empty for an open slot), 时间 the
    release time in Asia/Shanghai (11月23日 08:00; with the year when the series spans two years),
    备注 the slot's state in Chinese and its note. Raises NotFound for an unknown series.
    """
    series = schedule.find_series(session, series_ref)
    campaign = series.campaign.name if series.campaign else ""
    header = [HEADER_FIRST, SECOND_COLUMN.get(series.kind, SECOND_COLUMN_DEFAULT), HEADER_TIME, HEADER_NOTE]
    table = ScheduleTable(title=_title(campaign, series.name, series.kind), header=header, rows=[],
                          series=series.name, kind=series.kind, campaign=campaign)
    slots = schedule.slots_of(session, series.id)
    if not slots:
        return table
    entries = schedule.calendar(session, slots[0].day, slots[-1].day, series_id=series.id)
    with_year = slots[0].day.year != slots[-1].day.year
    for entry in entries:  # entry.day and entry.time are the release day and HH:MM in Asia/Shanghai
        when = f"{entry.day.year}年" if with_year else ""
        when += f"{entry.day.month}月{entry.day.day}日 {entry.time}"
        content = _second_cell(series.kind, entry.story_title, entry.unit, entry.theme) if entry.story_id else ""
        note = note_zh(entry.note)
        remark = entry.state_zh + (f"；{note}" if note else "")
        table.rows.append([str(entry.issue), content, when, remark])
    return table


def _safe(cell: object) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (CSV/formula injection)."""
    text = "" if cell is None else str(cell)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def to_csv(table: ScheduleTable) -> bytes:
    """The header row then the rows, UTF-8 with a BOM so Excel reads the Chinese correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_safe(c) for c in table.header])
    writer.writerows([_safe(c) for c in row] for row in table.rows)
    return buffer.getvalue().encode("utf-8-sig")


def sheet_title(name: str) -> str:
    """A name Excel accepts for a sheet: no []:*?/\\, no apostrophe at either end, ≤31 characters."""
    cleaned = _SHEET_FORBIDDEN.sub("", name).strip().strip("'").strip()
    cleaned = cleaned[:31].strip().strip("'")
    return cleaned if cleaned and cleaned.lower() != "history" else "安排"


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def to_xlsx(table: ScheduleTable) -> bytes:
    """One sheet: the title merged over the four columns, the header in bold, then the rows.

    序号 cells holding a plain number are written as numbers (Excel flags numbers stored as text);
    every other cell is text, guarded like the CSV, with characters XML cannot hold removed.
    """
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    def text(cell: object) -> str:  # strip first: "\x01=1" must not become a formula once stripped
        return _safe(ILLEGAL_CHARACTERS_RE.sub("", "" if cell is None else str(cell)))

    columns = len(table.header)
    book = Workbook()
    sheet = book.active
    sheet.title = sheet_title(table.series or table.title)
    sheet.append([text(table.title)])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=columns)
    sheet.cell(row=1, column=1).font = Font(bold=True, size=14)
    sheet.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center")
    sheet.row_dimensions[1].height = 28
    sheet.append([text(c) for c in table.header])
    for column in range(1, columns + 1):
        sheet.cell(row=2, column=column).font = Font(bold=True)
        sheet.cell(row=2, column=column).alignment = Alignment(horizontal="center", vertical="center")
    for row in table.rows:
        values: list[object] = [text(c) for c in row]
        if values and str(row[0]).isascii() and str(row[0]).isdigit():
            values[0] = int(row[0])
        sheet.append(values)
    center = Alignment(horizontal="center", vertical="center")
    wrap = Alignment(vertical="center", wrap_text=True)
    for cells in sheet.iter_rows(min_row=3):
        for cell in cells:
            cell.alignment = center if cell.column in (1, 3) else wrap
    for column in range(1, columns + 1):
        widest = max([_display_width(str(table.header[column - 1]))]
                     + [_display_width(str(row[column - 1])) for row in table.rows if len(row) >= column])
        least = _MIN_WIDTHS[column - 1] if column <= len(_MIN_WIDTHS) else 8
        sheet.column_dimensions[get_column_letter(column)].width = min(max(widest + 4, least), 60)
    sheet.freeze_panes = "A3"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
