"""Schedule tables (附件1 新闻发布会安排 / 附件3 访谈播出时间 shape) as CSV and XLSX, on SQLite and PostgreSQL.

One campaign with three series: a 新闻发布会 series (6 issues on working days: one released 12
minutes late, one missed, one queued with a title that is a spreadsheet formula, three open), an
访谈 series across New Year (so 时间 carries the year) and a 图文 series. Every date is fixed in
2026/2027 and every queue/tick call passes `now=`, so nothing depends on the wall clock.
"""

from __future__ import annotations

import csv
import io
import itertools
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from services import exports, schedule
from services.db import session_scope
from services.errors import NotFound
from services.stories import MediaInput, StoryInput, create_story
from tests.helpers import (
    RecordingQueue,
    add_site_accounts,
    approve,
    desk,
    jpeg,
    make_story,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CAMPAIGN = "群众满意度提升行动"
FORMULA = '=HYPERLINK("http://evil.example/","点我")'
BOM = b"\xef\xbb\xbf"
_covers = itertools.count(1)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SHANGHAI)


def story(settings, storage, tmp_path, title: str, *, theme: str | None = None, unit: str | None = None) -> int:
    """An approved campaign story; make_story's 基础教育/县教育局 unless theme/unit are given."""
    with session_scope() as session:
        if theme is None and unit is None:
            story_id = make_story(session, storage, tmp_path, title=title, campaign=CAMPAIGN)
        else:
            media = [MediaInput(path=jpeg(tmp_path / f"cover-{next(_covers)}.jpg"), role="cover", alt="封面图")]
            story_id = create_story(session, storage, StoryInput(
                title=title, body_markdown="正文第一段。", summary="摘要", theme=theme or "", unit=unit or "",
                campaign=CAMPAIGN, media=media), actor=desk(session)["editor"]).id
    approve(settings, storage, story_id)
    return story_id


def queue(story_id: int, series: str, now: datetime) -> None:
    with session_scope() as session:
        schedule.queue_story(session, story_id, series, now=now)


@pytest.fixture
def plan(home, settings, storage, tmp_path):
    """The three series, queued and ticked as the module docstring says."""
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
        schedule.add_campaign(session, CAMPAIGN)  # no label template: stories may lack a theme or unit
        schedule.add_series(session, settings, "系列新闻发布会", campaign=CAMPAIGN, kind="新闻发布会",
                            cadence_name="workdays", start=date(2026, 11, 23), release_time="15:00", count=6)
        schedule.add_series(session, settings, "群众满意度提升系列访谈", campaign=CAMPAIGN, kind="访谈",
                            cadence_name="daily", start=date(2026, 12, 30), release_time="19:30", count=3)
        schedule.add_series(session, settings, "图文报道", campaign=CAMPAIGN, kind="图文",
                            cadence_name="daily", start=date(2026, 12, 1), release_time="08:00", count=2)
    before = at(date(2026, 11, 20), 9)
    queue(story(settings, storage, tmp_path, "文体生活新闻发布会", theme="文体生活", unit="县文旅局"), "系列新闻发布会", before)
    queue(story(settings, storage, tmp_path, "基础教育新闻发布会", theme="", unit="县教育局"), "系列新闻发布会", before)
    queue(story(settings, storage, tmp_path, FORMULA, theme="", unit=""), "系列新闻发布会", before)
    queue(story(settings, storage, tmp_path, "教育局长谈课后服务"), "群众满意度提升系列访谈", before)
    queue(story(settings, storage, tmp_path, "基层医疗访谈", theme="基本医疗", unit=""), "群众满意度提升系列访谈", before)
    queue(story(settings, storage, tmp_path, "图文稿件"), "图文报道", before)
    for now in (at(date(2026, 11, 23), 15, 12), at(date(2026, 11, 24), 23)):  # 12 minutes late; 8 hours late
        with session_scope() as session:
            schedule.tick(session, settings, RecordingQueue(), now=now)


TABLES = [
    ("系列新闻发布会", "群众满意度提升行动系列新闻发布会安排", "场次", [
        ["1", "文体生活专场", "11月23日 15:00", "已发布；延迟12分钟发布"],
        ["2", "基础教育新闻发布会", "11月24日 15:00", "已错过；超过最长延迟，未自动发布"],  # no theme: the title
        ["3", FORMULA, "11月25日 15:00", "已排期"],
        ["4", "", "11月26日 15:00", "空档"],
        ["5", "", "11月27日 15:00", "空档"],
        ["6", "", "11月30日 15:00", "空档"],  # working days: the weekend is skipped
    ]),
    ("群众满意度提升系列访谈", "群众满意度提升系列访谈播出时间", "单位", [
        ["1", "县教育局", "2026年12月30日 19:30", "已排期"],
        ["2", "基层医疗访谈", "2026年12月31日 19:30", "已排期"],  # no unit: the title
        ["3", "", "2027年1月1日 19:30", "空档"],
    ]),
    ("图文报道", "群众满意度提升行动图文报道发布安排", "内容", [
        ["1", "图文稿件", "12月1日 08:00", "已排期"],
        ["2", "", "12月2日 08:00", "空档"],
    ]),
]


