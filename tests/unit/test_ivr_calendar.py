from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from ivr.calendar import BusinessCalendar, read_calendar
from ivr.reader import Report, SourceMap, TableReader

pytestmark = pytest.mark.unit

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def calendar_from(table: dict) -> tuple[BusinessCalendar, list[str]]:
    problems = []
    reader = TableReader(table, ("calendars", "office"), Report("f.toml", SourceMap(""), problems), "calendar 'office'")
    return read_calendar(reader), [problem.message for problem in problems]


def office(**extra) -> BusinessCalendar:
    calendar, problems = calendar_from({"timezone": "America/New_York",
                                        "hours": {"mon-fri": "08:00-18:00", "sat": ["09:00-12:00", "13:00-15:00"]},
                                        **extra})
    assert problems == []
    return calendar


def at(year, month, day, hour, minute, second=0, zone=NEW_YORK) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)


@pytest.mark.parametrize(("moment", "is_open"), [
    (at(2025, 3, 14, 7, 59, 59), False),
    (at(2025, 3, 14, 8, 0), True),  # the opening minute is in
    (at(2025, 3, 14, 17, 59, 59), True),
    (at(2025, 3, 14, 18, 0), False),  # the closing minute is out
    (at(2025, 3, 15, 12, 30), False),  # Saturday lunch break
    (at(2025, 3, 15, 13, 0), True),
    (at(2025, 3, 16, 10, 0), False),  # Sunday is not listed
])
def test_weekly_hours_include_opening_and_exclude_closing_minute(moment, is_open):
    assert office().is_open(moment) is is_open


def test_dated_and_yearly_holidays_close_the_whole_day():
    calendar = office(holidays=["2025-11-27", "12-25"])
    assert calendar.is_holiday(at(2025, 11, 27, 10, 0)) and not calendar.is_open(at(2025, 11, 27, 10, 0))
    assert not calendar.is_open(at(2026, 12, 25, 10, 0))  # a Friday, every year
    assert calendar.is_open(at(2025, 11, 28, 10, 0))


def test_holiday_is_the_local_date_not_the_utc_one():
    calendar = office(holidays=["12-25"])
    # 02:00 UTC on the 26th is still Christmas evening in New York.
    assert calendar.is_holiday(datetime(2025, 12, 26, 2, 0, tzinfo=UTC))


def test_any_aware_time_is_read_in_the_calendar_zone():
    # Saturday 06:00 in Tokyo is Friday 17:00 in New York: open.
    assert office().is_open(datetime(2025, 3, 15, 6, 0, tzinfo=ZoneInfo("Asia/Tokyo")))
    assert not office().is_open(datetime(2025, 3, 15, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo")))


def paris_sundays() -> BusinessCalendar:
    calendar, problems = calendar_from({"timezone": "Europe/Paris", "hours": {"sun": "08:00-12:00"}})
    assert problems == []
    return calendar


def test_opening_follows_the_wall_clock_on_the_spring_forward_day():
    calendar = paris_sundays()
    # 2025-03-30: clocks jump 02:00 -> 03:00; 08:00 local is 06:00 UTC (07:00 UTC a week before).
    assert not calendar.is_open(datetime(2025, 3, 30, 5, 59, tzinfo=UTC))
    assert calendar.is_open(datetime(2025, 3, 30, 6, 0, tzinfo=UTC))
    assert not calendar.is_open(datetime(2025, 3, 23, 6, 30, tzinfo=UTC))
    assert calendar.is_open(datetime(2025, 3, 23, 7, 0, tzinfo=UTC))


def test_closing_follows_the_wall_clock_on_the_fall_back_day():
    calendar = paris_sundays()
    # 2025-10-26: clocks go 03:00 -> 02:00; noon local is 11:00 UTC.
    assert calendar.is_open(datetime(2025, 10, 26, 10, 59, tzinfo=UTC))
    assert not calendar.is_open(datetime(2025, 10, 26, 11, 0, tzinfo=UTC))


def test_day_ranges_may_wrap_around_the_week_and_close_at_midnight():
    calendar, problems = calendar_from({"timezone": "UTC", "hours": {"sat-mon": "20:00-24:00"}})
    assert problems == []
    assert calendar.is_open(datetime(2025, 3, 16, 23, 59, tzinfo=UTC))  # Sunday
    assert calendar.is_open(datetime(2025, 3, 17, 20, 0, tzinfo=UTC))  # Monday
    assert not calendar.is_open(datetime(2025, 3, 18, 21, 0, tzinfo=UTC))  # Tuesday


def test_mistakes_are_reported_one_by_one():
    _, problems = calendar_from({"timezone": "Mars/Olympus", "hours": {"mon-fry": "08:00-18:00", "tue": "22:00-06:00"},
                                 "holidays": ["2025-02-30"], "colour": "red"})
    assert problems == [
        "calendar 'office': unknown time zone 'Mars/Olympus'",
        "calendar 'office' hours: 'mon-fry' is not a day or a range of days like 'mon-fri'",
        "calendar 'office' hours: '22:00-06:00' is not an opening range like '08:00-18:00' within one day",
        "calendar 'office': holiday '2025-02-30' is not a date like '2025-12-25' or '12-25'",
        "calendar 'office': unknown key 'colour'",
    ]
