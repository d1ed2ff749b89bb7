"""The interaction writer: every call logged exactly once, in batches, through PostgreSQL outages.

``put()`` only appends to a bounded in-memory queue, so the event path that reports a call
never waits for the database. One task drains the queue in batches (``batch_size`` records,
or whatever arrived within ``flush_interval``) and writes each batch with one statement: an
upsert per (system_name, linkedid) that also appends the timeline and, for a closed call,
queues the webhook in the same transaction.

While PostgreSQL is unreachable, batches go to an fsync'd spool file instead and the database
is probed again with exponential backoff. Once it answers, the spool is replayed in order
before anything newer. Replays are safe to repeat: the upsert is idempotent, and a record
carries a revision so an older version never overwrites a newer one.

What the queue held when the process died is lost: durability starts when a batch reaches
PostgreSQL or the spool, at most ``flush_interval`` after ``put()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import structlog

from crm_bridge.interactions import InteractionRecord, to_document
from crm_bridge.phone import PhoneNormalizer
from crm_bridge.spool import Spool

log = structlog.get_logger(__name__)

# Column -> type, as read from the JSON documents; the order of the upsert's column list.
_DOCUMENT_COLUMNS = {
    "system_name": "text", "linkedid": "text", "revision": "bigint", "direction": "text",
    "channel_type": "text", "ani": "text", "caller_name": "text", "dnis": "text", "phone_e164": "text",
    "service": "text", "customer_id": "bigint", "ivr_path": "text[]", "ivr_data": "jsonb", "queue": "text",
    "required_skills": "text[]", "priority": "smallint", "agents": "text[]", "started_at": "timestamptz",
    "queued_at": "timestamptz", "offered_at": "timestamptz", "answered_at": "timestamptz",
    "ended_at": "timestamptz", "wait_seconds": "float8", "ring_seconds": "float8", "talk_seconds": "float8",
    "hold_seconds": "float8", "wrapup_seconds": "float8", "outcome": "text", "abandoned_position": "integer",
    "hangup_cause": "integer", "disposition_code": "text", "disposition_notes": "text",
    "survey_score": "smallint", "data": "jsonb",
}
_KEY = ("system_name", "linkedid")
# A customer id the caller gave is kept only if it still exists (a batch must not fail on a
# foreign key); without one, the call is linked to the customer owning its number, if only one does.
_CUSTOMER = """coalesce(
    (SELECT c.id FROM customers c WHERE c.id = r.customer_id),
    (SELECT min(p.customer_id) FROM customer_phones p WHERE p.e164 = r.phone_e164 HAVING count(*) = 1))"""
_EVENT_ID = "md5('interaction.closed:' || u.id)::uuid"

_UPSERT = f"""
WITH incoming AS (
    -- json, not jsonb: read once, it parses about twice as fast.
    SELECT * FROM json_to_recordset($1::json) AS r (
        {", ".join(f"{name} {kind}" for name, kind in _DOCUMENT_COLUMNS.items())}, events json)
), upserted AS (
    INSERT INTO interactions AS i ({", ".join(_DOCUMENT_COLUMNS)})
    SELECT {", ".join(_CUSTOMER if name == "customer_id" else f"r.{name}" for name in _DOCUMENT_COLUMNS)}
    FROM incoming r
    ON CONFLICT (system_name, linkedid) DO UPDATE SET
        {", ".join(f"{name} = EXCLUDED.{name}" for name in _DOCUMENT_COLUMNS if name not in _KEY)}
    WHERE i.revision <= EXCLUDED.revision
    RETURNING i.*
), timeline AS (
    INSERT INTO interaction_events (interaction_id, seq, at, kind, detail)
    SELECT u.id, e.seq, e.at, e.kind, coalesce(e.detail, '{{}}'::jsonb)
    FROM upserted u
    JOIN incoming r USING (system_name, linkedid)
    CROSS JOIN LATERAL json_to_recordset(r.events) AS e (seq integer, at timestamptz, kind text, detail jsonb)
    ON CONFLICT (interaction_id, seq) DO UPDATE SET at = EXCLUDED.at, kind = EXCLUDED.kind, detail = EXCLUDED.detail
)
INSERT INTO webhook_outbox (event_id, endpoint, event_type, payload)
SELECT {_EVENT_ID}, endpoint, 'interaction.closed',
       jsonb_build_object('id', {_EVENT_ID}, 'type', 'interaction.closed', 'interaction', to_jsonb(u) - 'revision')