def test_each_kind_has_its_header_and_one_row_per_slot(plan):
    with session_scope() as session:
        tables = {name: exports.schedule_table(session, name) for name, *_ in TABLES}
        by_id = exports.schedule_table(session, str(schedule.find_series(session, "图文报道").id))
    for name, title, second, rows in TABLES:
        table = tables[name]
        assert table.title == title, name
        assert table.header == ["序号", second, "时间", "备注"], name
        assert table.rows == rows, name
        assert [row[0] for row in table.rows] == [str(i) for i in range(1, len(rows) + 1)], name
    assert by_id.rows == tables["图文报道"].rows and by_id.series == "图文报道"


def test_an_unknown_series_is_not_found(plan):
    with session_scope() as session, pytest.raises(NotFound, match="no series '不存在'"):
        exports.schedule_table(session, "不存在")


def test_csv_has_a_bom_round_trips_and_neutralises_formulas(plan):
    with session_scope() as session:
        table = exports.schedule_table(session, "系列新闻发布会")
    data = exports.to_csv(table)
    assert data.startswith(BOM) and not data.startswith(BOM * 2)
    read = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert read[0] == ["序号", "场次", "时间", "备注"]
    assert read[1:] == [[f"'{c}" if c == FORMULA else c for c in row] for row in TABLES[0][3]]
    assert read[3][1] == "'" + FORMULA


def test_xlsx_round_trips_with_a_merged_title_and_neutralised_formulas(plan):
    with session_scope() as session:
        table = exports.schedule_table(session, "系列新闻发布会")
    book = load_workbook(io.BytesIO(exports.to_xlsx(table)))
    sheet = book.active
    assert sheet.title == "系列新闻发布会"
    assert [str(r) for r in sheet.merged_cells.ranges] == ["A1:D1"]
    assert sheet["A1"].value == "群众满意度提升行动系列新闻发布会安排"
    assert sheet["A1"].font.bold and sheet["A1"].alignment.horizontal == "center"
    assert [c.value for c in sheet[2]] == ["序号", "场次", "时间", "备注"] and all(c.font.bold for c in sheet[2])
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert values == [[int(row[0]), *[f"'{c}" if c == FORMULA else (c or None) for c in row[1:]]]
                      for row in TABLES[0][3]]
    assert sheet["B5"].data_type == "s" and sheet["B5"].value == "'" + FORMULA  # text, not a formula
    assert sheet.max_row == 2 + 6
    assert sheet.column_dimensions["B"].width >= 20 and sheet.column_dimensions["D"].width >= 20


@pytest.mark.parametrize(("cell", "expected"), [
    ("=1+1", "'=1+1"),
    ("+86 138", "'+86 138"),
    ("-3", "'-3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("文体生活专场", "文体生活专场"),
    ("a=b", "a=b"),
    ("", ""),
])
def test_formula_guard(cell, expected):
    table = exports.ScheduleTable(title="标题", header=["序号", "内容", "时间", "备注"], rows=[["1", cell, "", ""]],
                                  series="栏目")
    assert list(csv.reader(io.StringIO(exports.to_csv(table).decode("utf-8-sig"))))[1][1] == expected
    value = load_workbook(io.BytesIO(exports.to_xlsx(table))).active["B3"].value
    assert (value or "") == expected


def test_xlsx_drops_control_characters_before_guarding():
    table = exports.ScheduleTable(title="标题", header=["序号", "内容", "时间", "备注"],
                                  rows=[["1", "\x01=1+1", "", "\x07备注"]], series="栏目")
    sheet = load_workbook(io.BytesIO(exports.to_xlsx(table))).active
    assert (sheet["B3"].value, sheet["B3"].data_type, sheet["D3"].value) == ("'=1+1", "s", "备注")


@pytest.mark.parametrize(("name", "expected"), [
    ("系列新闻发布会", "系列新闻发布会"),
    ("访谈[第一季]: 教育/医疗?*", "访谈第一季 教育医疗"),
    ("'引号'", "引号"),
    ("很" * 40, "很" * 31),
    ("[]:*?/\\", "安排"),
    ("History", "安排"),
])
def test_sheet_titles_are_safe(name, expected):
    assert exports.sheet_title(name) == expected


@pytest.mark.parametrize(("note", "expected"), [
    ("released 12 minutes late", "延迟12分钟发布"),
    ("no story queued", "未排入稿件"),
    ("released by hand (missed)", "人工发布（原状态：已错过）"),
    ("released 4:00:00 late, over the limit of 3:00:00", "超过最长延迟，未自动发布"),
    ("the story's current version is not approved", "稿件当前版本未通过审核"),
    ("no enabled account to publish to", "没有可用的发布账号"),
    ("something new", "something new"),  # shown as written rather than guessed at
    ("", ""),
])
def test_slot_notes_in_chinese(note, expected):
    assert exports.note_zh(note) == expected


def test_xlsx_leaves_room_to_fill_in_an_empty_plan():
    table = exports.ScheduleTable(title="系列访谈播出时间", header=["序号", "单位", "时间", "备注"],
                                  rows=[[str(i), "", f"12月{i}日 19:30", "空档"] for i in range(1, 14)], series="系列访谈")
    sheet = load_workbook(io.BytesIO(exports.to_xlsx(table))).active
    assert sheet.max_row == 2 + 13 and sheet.freeze_panes == "A3"
    assert sheet.column_dimensions["B"].width >= 20 and sheet.column_dimensions["C"].width >= 16
