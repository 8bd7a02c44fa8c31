"""Quarterly statistics (情况统计表, the seeds' 附件7) and their CSV / XLSX exports.

The seeds ask every responsible unit (区直各责任单位、各乡镇) for a 情况统计表 each quarter, on the
first working day of the next. `statistics(session, start, end)` counts, for stories whose
deliveries were published in [start, end] (Asia/Shanghai days):

* 情况统计表 — per responsible unit: stories, published posts, posts per channel, failures;
* 按主题 / 按栏目 / 按账号 — the same counts by theme, series and channel account;
* 准时发布 — series issues due in the range: released on time (within `ON_TIME_MINUTES`),
  late, missed — and the on-time rate;
* 审核用时 — review turnaround per level (初审 from submission, 复审 from 初审, 终审 from 复审):
  count, average and longest, in hours;
* 失败原因 — failed deliveries by the platform's error code.

`to_csv` writes every table one after another (UTF-8 with BOM, a title row before each);
`to_xlsx` one sheet per table, styled like the schedule tables (services/exports.py), with
the same formula guard.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels import short_names
from services.exports import _display_width, _safe, sheet_title
from services.models import ChannelAccount, Delivery, DeliveryState as S, Signature, Slot, Story, StoryVersion

ZONE = ZoneInfo("Asia/Shanghai")
ON_TIME_MINUTES = 15
LEVEL_ZH = {1: "初审", 2: "复审", 3: "终审"}
CHANNEL_ORDER = ("website", "rss", "weibo", "douyin", "wechat_mp", "wechat_channels", "wordpress", "webhook")


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[object]] = field(default_factory=list)


@dataclass
class Report:
    start: date
    end: date
    title: str
    tables: list[Table]
    on_time_rate: float | None


def quarter_of(day: date) -> tuple[date, date]:
    """The calendar quarter holding `day`: (first day, last day)."""
    first_month = (day.month - 1) // 3 * 3 + 1
    start = date(day.year, first_month, 1)
    end = (date(day.year + (first_month + 3 > 12), (first_month + 2) % 12 + 1, 1) - timedelta(days=1))
    return start, end


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time.min, tzinfo=ZONE), datetime.combine(end + timedelta(days=1), time.min,
                                                                           tzinfo=ZONE))


def _aware(moment: datetime) -> datetime:
    from datetime import timezone

    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def statistics(session: Session, start: date, end: date) -> Report:
    if end < start:
        from services.errors import ValidationError

        raise ValidationError(f"the range ends ({end}) before it starts ({start})", "结束日期不能早于开始日期")
    lo, hi = _bounds(start, end)
    rows = session.execute(
        select(Delivery.id, Delivery.state, Delivery.published_at, Delivery.updated_at, Delivery.last_error_code,
               Delivery.story_id, ChannelAccount.channel, ChannelAccount.name, StoryVersion.unit, StoryVersion.theme)
        .join(ChannelAccount, Delivery.account_id == ChannelAccount.id)
        .join(StoryVersion, Delivery.story_version_id == StoryVersion.id)
        .where(((Delivery.state == S.PUBLISHED.value) & (Delivery.published_at >= lo) & (Delivery.published_at < hi))
               | ((Delivery.state == S.FAILED.value) & (Delivery.updated_at >= lo) & (Delivery.updated_at < hi)))).all()
    series_of = {sid: name for sid, name in session.execute(
        select(Slot.story_id, Slot.series_id).where(Slot.story_id.is_not(None), Slot.series_id.is_not(None)))}
    from services.models import Series

    series_names = dict(session.execute(select(Series.id, Series.name)).all())
    channels = [c for c in CHANNEL_ORDER if any(r.channel == c for r in rows)]

    channel_zh = short_names()

    def grouped(key) -> list[list[object]]:  # noqa: ANN001 - a row -> group name function
        stories: dict[str, set[int]] = defaultdict(set)
        posts: dict[str, Counter] = defaultdict(Counter)
        failed: Counter = Counter()
        for r in rows:
            name = key(r) or "（未填写）"
            if r.state == S.PUBLISHED.value:
                stories[name].add(r.story_id)
                posts[name][r.channel] += 1
            else:
                failed[name] += 1
        names = sorted(set(stories) | set(failed))
        out = []
        for n, name in enumerate(names, start=1):
            total = sum(posts[name].values())
            out.append([n, name, len(stories[name]), total, *[posts[name][c] for c in channels], failed[name]])
        if names:
            out.append(["", "合计", len({r.story_id for r in rows if r.state == S.PUBLISHED.value}),
                        sum(1 for r in rows if r.state == S.PUBLISHED.value),
                        *[sum(1 for r in rows if r.state == S.PUBLISHED.value and r.channel == c) for c in channels],
                        sum(failed.values())])
        return out

    by_cols = ["稿件数", "发布条次", *[channel_zh.get(c, c) for c in channels], "失败次数"]
    period = f"{start:%Y年%m月%d日}至{end:%Y年%m月%d日}"
    quarter = quarter_of(start)
    title = (f"民生实事宣传情况统计表（{start.year}年第{(start.month - 1) // 3 + 1}季度）"
             if (start, end) == quarter else f"民生实事宣传情况统计表（{period}）")
    tables = [
        Table(title, ["序号", "责任单位", *by_cols], grouped(lambda r: r.unit)),
        Table(f"按主题统计（{period}）", ["序号", "主题", *by_cols], grouped(lambda r: r.theme)),
        Table(f"按栏目统计（{period}）", ["序号", "栏目", *by_cols],
              grouped(lambda r: series_names.get(series_of.get(r.story_id)) or "单独发布")),
        Table(f"按账号统计（{period}）", ["序号", "渠道账号", *by_cols],
              grouped(lambda r: f"{channel_zh.get(r.channel, r.channel)}·{r.name}")),
    ]
    # on-time releases of series issues due in the range
    slots = session.execute(select(Slot.state, Slot.release_at, Slot.released_at).where(
        Slot.release_at >= lo, Slot.release_at < hi, Slot.series_id.is_not(None),
        Slot.state.in_(["released", "missed"]))).all()
    on_time = sum(1 for s in slots if s.state == "released" and s.released_at is not None
                  and _aware(s.released_at) - _aware(s.release_at) <= timedelta(minutes=ON_TIME_MINUTES))
    late = sum(1 for s in slots if s.state == "released") - on_time
    missed = sum(1 for s in slots if s.state == "missed")
    rate = on_time / len(slots) if slots else None
    tables.append(Table(f"准时发布（{period}）", ["应发期次", "准时", "迟发", "错过", "准时率"],
                        [[len(slots), on_time, late, missed, f"{rate * 100:.1f}%" if rate is not None else "—"]]))
    # review turnaround per level
    waits: dict[int, list[float]] = defaultdict(list)
    signatures = session.execute(select(Signature.version_id, Signature.review_round, Signature.level, Signature.at)
                                 .where(Signature.at >= lo, Signature.at < hi)).all()
    submitted = dict(session.execute(select(StoryVersion.id, StoryVersion.submitted_at)).all())
    by_round: dict[tuple[int, int], dict[int, datetime]] = defaultdict(dict)
    for sig in session.execute(select(Signature.version_id, Signature.review_round, Signature.level, Signature.at)):
        by_round[(sig.version_id, sig.review_round)][sig.level] = sig.at
    for sig in signatures:
        before = (by_round[(sig.version_id, sig.review_round)].get(sig.level - 1) if sig.level > 1
                  else submitted.get(sig.version_id))
        if before is not None:
            waits[sig.level].append(max(0.0, (_aware(sig.at) - _aware(before)).total_seconds() / 3600))
    tables.append(Table(f"审核用时（{period}，小时）", ["审核级别", "审核次数", "平均用时", "最长用时"],
                        [[LEVEL_ZH[level], len(waits[level]),
                          f"{sum(waits[level]) / len(waits[level]):.1f}" if waits[level] else "—",
                          f"{max(waits[level]):.1f}" if waits[level] else "—"] for level in (1, 2, 3)]))
    causes = Counter(r.last_error_code or "unknown" for r in rows if r.state == S.FAILED.value)
    tables.append(Table(f"失败原因（{period}）", ["序号", "错误码", "次数"],
                        [[n, code, count] for n, (code, count) in enumerate(causes.most_common(), start=1)]))
    return Report(start=start, end=end, title=title, tables=tables, on_time_rate=rate)


def to_csv(report: Report) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for n, table in enumerate(report.tables):
        if n:
            writer.writerow([])
        writer.writerow([_safe(table.title)])
        writer.writerow([_safe(c) for c in table.header])
        writer.writerows([_safe(c) for c in row] for row in table.rows)
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(report: Report) -> bytes:
    """One sheet per table: merged bold title, bold frozen header, numbers as numbers."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    used: set[str] = set()
    for table in report.tables:
        name = sheet_title(table.title.split("（")[0])
        while name in used:
            name = sheet_title(name + "'")
        used.add(name)
        sheet = book.create_sheet(name)
        columns = len(table.header)
        sheet.append([_safe(table.title)])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=columns)
        sheet.cell(row=1, column=1).font = Font(bold=True, size=14)
        sheet.cell(row=1, column=1).alignment = Alignment(horizontal="center")
        sheet.append([_safe(c) for c in table.header])
        for column in range(1, columns + 1):
            sheet.cell(row=2, column=column).font = Font(bold=True)
        for row in table.rows:
            sheet.append([c if isinstance(c, (int, float)) and not isinstance(c, bool) else _safe(c) for c in row])
        for column in range(1, columns + 1):
            widest = max([_display_width(str(table.header[column - 1]))]
                         + [_display_width(str(r[column - 1])) for r in table.rows if len(r) >= column])
            sheet.column_dimensions[get_column_letter(column)].width = min(max(widest + 4, 8), 50)
        sheet.freeze_panes = "A3"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