FROM upserted u CROSS JOIN unnest($2::text[]) AS endpoint
WHERE u.ended_at IS NOT NULL
ON CONFLICT (event_id, endpoint) DO NOTHING
"""

# SQLSTATE classes meaning "the server is not there for us now", as opposed to "this data is wrong":
# connection exception, insufficient resources, operator intervention (shutdown), system error.
_UNAVAILABLE_CLASSES = frozenset({"08", "53", "57", "58"})


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means PostgreSQL is unreachable (retry later) rather than refusing the data."""
    if isinstance(error, (OSError, TimeoutError, asyncpg.InterfaceError)):
        return True
    return (getattr(error, "sqlstate", None) or "")[:2] in _UNAVAILABLE_CLASSES


@dataclass
class LoggerStats:
    written: int = 0       # records upserted into PostgreSQL (replays included)
    spooled: int = 0       # records written to the spool during an outage
    replayed: int = 0      # records read back from the spool and upserted
    rejected: int = 0      # records PostgreSQL refused (kept in the .rejected spool)
    dropped: int = 0       # records lost: queue full, or neither PostgreSQL nor the disk took them


class InteractionLogger:
    def __init__(self, pool: asyncpg.Pool, spool_path: Path, phones: PhoneNormalizer, *,
                 webhook_endpoints: Sequence[str] = (), batch_size: int = 500, flush_interval: float = 0.5,
                 queue_size: int = 100_000, retry_min: float = 0.5, retry_max: float = 30.0,
                 write_timeout: float = 10.0) -> None:
        self._pool = pool
        self._phones = phones
        self._webhook_endpoints = list(webhook_endpoints)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_range = (retry_min, retry_max)
        self._write_timeout = write_timeout
        self._queue: asyncio.Queue[tuple[int, InteractionRecord]] = asyncio.Queue(queue_size)
        self._spool = Spool(spool_path)
        self._rejects = Spool(spool_path.with_name(spool_path.stem + ".rejected.jsonl"))
        self._spool_pending = self._spool.pending()
        self._retry_delay = 0.0
        self._retry_at: float | None = None
        self._last_revision = 0
        self._closing = False
        self._task: asyncio.Task | None = None
        self.stats = LoggerStats()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="interaction-logger")

    def put(self, record: InteractionRecord) -> bool:
        """Queue a version of a call's record; False (and logged) when it had to be dropped."""
        if self._closing:
            raise RuntimeError("the interaction logger is closed")
        # Revisions order versions of one call: nanoseconds, forced strictly increasing.
        self._last_revision = max(time.time_ns(), self._last_revision + 1)
        try:
            self._queue.put_nowait((self._last_revision, record))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            log.error("interaction_log.dropped", reason="queue full", system=record.system_name,
                      linkedid=record.linkedid)
            return False
        return True

    async def close(self) -> None:
        """Write (or spool) everything queued, then stop."""
        self._closing = True
        if self._task:
            await self._task

    async def _run(self) -> None:
        await self._store([])  # first, replay what an earlier run left in the spool
        while not (self._closing and self._queue.empty()):
            batch = await self._collect()
            await self._store([to_document(record, revision, self._phones) for revision, record in batch])

    async def _collect(self) -> list[tuple[int, InteractionRecord]]:
        """Up to batch_size queued records, waiting at most flush_interval for them."""
        batch = []
        deadline = asyncio.get_running_loop().time() + self._flush_interval
        while len(batch) < self._batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if self._closing or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _store(self, documents: list[dict[str, Any]]) -> None:
        """Into PostgreSQL after any spooled records; into the spool when it is unreachable."""
        if self._database_due():
            try:
                await self._replay_spool()
                if documents:
                    await self._write(documents)
                self._database_back()
                return
            except Exception as error:
                if is_outage(error):
                    self._database_gone(error)
                else:
                    log.exception("interaction_log.batch_failed", records=len(documents))
        await self._spool_or_drop(documents)

    async def _spool_or_drop(self, documents: list[dict[str, Any]]) -> None:
        if not documents:
            return
        try:
            await asyncio.to_thread(self._spool.append, documents)
        except OSError as error:
            self.stats.dropped += len(documents)
            log.error("interaction_log.spool_failed", records=len(documents), error=str(error))
            return
        self._spool_pending = True
        self.stats.spooled += len(documents)

    async def _replay_spool(self) -> None:
        if not self._spool_pending:
            return
        batches = self._spool.batches(self._batch_size)
        replayed = 0
        try:
            while (documents := await asyncio.to_thread(next, batches, None)) is not None:
                await self._write(documents)
                replayed += len(documents)
        finally:
            batches.close()
        # Only now: a crash before this line replays the whole spool again, which is harmless.
        await asyncio.to_thread(self._spool.clear)
        self._spool_pending = False
        self.stats.replayed += replayed
        log.info("interaction_log.spool_replayed", records=replayed)

    async def _write(self, documents: list[dict[str, Any]]) -> None:
        latest = _latest_per_call(documents)
        try:
            await self._upsert(latest)
        except Exception as error:
            if is_outage(error):
                raise
            # One bad record must not hold back its batch: find it by writing them singly.
            for document in latest:
                await self._write_or_reject(document)
            return
        self.stats.written += len(latest)

    async def _write_or_reject(self, document: dict[str, Any]) -> None:
        try:
            await self._upsert([document])
        except Exception as error:
            if is_outage(error):
                raise
            self.stats.rejected += 1
            log.error("interaction_log.record_rejected", system=document.get("system_name"),
                      linkedid=document.get("linkedid"), error=str(error))
            await self._keep_rejected(document)
            return
        self.stats.written += 1

    async def _keep_rejected(self, document: dict[str, Any]) -> None:
        # Kept for a human to inspect; the batch goes on even when that fails.
        try:
            await asyncio.to_thread(self._rejects.append, [document])
        except OSError as error:
            log.error("interaction_log.reject_spool_failed", error=str(error))

    async def _upsert(self, documents: list[dict[str, Any]]) -> None:
        # default=str as in the spool: both must read a record the same way.
        payload = orjson.dumps(documents, default=str).decode()
        async with self._pool.acquire(timeout=self._write_timeout) as connection:
            await connection.execute(_UPSERT, payload, self._webhook_endpoints, timeout=self._write_timeout)

    def _database_due(self) -> bool:
        return self._retry_at is None or asyncio.get_running_loop().time() >= self._retry_at

    def _database_gone(self, error: BaseException) -> None:
        retry_min, retry_max = self._retry_range
        if self._retry_at is None:
            log.warning("interaction_log.database_unreachable", error=f"{type(error).__name__}: {error}",
                        spool=str(self._spool.path))
        self._retry_delay = min(retry_max, max(retry_min, self._retry_delay * 2))
        self._retry_at = asyncio.get_running_loop().time() + self._retry_delay

    def _database_back(self) -> None:
        if self._retry_at is not None:
            log.info("interaction_log.database_back")
        self._retry_delay = 0.0
        self._retry_at = None


def _latest_per_call(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One document per call, its highest revision: an upsert may touch a row only once."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for document in documents:
        key = (document["system_name"], document["linkedid"])
        if key not in latest or latest[key]["revision"] < document["revision"]:
            latest[key] = document
    return list(latest.values())
