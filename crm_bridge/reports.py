"""Historical reports from the interaction log: per queue and per agent, by 15, 30 or 60 minutes
or by local day. docs/KPIS.md defines every figure; the SQL below implements exactly that.

Only ACD-handled calls count (queue and queued_at set), each in the bucket of its queued_at, so
the agent report's totals reconcile with the queue report's. Ratios are computed here from the
counts and are None when their denominator is zero.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg

from crm_bridge.fields import Choice, Context, Field, FieldError, Integer, Text, ValidationError, parse_fields

# name -> (bucket width, or None for the local calendar day; the longest range in days).
# The limits keep an answer to a few thousand buckets per queue.
INTERVALS: dict[str, tuple[timedelta | None, int]] = {
    "15m": (timedelta(minutes=15), 31),
    "30m": (timedelta(minutes=30), 31),
    "60m": (timedelta(hours=1), 31),
    "day": (None, 366),
}
DEFAULT_INTERVAL = "60m"
DEFAULT_TZ = "UTC"
DEFAULT_SERVICE_LEVEL_SECONDS = 20
DEFAULT_SHORT_ABANDON_SECONDS = 5


@dataclass(frozen=True)
class LocalDate:
    description: str = ""

    def parse(self, value: Any, context: Context) -> date:
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            raise FieldError("must be a date, e.g. 2024-05-01") from None

    def schema(self) -> dict:
        return {"type": "string", "format": "date", "description": self.description}


@functools.cache  # available_timezones() walks the tz database on every call
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@dataclass(frozen=True)
class TimeZone:
    description: str = ""

    def parse(self, value: Any, context: Context) -> str:
        if value not in _zone_names():
            raise FieldError("must be an IANA time zone, e.g. Europe/Berlin or UTC")
        return value

    def schema(self) -> dict:
        return {"type": "string", "example": "Europe/Berlin", "description": self.description}


# fields.py's kinds plus the two above, which parse and describe themselves the same way.
ReportField = Field | LocalDate | TimeZone

_COMMON_PARAMETERS: dict[str, ReportField] = {
    "from": LocalDate("First local day of the report (required)"),
    "to": LocalDate("Last local day, included (default: from)"),
    "interval": Choice(tuple(INTERVALS), f"Bucket size (default {DEFAULT_INTERVAL}); day is the local "
                       f"calendar day. Ranges: up to 31 days by 15m/30m/60m, 366 by day"),
    "tz": TimeZone(f"IANA time zone of the days and buckets (default {DEFAULT_TZ})"),
    "queue": Text(128, description="Only this queue"),
}
QUEUE_PARAMETERS: dict[str, ReportField] = _COMMON_PARAMETERS | {
    "service_level_seconds": Integer(1, 3600, f"Service level threshold T (default {DEFAULT_SERVICE_LEVEL_SECONDS})"),
    "short_abandon_seconds": Integer(0, 600, "Abandons after a shorter wait are short abandons "
                                     f"(default {DEFAULT_SHORT_ABANDON_SECONDS}; 0: none)"),
}
AGENT_PARAMETERS: dict[str, ReportField] = _COMMON_PARAMETERS | {"agent": Text(64, description="Only this agent")}


@dataclass(frozen=True)
class ReportQuery:
    first_day: date
    last_day: date  # included
    interval: str = DEFAULT_INTERVAL
    tz: str = DEFAULT_TZ
    queue: str | None = None
    agent: str | None = None
    service_level_seconds: int = DEFAULT_SERVICE_LEVEL_SECONDS
    short_abandon_seconds: int = DEFAULT_SHORT_ABANDON_SECONDS

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)

    def window(self) -> tuple[datetime, datetime]:
        """From local midnight of the first day to local midnight after the last (23 to 25 h a day)."""
        return (datetime.combine(self.first_day, time(), self.zone),
                datetime.combine(self.last_day + timedelta(days=1), time(), self.zone))

    def parameters(self) -> dict[str, Any]:
        """The query under its API names, to echo in an answer."""
        start, stop = self.window()
        return {"from": self.first_day, "to": self.last_day, "interval": self.interval, "tz": self.tz,
                "queue": self.queue, "agent": self.agent, "service_level_seconds": self.service_level_seconds,
                "short_abandon_seconds": self.short_abandon_seconds, "window_start": start, "window_end": stop}


def parse_query(params: Mapping[str, str], spec: Mapping[str, ReportField]) -> ReportQuery:
    """A ReportQuery from query-string parameters (QUEUE_PARAMETERS or AGENT_PARAMETERS);
    raises ValidationError with one message per field."""
    # No phone fields here, so no phone normaliser.
    values = parse_fields(spec, params, Context(phones=None, from_text=True), required=frozenset({"from"}))
    first_day = values.pop("from")
    query = ReportQuery(first_day, values.pop("to", first_day), **values)
    max_days = INTERVALS[query.interval][1]
    if query.last_day < query.first_day:
        raise ValidationError({"to": "must not be before from"})
    if (query.last_day - query.first_day).days >= max_days:
        raise ValidationError({"to": f"the range may span at most {max_days} days with interval={query.interval}"
                               + ("" if query.interval == "day" else "; use interval=day for longer ranges")})
    return query


@dataclass(frozen=True, slots=True)
class QueueRow:
    bucket: datetime  # the bucket's start, in the query's time zone
    queue: str
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    answered_within_threshold: int
    service_level_answered: float | None  # answered within T / answered
    service_level_with_abandons: float | None  # answered within T / (answered + abandoned - short abandoned)
    asa_seconds: float | None
    aht_seconds: float | None
    max_wait_seconds: float | None
    transfers: int
    callbacks: int
    survey_average: float | None
    survey_count: int


@dataclass(frozen=True, slots=True)
class AgentRow:
    bucket: datetime
    agent: str
    answered: int  # as the first agent
    aht_seconds: float | None
    transferred: int  # answered by this agent, then transferred
    received_by_transfer: int
    survey_average: float | None
    survey_count: int


# The definitions of docs/KPIS.md shared by both reports; fixed SQL text, never a value.
_ANSWERED = "(answered_at IS NOT NULL AND cardinality(agents) > 0)"
_TRANSFERRED = "(outcome = 'transferred' OR cardinality(agents) > 1)"
_HANDLE = "(coalesce(talk_seconds, 0) + coalesce(hold_seconds, 0) + coalesce(wrapup_seconds, 0))"

_QUEUE_SQL = """
SELECT {bucket} AS bucket, queue,
       count(*) AS offered,
       count(*) FILTER (WHERE {answered}) AS answered,
       count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
       count(*) FILTER (WHERE outcome = 'abandoned' AND wait_seconds < {short}) AS short_abandoned,
       count(*) FILTER (WHERE {answered} AND wait_seconds <= {threshold}) AS answered_within_threshold,
       avg(wait_seconds) FILTER (WHERE {answered}) AS asa_seconds,
       avg({handle}) FILTER (WHERE {answered}) AS aht_seconds,
       max(wait_seconds) AS max_wait_seconds,
       count(*) FILTER (WHERE {transferred}) AS transfers,
       count(*) FILTER (WHERE outcome = 'callback_requested') AS callbacks,
       avg(survey_score::float8) AS survey_average,
       count(survey_score) AS survey_count
