"""The interaction log: what a call record holds, and the queries CRM applications run on it.

Writing is crm_bridge.logger's job; it turns an InteractionRecord into a JSON document
(``to_document``) that both its spool file and its batched upsert read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg
import orjson

from crm_bridge.fields import Choice, Context, Integer, ListOf, Phone, Text, Timestamp, ValidationError, parse_fields
from crm_bridge.phone import PhoneNormalizer


class InteractionOutcome(StrEnum):
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"
    VOICEMAIL = "voicemail"
    CALLBACK_REQUESTED = "callback_requested"
    IVR_ONLY = "ivr_only"
    TRANSFERRED = "transferred"
    FAILED = "failed"
    LOST_DURING_OUTAGE = "lost_during_outage"


DIRECTIONS = ("in", "out", "internal")


@dataclass(frozen=True, slots=True)
class InteractionEvent:
    """One step of the timeline; ``detail`` must be JSON-serialisable."""

    at: datetime
    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    """Everything known about one call (SystemName + Linkedid); later versions replace earlier ones."""

    system_name: str
    linkedid: str
    started_at: datetime
    direction: str = "in"
    ani: str | None = None
    caller_name: str | None = None
    dnis: str | None = None
    service: str | None = None
    customer_id: int | None = None
    ivr_path: tuple[str, ...] = ()
    ivr_data: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None
    required_skills: tuple[str, ...] = ()
    priority: int = 0
    agents: tuple[str, ...] = ()
    queued_at: datetime | None = None
    offered_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_seconds: float | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    hold_seconds: float | None = None
    wrapup_seconds: float | None = None
    outcome: InteractionOutcome | None = None
    abandoned_position: int | None = None
    hangup_cause: int | None = None
    disposition_code: str | None = None
    disposition_notes: str | None = None
    survey_score: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[InteractionEvent, ...] = ()
    channel_type: str = "voice"


_PLAIN_FIELDS = tuple(f.name for f in fields(InteractionRecord) if f.name not in ("ivr_data", "data", "events"))


def to_document(record: InteractionRecord, revision: int, phones: PhoneNormalizer) -> dict[str, Any]:
    """The record as a dict orjson serialises as is (datetimes, tuples, enums), the format of the
    spool and of the batched upsert. On the writer's hot path, so no per-value conversion."""
    document = {name: getattr(record, name) for name in _PLAIN_FIELDS}
    document["ivr_data"] = dict(record.ivr_data)
    document["data"] = dict(record.data)
    customer_side = record.dnis if record.direction == "out" else record.ani
    document["phone_e164"] = phones.e164(customer_side) if record.direction != "internal" else None
    document["revision"] = revision
    document["events"] = [{"seq": seq, "at": event.at, "kind": event.kind, "detail": dict(event.detail)}
                          for seq, event in enumerate(record.events, start=1)]
    return document


# What a listing returns per interaction, in column order, with its JSON schema.
def _nullable(kind: str, **extra: Any) -> dict:
    return {"type": [kind, "null"], **extra}


_TIME = {"format": "date-time"}
INTERACTION_COLUMNS: dict[str, dict] = {
    "id": {"type": "integer"},
    "system_name": {"type": "string", "description": "Asterisk SystemName"},
    "linkedid": {"type": "string", "description": "Asterisk Linkedid: one call"},
    "direction": {"type": "string", "enum": list(DIRECTIONS)},
    "channel_type": {"type": "string", "enum": ["voice"]},
    "ani": _nullable("string"),
    "caller_name": _nullable("string"),
    "dnis": _nullable("string"),
    "phone_e164": _nullable("string", description="The customer's side: ANI inbound, dialed number outbound"),
    "service": _nullable("string", description="DNIS service label"),
    "customer_id": _nullable("integer"),
    "ivr_path": {"type": "array", "items": {"type": "string"}},
    "ivr_data": {"type": "object", "description": "Data collected by the IVR"},
    "queue": _nullable("string"),
    "required_skills": {"type": "array", "items": {"type": "string"}},
    "priority": {"type": "integer"},
    "agents": {"type": "array", "items": {"type": "string"}, "description": "Agent ids, first to last"},
    "started_at": {"type": "string", **_TIME},
    "queued_at": _nullable("string", **_TIME),
    "offered_at": _nullable("string", **_TIME),
    "answered_at": _nullable("string", **_TIME),
    "ended_at": _nullable("string", **_TIME),
    "wait_seconds": _nullable("number"),
    "ring_seconds": _nullable("number"),
    "talk_seconds": _nullable("number"),
    "hold_seconds": _nullable("number"),
    "wrapup_seconds": _nullable("number"),
    "outcome": _nullable("string", enum=[outcome.value for outcome in InteractionOutcome] + [None]),
    "abandoned_position": _nullable("integer", description="Queue position when the caller hung up"),
    "hangup_cause": _nullable("integer"),
    "disposition_code": _nullable("string"),
    "disposition_notes": _nullable("string"),
    "survey_score": _nullable("integer", minimum=0, maximum=10),
    "data": {"type": "object"},
}
# jsonb columns come back as JSON text: the API embeds it as is, the CSV export writes it as is.
JSON_COLUMNS = frozenset({"ivr_data", "data"})
EVENT_COLUMNS: dict[str, dict] = {
    "seq": {"type": "integer"},
    "at": {"type": "string", **_TIME},
    "kind": {"type": "string"},
    "detail": {"type": "object"},
}

