"""Business hours: weekly opening ranges in a time zone, closed on holidays.

In a flow file::

    [calendars.office]
    timezone = "America/New_York"
    holidays = ["2025-11-27", "12-25"]   # a date, or MM-DD for every year
    [calendars.office.hours]
    mon-fri = "08:00-18:00"
    sat = ["09:00-12:00", "13:00-15:00"]  # days left out are closed

A range includes its opening minute and excludes its closing one: with "08:00-18:00" the office
is open from 08:00:00 to 17:59:59. Times are wall-clock times in the calendar's zone, so
opening hours stay put across daylight-saving changes. "24:00" closes at midnight; a range
cannot cross midnight, write it as two ("fri" = "22:00-24:00", "sat" = "00:00-06:00").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.reader import Problem, Report, SourceMap, TableReader

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_DAY_RANGE = re.compile(r"^([a-z]{3})(?:-([a-z]{3}))?$")
_MINUTES_PER_DAY = 24 * 60

OpenRange = tuple[int, int]  # minutes since local midnight: opening (included), closing (excluded)


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: ZoneInfo
    weekly: tuple[tuple[OpenRange, ...], ...]  # indexed by weekday, Monday first
    holidays: frozenset[date]
    annual_holidays: frozenset[tuple[int, int]]  # (month, day)

    def is_holiday(self, now: datetime) -> bool:
        day = now.astimezone(self.timezone).date()
        return day in self.holidays or (day.month, day.day) in self.annual_holidays

    def is_open(self, now: datetime) -> bool:
        if self.is_holiday(now):
            return False
        local = now.astimezone(self.timezone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly[local.weekday()])


def calendar_from_table(table: Mapping[str, object], label: str) -> tuple[BusinessCalendar, list[str]]:
    """A calendar from its table alone (not in a flow file), with its problems' messages."""
    problems: list[Problem] = []
    calendar = read_calendar(TableReader(table, (), Report("", SourceMap(""), problems), label))
    return calendar, [problem.message for problem in problems]


def read_calendar(reader: TableReader) -> BusinessCalendar:
    timezone = _read_timezone(reader)
    weekly = _read_weekly_hours(reader.child("hours", f"{reader.label} hours"))
    holidays, annual_holidays = _read_holidays(reader)
    reader.reject_unknown_keys()
    return BusinessCalendar(timezone, weekly, holidays, annual_holidays)


def _read_timezone(reader: TableReader) -> ZoneInfo:
    name = reader.text("timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if name:  # a missing name is already reported
            reader.error("timezone", f"unknown time zone '{name}'")
        return ZoneInfo("UTC")


def _read_weekly_hours(reader: TableReader) -> tuple[tuple[OpenRange, ...], ...]:
    weekly: list[list[OpenRange]] = [[] for _ in WEEKDAYS]
    for days_key in reader.table:
        ranges = [_parse_range(text, days_key, reader) for text in reader.text_list(days_key)]
        for weekday in _parse_days(days_key, reader):
            weekly[weekday] += [open_range for open_range in ranges if open_range]
    return tuple(tuple(sorted(day)) for day in weekly)


def _parse_days(days_key: str, reader: TableReader) -> list[int]:
    match = _DAY_RANGE.match(days_key)
    if not match or not set(match.groups(match[1])) <= set(WEEKDAYS):
        reader.error(days_key, f"'{days_key}' is not a day or a range of days like 'mon-fri'")
        return []
    first, last = WEEKDAYS.index(match[1]), WEEKDAYS.index(match[2] or match[1])
    return [(first + offset) % 7 for offset in range((last - first) % 7 + 1)]  # "sat-mon" wraps


def _parse_range(text: str, days_key: str, reader: TableReader) -> OpenRange | None:
    match = _RANGE.match(text)
    if match:
        start = int(match[1]) * 60 + int(match[2])
        end = int(match[3]) * 60 + int(match[4])
        if int(match[2]) < 60 and int(match[4]) < 60 and start < end <= _MINUTES_PER_DAY:
            return start, end
    reader.error(days_key, f"'{text}' is not an opening range like '08:00-18:00' within one day")
    return None


def _read_holidays(reader: TableReader) -> tuple[frozenset[date], frozenset[tuple[int, int]]]:
    dated: set[date] = set()
    annual: set[tuple[int, int]] = set()
    for text in reader.text_list("holidays", ()):
        try:
            if len(text) == len("MM-DD"):
                leap_year_day = date.fromisoformat(f"2000-{text}")  # 2000 accepts 02-29
                annual.add((leap_year_day.month, leap_year_day.day))
            else:
                dated.add(date.fromisoformat(text))
        except ValueError:
            reader.error("holidays", f"holiday '{text}' is not a date like '2025-12-25' or '12-25'")
    return frozenset(dated), frozenset(annual)