FROM interactions
WHERE {where}
GROUP BY 1, 2 ORDER BY 1, 2"""

# Each agent of a call is one row: the first answered it (when it was answered at all), the
# later ones received it by transfer.
_AGENT_SQL = """
SELECT {bucket} AS bucket, agent,
       count(*) FILTER (WHERE {answering}) AS answered,
       avg({handle}) FILTER (WHERE {answering}) AS aht_seconds,
       count(*) FILTER (WHERE {answering} AND {transferred}) AS transferred,
       count(*) FILTER (WHERE nth > 1) AS received_by_transfer,
       avg(survey_score::float8) FILTER (WHERE {answering}) AS survey_average,
       count(survey_score) FILTER (WHERE {answering}) AS survey_count
FROM interactions CROSS JOIN LATERAL unnest(agents) WITH ORDINALITY AS handled (agent, nth)
WHERE {where}
GROUP BY 1, 2 ORDER BY 1, 2"""


class _Args(list):
    """Query arguments; ``add`` returns the value's placeholder, the only thing formatted into SQL."""

    def add(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"


def _scope(query: ReportQuery, args: _Args) -> dict[str, str]:
    """The bucket expression and the conditions both reports share."""
    start, stop = query.window()
    start_arg = args.add(start)
    conditions = ["queue IS NOT NULL", f"queued_at >= {start_arg}", f"queued_at < {args.add(stop)}"]
    if query.queue:
        conditions.append(f"queue = {args.add(query.queue)}")
    width = INTERVALS[query.interval][0]
    # Fixed widths count from local midnight, so 60m buckets start on the local hour even at a
    # +05:30 offset; a day is truncated in the zone, so a DST day is 23 or 25 hours long.
    bucket = (f"date_bin({args.add(width)}, queued_at, {start_arg})" if width
              else f"date_trunc('day', queued_at, {args.add(query.tz)})")
    return {"bucket": bucket, "where": " AND ".join(conditions)}


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class Reports:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def queue_report(self, query: ReportQuery) -> list[QueueRow]:
        args = _Args()
        scope = _scope(query, args)
        sql = _QUEUE_SQL.format(**scope, answered=_ANSWERED, transferred=_TRANSFERRED, handle=_HANDLE,
                                short=args.add(query.short_abandon_seconds),
                                threshold=args.add(query.service_level_seconds))
        zone = query.zone
        return [_queue_row(record, zone) for record in await self._pool.fetch(sql, *args)]

    async def agent_report(self, query: ReportQuery) -> list[AgentRow]:
        args = _Args()
        scope = _scope(query, args)
        if query.agent:
            scope["where"] += f" AND agent = {args.add(query.agent)}"
        sql = _AGENT_SQL.format(**scope, answering="(nth = 1 AND answered_at IS NOT NULL)",
                                transferred=_TRANSFERRED, handle=_HANDLE)
        zone = query.zone
        return [AgentRow(**dict(record) | {"bucket": record["bucket"].astimezone(zone)})
                for record in await self._pool.fetch(sql, *args)]


def _queue_row(record: asyncpg.Record, zone: zoneinfo.ZoneInfo) -> QueueRow:
    figures = dict(record) | {"bucket": record["bucket"].astimezone(zone)}
    within, answered = figures["answered_within_threshold"], figures["answered"]
    return QueueRow(
        **figures,
        service_level_answered=_ratio(within, answered),
        service_level_with_abandons=_ratio(within, answered + figures["abandoned"] - figures["short_abandoned"]))
