"""Release cadence of campaign series: which days a series publishes, and its 第N期 numbering.

County media centers announce series such as "自10月8日起，每日推出一期" (one issue a day),
"每个工作日推出一期" or a fixed list of news-conference dates. A `SeriesRule` (plain data)
describes such a series; this module turns it into its release days (`release_days`),
timezone-aware release times in Asia/Shanghai (`release_datetimes`), the issue number of a
day (`issue_number`), the next release day (`next_release_on_or_after`) and a Chinese
one-line description for the editor UI (`describe_zh`).

Cadences: "daily" (every calendar day), "workdays" (Monday–Friday by the plain week) and
"dates" (an explicit list, sorted and deduplicated). Each is filtered by a holiday rule:

* "publish"  — publish on every cadence day, holidays included (no calendar data needed).
* "skip"     — drop official public holidays: days that `chinese_calendar.get_holiday_detail`
  reports as a rest day *with* a holiday name (the statutory days and the weekend days inside
  a holiday block). Ordinary weekends are not holidays here.
* "workdays" — keep only official working days (`chinese_calendar.is_workday`): holidays are
  dropped and make-up working days (调休上班, e.g. Saturday 2026-02-14) are included, even
  when the plain cadence would not have them (cadence "workdays" + rule "workdays" is exactly
  the official working days).

Holiday data comes from the `chinese-calendar` package, which ships the State Council's
official holiday schedule (国务院办公厅关于部分节假日安排的通知) year by year. It raises
NotImplementedError for years it has no data for; here that becomes a `CadenceError` naming
the covered range, raised by `validate` when the rule's own dates fall outside it and by the
iterators when an open-ended series runs past it. Upgrading the package extends the range.

The module is pure (no database, no I/O) and does nothing at import time: chinese_calendar
and the time zone are loaded on first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from services.errors import ValidationError

__all__ = [
    "CADENCES",
    "HOLIDAY_RULES",
    "CadenceError",
    "SeriesRule",
    "describe_zh",
    "issue_number",
    "next_release_on_or_after",
    "release_datetimes",
    "release_days",
    "validate",
]

CADENCES = ("daily", "workdays", "dates")
HOLIDAY_RULES = ("publish", "skip", "workdays")
TIMEZONE = "Asia/Shanghai"

_ONE_DAY = timedelta(days=1)


class CadenceError(ValidationError, ValueError):
    """An invalid series rule, or a day the holiday data does not cover.

    `message` (English, also `str(err)`) and `message_zh` (Simplified Chinese, for the UI).
    A `ValidationError` (HTTP 422 in the routes) and a `ValueError`.
    """


@dataclass(frozen=True)
class SeriesRule:
    cadence: str  # daily | workdays | dates
    start: date
    release_time: time  # naive local wall time in Asia/Shanghai
    holidays: str = "publish"  # publish | skip | workdays
    dates: tuple[date, ...] = ()  # for cadence "dates"
    end: date | None = None  # last possible release day, inclusive
    count: int | None = None  # number of issues


# --- chinese_calendar access (lazy) -------------------------------------------------------


def _calendar() -> Any:
    import chinese_calendar

    return chinese_calendar


@lru_cache(maxsize=1)
def covered_years() -> tuple[int, int]:
    """(first, last) year the installed chinese-calendar has official holiday data for."""
    cal = _calendar()
    years = [d.year for d in cal.holidays] + [d.year for d in cal.workdays]
    return min(years), max(years)


def _uncovered(day: date) -> CadenceError:
    first, last = covered_years()
    return CadenceError(
        f"no official holiday data for {day.isoformat()}: the installed chinese-calendar "
        f"covers {first}–{last} only; use holidays='publish' or upgrade the package",
        f"{_fmt_date(day)}没有官方节假日数据：当前节假日日历仅覆盖 {first}–{last} 年；"
        f"请改为“节假日照常推出”，或升级节假日日历",
    )


def _check_covered(day: date) -> None:
    first, last = covered_years()
    if not first <= day.year <= last:
        raise _uncovered(day)


def _is_official_holiday(day: date) -> bool:
    """A statutory holiday or a day inside a holiday block; not an ordinary weekend."""
    _check_covered(day)
    try:
        rest, name = _calendar().get_holiday_detail(day)
    except NotImplementedError as exc:  # pragma: no cover
        raise _uncovered(day) from exc
    return bool(rest) and name is not None


def _is_official_workday(day: date) -> bool:
    _check_covered(day)
    try:
        return bool(_calendar().is_workday(day))
    except NotImplementedError as exc:  # pragma: no cover
        raise _uncovered(day) from exc


# --- validation -----------------------------------------------------------------------------


def _is_plain_date(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def validate(rule: SeriesRule) -> None:
    """Raise CadenceError if the rule cannot describe a series."""
    if rule.cadence not in CADENCES:
        raise CadenceError(
            f"unknown cadence {rule.cadence!r}; expected one of {', '.join(CADENCES)}",
            f"未知的推出频率“{rule.cadence}”：应为每日、工作日或指定日期",
        )
    if rule.holidays not in HOLIDAY_RULES:
        raise CadenceError(
            f"unknown holiday rule {rule.holidays!r}; expected one of {', '.join(HOLIDAY_RULES)}",
            f"未知的节假日规则“{rule.holidays}”：应为照常推出、节假日停推或按官方工作日推出",
        )
    if not _is_plain_date(rule.start):
        raise CadenceError("start must be a date", "开始日期必须是日期")
    if not isinstance(rule.release_time, time) or rule.release_time.tzinfo is not None:
        raise CadenceError(
            "release_time must be a naive time (local wall time in Asia/Shanghai)",
            "推出时间必须是北京时间的钟点（不带时区）",
        )
    if rule.end is not None:
        if not _is_plain_date(rule.end):
            raise CadenceError("end must be a date", "结束日期必须是日期")
        if rule.end < rule.start:
            raise CadenceError(
                f"end {rule.end.isoformat()} is before start {rule.start.isoformat()}",
                f"结束日期{_fmt_date(rule.end)}早于开始日期{_fmt_date(rule.start)}",
            )
    if rule.count is not None and (
        isinstance(rule.count, bool)
        or not isinstance(rule.count, int)
        or rule.count < 1
    ):
        raise CadenceError(
            f"count must be a whole number of at least 1, not {rule.count!r}",
            "期数必须是不小于 1 的整数",
        )
    if rule.cadence == "dates":
        if not rule.dates:
            raise CadenceError(
                "cadence 'dates' needs at least one date",
                "按指定日期推出时至少要填写一个日期",
            )
        for day in rule.dates:
            if not _is_plain_date(day):
                raise CadenceError(f"not a date: {day!r}", f"不是日期：{day!r}")
        early = min(rule.dates)
        if early < rule.start:
            raise CadenceError(
                f"date {early.isoformat()} is before start {rule.start.isoformat()}",
                f"指定日期{_fmt_date(early)}早于开始日期{_fmt_date(rule.start)}",
            )
    if rule.holidays != "publish":
        # Days the rule itself names must have holiday data; an open-ended series that runs
        # past the data fails when iteration gets there.
        named = [rule.start, *([rule.end] if rule.end else []), *rule.dates]
        for day in named:
            _check_covered(day)


# --- release days ---------------------------------------------------------------------------


def _dates(rule: SeriesRule) -> list[date]:
    return sorted(set(rule.dates))


def _keeps(rule: SeriesRule, day: date) -> bool:
    """Whether `day` is a release day by cadence and holiday rule (ignoring bounds)."""
    if rule.holidays == "workdays":
        # Official working days include make-up weekends, so for "daily" and "workdays"
        # cadences this rule alone decides; for "dates" the day must also be listed.
        return _is_official_workday(day)
    if rule.cadence == "workdays" and day.weekday() > 4:
        return False
    if rule.holidays == "skip":
        return not _is_official_holiday(day)
    return True


def _candidates(rule: SeriesRule, first: date) -> Iterator[date]:
    if rule.cadence == "dates":
        yield from (d for d in _dates(rule) if d >= first)
        return
    day = first
    while True:
        yield day
        if day == date.max:
            return
        day += _ONE_DAY


def _iter_days(rule: SeriesRule, *, first: date | None = None) -> Iterator[date]:
    """All release days from `first` (default: start), bounded by end/count only.

    `count` is counted from the series start, so callers pass `first` only when count is None.
    """
    first = rule.start if first is None else max(first, rule.start)
    issued = 0
    for day in _candidates(rule, first):
        if rule.end is not None and day > rule.end:
            return
        if rule.count is not None and issued >= rule.count:
            return
        if _keeps(rule, day):
            issued += 1
            yield day


def release_days(
    rule: SeriesRule, *, until: date | None = None, limit: int = 1000
) -> Iterator[date]:
    """The series' release days in order from `rule.start`.

    Bounded by `rule.end`, `rule.count`, `until` (inclusive) and `limit` (at most that many
    days). The rule is validated when this is called, not on the first `next()`.
    """
    validate(rule)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise CadenceError(
            f"limit must be a whole number >= 0, not {limit!r}",
            "数量上限必须是非负整数",
        )
    return _bounded(rule, until, limit)


def _bounded(rule: SeriesRule, until: date | None, limit: int) -> Iterator[date]:
    if limit == 0:
        return
    for n, day in enumerate(_iter_days(rule), start=1):
        if until is not None and day > until:
            return
        yield day
        if n >= limit:
            return


@lru_cache(maxsize=1)
def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(TIMEZONE)


def release_datetimes(
    rule: SeriesRule, *, until: date | None = None, limit: int = 1000
) -> Iterator[datetime]:
    """Like `release_days`, as aware datetimes in Asia/Shanghai at `rule.release_time`."""
    days = release_days(rule, until=until, limit=limit)
    zone = _zone()
    return (datetime.combine(d, rule.release_time, tzinfo=zone) for d in days)


def issue_number(rule: SeriesRule, day: date) -> int | None:
    """第N期: 1-based position of `day` among the release days, None if not a release day."""
    validate(rule)
    if day < rule.start or (rule.end is not None and day > rule.end):
        return None
    for n, released in enumerate(_iter_days(rule), start=1):
        if released == day:
            return n
        if released > day:
            return None
    return None


def next_release_on_or_after(rule: SeriesRule, day: date) -> date | None:
    """The first release day on or after `day`; None once the series is over."""
    validate(rule)
    # Without a count, numbering does not matter and the scan can begin at `day`.
    first = None if rule.count is not None else day
    return next((d for d in _iter_days(rule, first=first) if d >= day), None)


# --- description ----------------------------------------------------------------------------


def _fmt_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _fmt_time(t: time) -> str:
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


def _join(words: str, when: str) -> str:
    """A space between Chinese text and the time, none after a full-width bracket."""
    return f"{words}{when}" if words.endswith("）") else f"{words} {when}"


_DATES_LISTED = 6  # more dates than this are summarised as "指定的 N 个日期"


def describe_zh(rule: SeriesRule) -> str:
    """One Chinese sentence for the UI, e.g. "自2025年10月8日起，每日 09:00 推出一期，共 6 期"."""
    validate(rule)
    when = _fmt_time(rule.release_time)
    if rule.cadence == "dates":
        days = _dates(rule)
        if len(days) <= _DATES_LISTED:
            listed = "、".join(
                _fmt_date(d)
                if i == 0 or d.year != days[i - 1].year
                else f"{d.month}月{d.day}日"
                for i, d in enumerate(days)
            )
            which = f"于{listed}"
        else:
            which = f"自{_fmt_date(rule.start)}起，于指定的 {len(days)} 个日期"
        filt = {
            "publish": "",
            "skip": "（遇法定节假日不推出）",
            "workdays": "（仅官方工作日推出）",
        }[rule.holidays]
        text = f"{_join(which + filt, when)} 各推出一期"
    else:
        if rule.holidays == "workdays":
            which = "每个工作日（含调休上班日）"
        elif rule.cadence == "daily":
            which = "每日" if rule.holidays == "publish" else "每日（法定节假日除外）"
        else:
            which = (
                "每周一至周五"
                if rule.holidays == "publish"
                else "每周一至周五（法定节假日除外）"
            )
        text = f"自{_fmt_date(rule.start)}起，{_join(which, when)} 推出一期"
    if rule.end is not None:
        text += f"，至{_fmt_date(rule.end)}止"
        if rule.count is not None:
            text += f"，最多 {rule.count} 期"
    elif rule.count is not None:
        text += f"，共 {rule.count} 期"
    return text
