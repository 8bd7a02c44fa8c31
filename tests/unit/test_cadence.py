"""services/cadence.py: release days of campaign series against the real 2025–2026 calendar.

Expected dates are written out by hand from the State Council's holiday notices:
2025 National Day + Mid-Autumn: Oct 1–8 off, Sun Sep 28 and Sat Oct 11 working days;
2026 Spring Festival: Feb 15–23 off, Sat Feb 14 and Sat Feb 28 working days.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, time, timedelta
from itertools import islice

import chinese_calendar
import pytest

from services.cadence import (
    CADENCES,
    HOLIDAY_RULES,
    CadenceError,
    SeriesRule,
    describe_zh,
    issue_number,
    next_release_on_or_after,
    release_datetimes,
    release_days,
    validate,
)
from services.errors import ValidationError

D = date
NINE = time(9, 0)


START = D(2025, 9, 29)


def rule(cadence="daily", start=START, holidays="publish", **kw) -> SeriesRule:
    return SeriesRule(
        cadence=cadence,
        start=start,
        release_time=kw.pop("release_time", NINE),
        holidays=holidays,
        **kw,
    )


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


# --- release days: literal expectations from the official schedule -----------------------

CASES = [
    pytest.param(
        rule("daily", D(2025, 9, 29), "skip", count=6),
        {},
        [
            D(2025, 9, 29),
            D(2025, 9, 30),
            D(2025, 10, 9),
            D(2025, 10, 10),
            D(2025, 10, 11),
            D(2025, 10, 12),
        ],
        id="daily-skip-national-day-2025",
    ),
    pytest.param(
        # Ordinary weekends are not holidays: Sat Sep 27 stays in a daily+skip series.
        rule("daily", D(2025, 9, 26), "skip"),
        {"until": D(2025, 10, 2)},
        [
            D(2025, 9, 26),
            D(2025, 9, 27),
            D(2025, 9, 28),
            D(2025, 9, 29),
            D(2025, 9, 30),
        ],
        id="daily-skip-keeps-plain-weekend",
    ),
    pytest.param(
        rule("daily", D(2025, 9, 26), "workdays"),
        {"until": D(2025, 10, 13)},
        # Sun Sep 28 and Sat Oct 11 are make-up working days; Oct 1–8 off; Sat 27 / Sun 12 rest.
        [
            D(2025, 9, 26),
            D(2025, 9, 28),
            D(2025, 9, 29),
            D(2025, 9, 30),
            D(2025, 10, 9),
            D(2025, 10, 10),
            D(2025, 10, 11),
            D(2025, 10, 13),
        ],
        id="daily-workdays-national-day-makeup-2025",
    ),
    pytest.param(
        rule("workdays", D(2026, 2, 9), "workdays"),
        {"until": D(2026, 3, 2)},
        # Sat Feb 14 make-up day in, Feb 15–23 out, Sat Feb 28 make-up day in.
        [
            D(2026, 2, 9),
            D(2026, 2, 10),
            D(2026, 2, 11),
            D(2026, 2, 12),
            D(2026, 2, 13),
            D(2026, 2, 14),
            D(2026, 2, 24),
            D(2026, 2, 25),
            D(2026, 2, 26),
            D(2026, 2, 27),
            D(2026, 2, 28),
            D(2026, 3, 2),
        ],
        id="workdays-workdays-spring-festival-2026",
    ),
    pytest.param(
        rule("workdays", D(2026, 2, 9), "skip"),
        {"until": D(2026, 3, 2)},
        # Mon–Fri minus the holiday block: no make-up Saturdays.
        [
            D(2026, 2, 9),
            D(2026, 2, 10),
            D(2026, 2, 11),
            D(2026, 2, 12),
            D(2026, 2, 13),
            D(2026, 2, 24),
            D(2026, 2, 25),
            D(2026, 2, 26),
            D(2026, 2, 27),
            D(2026, 3, 2),
        ],
        id="workdays-skip-spring-festival-2026",
    ),
    pytest.param(
        rule("workdays", D(2026, 2, 12), "publish"),
        {"until": D(2026, 2, 24)},
        # Plain Mon–Fri, holidays or not; make-up Saturday Feb 14 is not a weekday.
        [
            D(2026, 2, 12),
            D(2026, 2, 13),
            D(2026, 2, 16),
            D(2026, 2, 17),
            D(2026, 2, 18),
            D(2026, 2, 19),
            D(2026, 2, 20),
            D(2026, 2, 23),
            D(2026, 2, 24),
        ],
        id="workdays-publish-plain-week",
    ),
    pytest.param(
        rule("daily", D(2025, 9, 30), "publish", end=D(2025, 10, 3)),
        {},
        [D(2025, 9, 30), D(2025, 10, 1), D(2025, 10, 2), D(2025, 10, 3)],
        id="daily-publish-end-inclusive",
    ),
    pytest.param(
        rule(
            "dates",
            D(2025, 9, 1),
            "skip",
            dates=(
                D(2025, 10, 9),
                D(2025, 10, 3),
                D(2025, 9, 30),
                D(2025, 10, 9),
                D(2025, 10, 12),
            ),
        ),
        {},
        # Unsorted, duplicated input; Oct 3 (National Day) dropped; Sun Oct 12 kept.
        [D(2025, 9, 30), D(2025, 10, 9), D(2025, 10, 12)],
        id="dates-skip-normalised",
    ),
    pytest.param(
        rule(
            "dates",
            D(2025, 9, 1),
            "workdays",
            dates=(D(2025, 10, 12), D(2025, 10, 11), D(2025, 10, 3)),
        ),
        {},
        [D(2025, 10, 11)],
        id="dates-workdays",
    ),
    pytest.param(
        rule(
            "dates",
            D(2025, 9, 1),
            "publish",
            dates=(D(2025, 10, 3), D(2025, 10, 1)),
            count=1,
        ),
        {},
        [D(2025, 10, 1)],
        id="dates-publish-count",
    ),
    pytest.param(
        rule("daily", D(2025, 9, 29), "skip"),
        {"limit": 3},
        [D(2025, 9, 29), D(2025, 9, 30), D(2025, 10, 9)],
        id="limit",
    ),
]


@pytest.mark.parametrize(("series", "bounds", "expected"), CASES)
def test_release_days(series, bounds, expected):
    assert list(release_days(series, **bounds)) == expected


# --- release days: agreement with chinese_calendar itself ---------------------------------

CALENDAR_WINDOWS = [
    (D(2025, 9, 20), D(2025, 10, 20)),
    (D(2026, 2, 1), D(2026, 3, 8)),
    (D(2025, 1, 1), D(2026, 12, 31)),
]


@pytest.mark.parametrize(("first", "last"), CALENDAR_WINDOWS)
@pytest.mark.parametrize("cadence", ["daily", "workdays"])
def test_holiday_rules_agree_with_chinese_calendar(cadence, first, last):
    window = days_between(first, last)
    plain = window if cadence == "daily" else [d for d in window if d.weekday() < 5]

    def official_holiday(d):
        rest, name = chinese_calendar.get_holiday_detail(d)
        return rest and name is not None

    expected = {
        "publish": plain,
        "skip": [d for d in plain if not official_holiday(d)],
        "workdays": [d for d in window if chinese_calendar.is_workday(d)],
    }
    for holidays in HOLIDAY_RULES:
        got = list(release_days(rule(cadence, first, holidays, end=last), limit=10_000))
        assert got == expected[holidays], (cadence, holidays)


def test_spring_festival_2026_facts_in_package():
    # The literal expectations above rest on these; if the package data changes, this says so.
    assert chinese_calendar.is_workday(D(2026, 2, 14)) and D(2026, 2, 14).weekday() == 5
    assert chinese_calendar.is_workday(D(2026, 2, 28)) and D(2026, 2, 28).weekday() == 5
    assert all(
        chinese_calendar.is_holiday(d)
        for d in days_between(D(2026, 2, 15), D(2026, 2, 23))
    )
    assert chinese_calendar.is_workday(D(2025, 9, 28)) and chinese_calendar.is_workday(
        D(2025, 10, 11)
    )
    # A make-up day carries the holiday's name but is not a rest day.
    assert chinese_calendar.get_holiday_detail(D(2026, 2, 14)) == (
        False,
        "Spring Festival",
    )
    # is_holiday is True on ordinary weekends: why "skip" uses get_holiday_detail.
    assert chinese_calendar.is_holiday(D(2025, 9, 27))
    assert chinese_calendar.get_holiday_detail(D(2025, 9, 27)) == (True, None)


# --- numbering and next release -----------------------------------------------------------

SKIP6 = rule("daily", D(2025, 9, 29), "skip", count=6)


@pytest.mark.parametrize(
    ("series", "day", "number"),
    [
        (SKIP6, D(2025, 9, 29), 1),
        (SKIP6, D(2025, 9, 30), 2),
        (SKIP6, D(2025, 10, 1), None),  # holiday
        (SKIP6, D(2025, 10, 9), 3),
        (SKIP6, D(2025, 10, 12), 6),
        (SKIP6, D(2025, 10, 13), None),  # after the 6th issue
        (SKIP6, D(2025, 9, 28), None),  # before start
        # open-ended: must stop at the first later release day, not scan past 2026
        (rule("daily", D(2025, 9, 29), "skip"), D(2025, 10, 1), None),
        (rule("daily", D(2025, 9, 29), "skip"), D(2025, 10, 9), 3),
        (rule("workdays", D(2026, 2, 13), "workdays"), D(2026, 2, 24), 3),  # 13, 14, 24
        (
            rule("dates", D(2025, 9, 1), dates=(D(2025, 10, 9), D(2025, 9, 30))),
            D(2025, 10, 9),
            2,
        ),
        (
            rule("dates", D(2025, 9, 1), dates=(D(2025, 10, 9), D(2025, 9, 30))),
            D(2025, 10, 1),
            None,
        ),
    ],
)
def test_issue_number(series, day, number):
    assert issue_number(series, day) == number


@pytest.mark.parametrize(
    ("series", "day", "expected"),
    [
        (SKIP6, D(2025, 9, 1), D(2025, 9, 29)),  # before start
        (SKIP6, D(2025, 9, 30), D(2025, 9, 30)),  # on a release day
        (SKIP6, D(2025, 10, 1), D(2025, 10, 9)),  # across the holiday block
        (SKIP6, D(2025, 10, 13), None),  # count exhausted
        (
            rule("daily", D(2025, 9, 29), "skip"),
            D(2025, 10, 13),
            D(2025, 10, 13),
        ),  # open-ended
        (rule("workdays", D(2026, 2, 1), "workdays"), D(2026, 2, 14), D(2026, 2, 14)),
        (rule("workdays", D(2026, 2, 1), "workdays"), D(2026, 2, 15), D(2026, 2, 24)),
        (
            rule("workdays", D(2026, 2, 1), "publish", end=D(2026, 2, 20)),
            D(2026, 2, 21),
            None,
        ),
        (
            rule("dates", D(2025, 9, 1), dates=(D(2025, 10, 9), D(2025, 9, 30))),
            D(2025, 10, 1),
            D(2025, 10, 9),
        ),
    ],
)
def test_next_release_on_or_after(series, day, expected):
    assert next_release_on_or_after(series, day) == expected


def test_release_datetimes_aware_shanghai():
    series = rule("daily", D(2025, 9, 29), "skip", count=3, release_time=time(19, 30))
    got = list(release_datetimes(series))
    assert [dt.isoformat() for dt in got] == [
        "2025-09-29T19:30:00+08:00",
        "2025-09-30T19:30:00+08:00",
        "2025-10-09T19:30:00+08:00",
    ]
    assert all(
        isinstance(dt, datetime) and str(dt.tzinfo) == "Asia/Shanghai" for dt in got
    )
    assert all(dt.utcoffset() == timedelta(hours=8) for dt in got)
    assert list(release_datetimes(series, limit=1)) == got[:1]


def test_open_ended_series_is_bounded_by_limit():
    assert len(list(release_days(rule("daily", D(2025, 1, 1))))) == 1000
    assert list(islice(release_days(rule("daily", D(2025, 1, 1)), limit=0), 5)) == []


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("series", "en", "zh"),
    [
        (rule("weekly"), "unknown cadence", "未知的推出频率"),
        (rule(holidays="sometimes"), "unknown holiday rule", "未知的节假日规则"),
        (rule("dates"), "needs at least one date", "至少要填写一个日期"),
        (
            rule("dates", D(2025, 10, 1), dates=(D(2025, 10, 2), D(2025, 9, 30))),
            "before start",
            "早于开始日期",
        ),
        (rule(end=D(2025, 9, 28)), "before start", "早于开始日期"),
        (rule(count=0), "count must be", "期数必须"),
        (rule(count=-3), "count must be", "期数必须"),
        (rule(release_time=datetime(2025, 1, 1, 9)), "release_time", "推出时间"),
    ],
)
def test_validate_errors(series, en, zh):
    with pytest.raises(CadenceError) as info:
        validate(series)
    assert en in str(info.value)
    assert zh in info.value.message_zh
    assert isinstance(info.value, ValueError) and isinstance(
        info.value, ValidationError
    )
    # Every entry point validates too.
    with pytest.raises(CadenceError):
        release_days(series)


def test_valid_rules_pass():
    for cadence in CADENCES:
        for holidays in HOLIDAY_RULES:
            validate(
                rule(
                    cadence,
                    holidays=holidays,
                    dates=(D(2025, 10, 1),),
                    count=2,
                    end=D(2025, 12, 31),
                )
            )


@pytest.mark.parametrize(
    "series",
    [
        rule("daily", D(2030, 1, 1), "skip"),
        rule("workdays", D(2030, 1, 1), "workdays", count=5),
        rule("dates", D(2026, 1, 1), "skip", dates=(D(2026, 5, 1), D(2030, 5, 1))),
        rule("daily", D(2026, 12, 1), "workdays", end=D(2030, 1, 31)),
    ],
)
def test_outside_covered_years_is_a_cadence_error(series):
    with pytest.raises(CadenceError) as info:
        list(release_days(series))
    assert "2004–2026" in str(info.value) and "2030" in str(info.value)
    assert "2004–2026" in info.value.message_zh
    assert not isinstance(info.value, NotImplementedError)


def test_open_ended_series_running_past_covered_years():
    days = release_days(rule("daily", D(2026, 12, 30), "skip"))
    assert next(days) == D(2026, 12, 30)
    assert next(days) == D(2026, 12, 31)
    with pytest.raises(CadenceError, match="2027"):
        next(days)


def test_publish_needs_no_calendar_data():
    assert list(release_days(rule("workdays", D(2030, 1, 1), "publish", count=3))) == [
        D(2030, 1, 1),
        D(2030, 1, 2),
        D(2030, 1, 3),
    ]


# --- description --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("series", "text"),
    [
        (
            rule("workdays", D(2025, 10, 8), "workdays", count=6),
            "自2025年10月8日起，每个工作日（含调休上班日）09:00 推出一期，共 6 期",
        ),
        (
            rule(
                "daily",
                D(2025, 9, 29),
                "skip",
                end=D(2025, 10, 31),
                release_time=time(18, 30),
            ),
            "自2025年9月29日起，每日（法定节假日除外）18:30 推出一期，至2025年10月31日止",
        ),
        (
            rule("workdays", D(2026, 3, 2), "publish"),
            "自2026年3月2日起，每周一至周五 09:00 推出一期",
        ),
        (
            rule(
                "dates",
                D(2025, 12, 1),
                "skip",
                dates=(D(2026, 1, 5), D(2025, 12, 29), D(2026, 1, 12)),
            ),
            "于2025年12月29日、2026年1月5日、1月12日（遇法定节假日不推出）09:00 各推出一期",
        ),
    ],
)
def test_describe_zh(series, text):
    assert describe_zh(series) == text


# --- no work at import time ---------------------------------------------------------------


def test_import_does_not_load_chinese_calendar():
    code = "import sys, services.cadence; print('chinese_calendar' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
