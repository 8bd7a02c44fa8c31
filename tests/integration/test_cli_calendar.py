"""`fanout calendar` as a person runs it: a series' plan written as CSV or XLSX (the seed plan's
附件1 shape), read back from the file; an unknown series or an unwritable path is one English line
and a non-zero exit, and leaves no file behind. Dates are fixed (2026) and queueing passes `now=`."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from services import schedule
from services.db import session_scope
from tests.helpers import add_site_accounts, approve, desk, make_story
from tests.integration.test_cli import fanout

CAMPAIGN = "群众满意度提升行动"
ROWS = [
    ["1", "基础教育专场", "11月23日 15:00", "已排期"],  # make_story's theme is 基础教育
    ["2", "基础教育专场", "11月24日 15:00", "已排期"],
    ["3", "", "11月25日 15:00", "空档"],
    ["4", "", "11月26日 15:00", "空档"],
]


@pytest.fixture
def press_series(home, settings, storage, tmp_path):
    with session_scope() as session:
        desk(session)
        add_site_accounts(session, settings)
        schedule.add_campaign(session, CAMPAIGN, label_template="群众满意度提升行动之{theme}篇")
        schedule.add_series(session, settings, "系列新闻发布会", campaign=CAMPAIGN, kind="新闻发布会",
                            cadence_name="workdays", start=date(2026, 11, 23), release_time="15:00", count=4)
        stories = [make_story(session, storage, tmp_path, title=title, campaign=CAMPAIGN)
                   for title in ("第一场发布会", "第二场发布会")]
    for story_id in stories:
        approve(settings, storage, story_id)
        with session_scope() as session:
            schedule.queue_story(session, story_id, "系列新闻发布会",
                                 now=datetime(2026, 11, 20, 9, tzinfo=ZoneInfo("Asia/Shanghai")))
    return "系列新闻发布会"


@pytest.mark.parametrize("fmt", ["csv", "xlsx", None])
def test_calendar_writes_the_table(press_series, tmp_path, fmt):
    out = tmp_path / "out" / f"安排.{fmt or 'csv'}"
    out.parent.mkdir()
    out.write_bytes(b"old contents")  # replaced whole
    args = ["calendar", "--series", press_series, "-o", str(out)] + (["--format", fmt] if fmt else [])
    result = fanout(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote 4 rows to {out}"
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporary file left
    if fmt == "xlsx":
        sheet = load_workbook(out).active
        assert sheet["A1"].value == "群众满意度提升行动系列新闻发布会安排"
        assert [c.value for c in sheet[2]] == ["序号", "场次", "时间", "备注"]
        rows = [[str(c.value) if c.value is not None else "" for c in row] for row in sheet.iter_rows(min_row=3)]
    else:
        data = out.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        read = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        assert read[0] == ["序号", "场次", "时间", "备注"]
        rows = read[1:]
    assert rows == ROWS


@pytest.mark.parametrize(("args", "message"), [
    (["--series", "不存在的栏目"], "error: no series '不存在的栏目'"),
    (["--series", "999"], "error: no series '999'"),
    (["--series", "系列新闻发布会", "--format", "pdf"], "Invalid value for '--format'"),
])
def test_calendar_refuses_with_one_line(press_series, tmp_path, args, message):
    out = tmp_path / "plan.csv"
    result = fanout("calendar", *args, "-o", str(out))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    if message.startswith("error: "):
        assert result.stderr.strip() == message  # one line, in English
    assert not out.exists()


def test_calendar_to_a_missing_directory_is_one_line(press_series, tmp_path):
    out = tmp_path / "no-such-dir" / "plan.csv"
    result = fanout("calendar", "--series", press_series, "-o", str(out))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write {out}"), result.stderr
    assert not out.parent.exists()