INTERACTION_FILTERS = {
    "customer_id": Integer(1, 2**63 - 1),
    "phone": Phone(description="Any notation; matched on the normalised customer side"),
    "agent": Text(64, description="An agent id among the interaction's agents"),
    "queue": Text(128),
    "outcome": ListOf(Choice(tuple(outcome.value for outcome in InteractionOutcome)), len(InteractionOutcome),
                      description="One or more outcomes, separated by ';'"),
    "direction": Choice(DIRECTIONS),
    "from": Timestamp(description="Started at or after"),
    "to": Timestamp(description="Started before"),
}
# Each filter's condition; only "$n" placeholders are formatted in, never a value.
_FILTER_CONDITIONS = {
    "customer_id": "customer_id = ${}",
    "phone": "phone_e164 = ${}",
    "agent": "agents @> ARRAY[${}]::text[]",
    "queue": "queue = ${}",
    "outcome": "outcome = ANY(${}::text[])",
    "direction": "direction = ${}",
    "from": "started_at >= ${}",
    "to": "started_at < ${}",
}
# The only orders a listing offers: the keyset (started_at, id) in either direction.
SORTS = {"-started_at": ("DESC", "<"), "started_at": ("ASC", ">")}
PAGE_FIELDS = {
    "sort": Choice(tuple(SORTS), description="started_at ascending, or -started_at (default) descending"),
    "limit": Integer(1, 500, description="Items per page (default 50)"),
    "cursor": Text(200, description="next_cursor of the previous page"),
}
DEFAULT_SORT = "-started_at"
DEFAULT_LIMIT = 50
EXPORT_CHUNK_ROWS = 500

_SELECT = f"SELECT {', '.join(INTERACTION_COLUMNS)} FROM interactions"


@dataclass(frozen=True)
class Query:
    """A parsed listing request: filters, order, and where the page starts."""

    filters: dict[str, Any]
    sort: str = DEFAULT_SORT
    limit: int = DEFAULT_LIMIT
    after: tuple[datetime, int] | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


class InteractionRepository:
    def __init__(self, pool: asyncpg.Pool, phones: PhoneNormalizer) -> None:
        self._pool = pool
        self._phones = phones

    def parse_query(self, params: Mapping[str, str], *, paged: bool = True) -> Query:
        """A Query from query-string parameters; raises ValidationError per field."""
        spec = INTERACTION_FILTERS | PAGE_FIELDS if paged else INTERACTION_FILTERS | {"sort": PAGE_FIELDS["sort"]}
        values = parse_fields(spec, params, Context(self._phones, from_text=True))
        sort = values.pop("sort", DEFAULT_SORT)
        limit = values.pop("limit", DEFAULT_LIMIT)
        cursor = values.pop("cursor", None)
        return Query(values, sort, limit, _decode_cursor(cursor, sort) if cursor else None)

    async def page(self, query: Query) -> Page:
        sql, args = _listing_sql(query)
        rows = await self._pool.fetch(f"{sql} LIMIT ${len(args) + 1}", *args, query.limit + 1)
        items = [dict(row) for row in rows[:query.limit]]
        more = len(rows) > query.limit
        return Page(items, _encode_cursor(query.sort, items[-1]) if more else None)

    async def export(self, query: Query) -> AsyncIterator[list[dict[str, Any]]]:
        """Every matching interaction, in chunks, read through a server-side cursor."""
        sql, args = _listing_sql(query)
        async with self._pool.acquire() as connection, connection.transaction():
            chunk = []
            async for row in connection.cursor(sql, *args, prefetch=EXPORT_CHUNK_ROWS):
                chunk.append(dict(row))
                if len(chunk) == EXPORT_CHUNK_ROWS:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

    async def get(self, interaction_id: int) -> dict[str, Any] | None:
        """One interaction with its timeline (``timeline``: events in order)."""
        async with self._pool.acquire() as connection:
            row = await connection.fetchrow(f"{_SELECT} WHERE id = $1", interaction_id)
            if row is None:
                return None
            events = await connection.fetch(
                f"SELECT {', '.join(EVENT_COLUMNS)} FROM interaction_events "
                "WHERE interaction_id = $1 ORDER BY seq", interaction_id)
        return dict(row) | {"timeline": [dict(event) for event in events]}


def _listing_sql(query: Query) -> tuple[str, list[Any]]:
    conditions, args = [], []
    for name, value in query.filters.items():
        args.append(value)
        conditions.append(_FILTER_CONDITIONS[name].format(len(args)))
    direction, comparison = SORTS[query.sort]
    if query.after:
        args.extend(query.after)
        conditions.append(f"(started_at, id) {comparison} (${len(args) - 1}, ${len(args)})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"{_SELECT}{where} ORDER BY started_at {direction}, id {direction}", args


def _encode_cursor(sort: str, last: dict[str, Any]) -> str:
    raw = orjson.dumps([sort, last["started_at"].isoformat(), last["id"]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[datetime, int]:
    try:
        cursor_sort, started_at, last_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = (datetime.fromisoformat(started_at), int(last_id))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationError({"cursor": "not a cursor of this listing"}) from None
    if cursor_sort != sort:
        raise ValidationError({"cursor": f"was made for sort={cursor_sort}; ask again without it"})
    return position
