"""The quarterly statistics against the database, and their XLSX / CSV in the 情况统计表 shape."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from services import dispatch, reports
from services.db import session_scope
from services.errors import ValidationError
from services.models import Delivery
from tests.helpers import RecordingQueue, add_site_accounts, approve, make_story

IN_Q4 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("day", "quarter"), [
    (date(2026, 1, 1), (date(2026, 1, 1), date(2026, 3, 31))),
    (date(2026, 5, 20), (date(2026, 4, 1), date(2026, 6, 30))),
    (date(2026, 9, 30), (date(2026, 7, 1), date(2026, 9, 30))),
    (date(2026, 12, 31), (date(2026, 10, 1), date(2026, 12, 31))),
])
def test_quarters(day, quarter):
    assert reports.quarter_of(day) == quarter


def test_statistics_count_what_the_database_holds(home, settings, storage, tmp_path):
    with session_scope() as session:
        add_site_accounts(session, settings)
        first = make_story(session, storage, tmp_path, title="教育稿件")
        second = make_story(session, storage, tmp_path, title="医疗稿件")
    approve(settings, storage, first)
    approve(settings, storage, second)
    ids = []
    for story_id in (first, second):
        with session_scope() as session:
            ids += dispatch.plan_publication(session, RecordingQueue(), story_id).created
    with session_scope() as session:
        for delivery_id in ids[:3]:
            session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
                state="published", published_at=IN_Q4))
        session.execute(update(Delivery).where(Delivery.id == ids[3]).values(
            state="failed", updated_at=IN_Q4, last_error_code="20019"))
        session.execute(update(Delivery).where(Delivery.id == ids[0]).values(  # outside the quarter
            published_at=IN_Q4 - timedelta(days=80)))
    with session_scope() as session:
        report = reports.statistics(session, date(2026, 10, 1), date(2026, 12, 31))
        with pytest.raises(ValidationError):
            reports.statistics(session, date(2026, 12, 31), date(2026, 10, 1))
    assert report.title == "民生实事宣传情况统计表（2026年第4季度）"
    units = report.tables[0]
    assert units.header == ["序号", "责任单位", "稿件数", "发布条次", "网站", "RSS", "失败次数"]
    total = units.rows[-1]
    assert total[1] == "合计" and total[2:] == [2, 2, 1, 1, 1]  # 2 stories, 2 posts (网站, RSS), 1 failure
    causes = report.tables[-1]
    assert causes.rows == [[1, "20019", 1]]
    turnaround = report.tables[-2]
    assert [row[0] for row in turnaround.rows] == ["初审", "复审", "终审"]
    assert all(row[1] == 2 for row in turnaround.rows)  # each story signed once per level, this quarter

    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(reports.to_xlsx(report)))
    sheet = book[book.sheetnames[0]]
    assert sheet["A1"].value == report.title and sheet["B2"].value == "责任单位"
    assert [c.value for c in sheet[sheet.max_row]][1:] == ["合计", 2, 2, 1, 1, 1]
    text = reports.to_csv(report).decode("utf-8-sig")
    assert text.startswith("民生实事宣传情况统计表") and "失败原因" in text and "20019" in text
