"""Interaction logging throughput: our batched writer against one INSERT per call.

    .venv/bin/python bench/interaction_log.py [--rows 50000] [--single-rows 3000]

Both write the same closed-call records (no timeline, no webhooks: the comparison is about how
rows reach the table) with durability on: synchronous_commit on, fsync on, so each commit waits
for the WAL to reach the disk. The peer is what a straightforward logger does: one autocommit
``INSERT ... ON CONFLICT DO UPDATE`` per call. Ours is InteractionLogger: put() into its queue,
batches of 500 upserted by one statement each; the clock stops when close() has returned,
i.e. when every row is committed. Reported: rows/s of each and their ratio.
See bench/bench_pg.py for where PostgreSQL comes from ($CTI_BENCH_DSN or a private cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvloop
from bench_pg import scratch_pool  # first: it puts the repository on sys.path

import orjson

from cti import logs
from crm_bridge.interactions import InteractionOutcome, InteractionRecord
from crm_bridge.logger import InteractionLogger
from crm_bridge.phone import PhoneNormalizer

PHONES = PhoneNormalizer("DE")
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
# The peer writes the columns our writer fills for these records, with plain parameters.
_COLUMNS = ["system_name", "linkedid", "revision", "direction", "channel_type", "ani", "caller_name", "dnis",
            "phone_e164", "service", "ivr_path", "ivr_data", "queue", "required_skills", "priority", "agents",
            "started_at", "queued_at", "answered_at", "ended_at", "wait_seconds", "talk_seconds", "outcome", "data"]
_JSONB = frozenset({"ivr_data", "data"})
_SINGLE_INSERT = (
    f"INSERT INTO interactions ({', '.join(_COLUMNS)}) VALUES "
    f"({', '.join(f'${n}' for n in range(1, len(_COLUMNS) + 1))}) "
    "ON CONFLICT (system_name, linkedid) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in _COLUMNS[2:]))


def closed_calls(count: int, system: str) -> list[InteractionRecord]:
    calls = []
    for n in range(count):
        started = T0 + timedelta(seconds=n)
        calls.append(InteractionRecord(
            system_name=system, linkedid=f"1700000000.{n}", started_at=started, ani=f"030 {1000000 + n}",
            caller_name="José Müller", dnis="100", service="sales", ivr_path=("main", "1"),
            ivr_data={"account": f"A-{n}"}, queue="sales", required_skills=("german",), priority=1,
            agents=("a100",), queued_at=started + timedelta(seconds=5), answered_at=started + timedelta(seconds=20),
            ended_at=started + timedelta(seconds=90), wait_seconds=15.0, talk_seconds=70.0,
            outcome=InteractionOutcome.COMPLETED))
    return calls


def peer_values(record: InteractionRecord, revision: int) -> list:
    computed = {"revision": revision, "phone_e164": PHONES.e164(record.ani)}
    values = []
    for name in _COLUMNS:
        value = computed[name] if name in computed else getattr(record, name)
        values.append(orjson.dumps(value).decode() if name in _JSONB else
                      list(value) if isinstance(value, tuple) else value)
    return values


async def single_inserts(pool, calls: list[InteractionRecord]) -> float:
    started = time.perf_counter()
    async with pool.acquire() as connection:
        for revision, record in enumerate(calls, start=1):
            await connection.execute(_SINGLE_INSERT, *peer_values(record, revision))
    return len(calls) / (time.perf_counter() - started)


async def batched_writer(pool, calls: list[InteractionRecord]) -> float:
    spool_dir = Path(tempfile.mkdtemp(prefix="cti-bench-spool-"))
    logger = InteractionLogger(pool, spool_dir / "interactions.jsonl", PHONES)
    started = time.perf_counter()
    await logger.start()
    for number, record in enumerate(calls):
        logger.put(record)
        if number % 1000 == 0:
            await asyncio.sleep(0)  # as the AMI reader would: the writer runs between events
    await logger.close()
    elapsed = time.perf_counter() - started
    shutil.rmtree(spool_dir, ignore_errors=True)
    assert logger.stats.written == len(calls) and logger.stats.spooled == 0, logger.stats
    return len(calls) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--single-rows", type=int, default=3_000)
    args = parser.parse_args()
    logs.configure("console", "warning")
    async with scratch_pool(pool_size=2) as pool:
        settings = {name: await pool.fetchval(f"SHOW {name}") for name in ("synchronous_commit", "fsync")}
        assert settings == {"synchronous_commit": "on", "fsync": "on"}, settings
        single = await single_inserts(pool, closed_calls(args.single_rows, "peer"))
        batched = await batched_writer(pool, closed_calls(args.rows, "ours"))
        stored = await pool.fetchval("SELECT count(*) FROM interactions WHERE system_name = 'ours'")
        assert stored == args.rows, stored
    print(f"durability: {settings}")
    print(f"one INSERT per call: {single:.0f} rows/s ({args.single_rows} rows)")
    print(f"InteractionLogger:   {batched:.0f} rows/s ({args.rows} rows)")
    print(f"interaction_log batched_rows_per_s={batched:.0f} ratio_vs_single_insert={batched / single:.1f}")


if __name__ == "__main__":
    uvloop.run(main())
