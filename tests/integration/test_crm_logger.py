import asyncio
import dataclasses
import shutil

import pytest

from crm_bridge.database import Database
from crm_bridge.embedded_pg import EmbeddedPostgres
from crm_bridge.interactions import InteractionOutcome, to_document
from crm_bridge.logger import InteractionLogger
from crm_bridge.spool import Spool
from tests.conftest import _scratch_dir, free_tcp_port
from tests.integration.crm_support import PHONES, database_fixture, eventually, sample_call  # noqa: F401

FAST = {"batch_size": 50, "flush_interval": 0.02, "retry_min": 0.05, "retry_max": 0.2, "write_timeout": 5.0}


async def counts(pool) -> tuple[int, int, int]:
    row = await pool.fetchrow(
        "SELECT count(*) AS rows, count(DISTINCT (system_name, linkedid)) AS calls, "
        "(SELECT count(*) FROM interaction_events) AS events FROM interactions")
    return row["rows"], row["calls"], row["events"]


async def test_each_call_is_one_row_with_its_timeline_and_customer(database, tmp_path):
    customer_id = await database.pool.fetchval("INSERT INTO customers (name) VALUES ('José Müller') RETURNING id")
    await database.pool.execute("INSERT INTO customer_phones VALUES ('+49301234567', $1, 1)", customer_id)
    logger = InteractionLogger(database.pool, tmp_path / "spool.jsonl", PHONES, **FAST)
    await logger.start()
    logger.put(sample_call(1, closed=False))
    logger.put(sample_call(1))
    logger.put(sample_call(2, ani="+1 212 555 0142"))
    await logger.close()
    assert await counts(database.pool) == (2, 2, 6)
    row = await database.pool.fetchrow("SELECT * FROM interactions WHERE linkedid = '1700000000.1'")
    assert (row["phone_e164"], row["customer_id"], row["outcome"]) == ("+49301234567", customer_id, "completed")
    assert row["agents"] == ["a100"] and row["required_skills"] == ["german"] and row["talk_seconds"] == 70.0
    other = await database.pool.fetchrow("SELECT * FROM interactions WHERE linkedid = '1700000000.2'")
    assert other["phone_e164"] == "+12125550142" and other["customer_id"] is None


async def test_an_older_version_never_overwrites_a_newer_one(database, tmp_path):
    spool_path = tmp_path / "spool.jsonl"
    logger = InteractionLogger(database.pool, spool_path, PHONES, **FAST)
    await logger.start()
    logger.put(sample_call(1))
    await logger.close()
    # A spool left by an outage can hold an older version of a call written since.
    Spool(spool_path).append([to_document(sample_call(1, closed=False), revision=1, phones=PHONES)])
    replaying = InteractionLogger(database.pool, spool_path, PHONES, **FAST)
    await replaying.start()
    await replaying.close()
    assert replaying.stats.replayed == 1
    assert await database.pool.fetchval("SELECT outcome FROM interactions") == "completed"


async def test_a_record_postgres_refuses_is_set_aside_and_the_batch_goes_on(database, tmp_path):
    logger = InteractionLogger(database.pool, tmp_path / "spool.jsonl", PHONES, **FAST)
    await logger.start()
    bad = dataclasses.replace(sample_call(2), survey_score=99)  # the schema allows 0-10
    for record in (sample_call(1), bad, sample_call(3)):
        logger.put(record)
    await logger.close()
    assert await counts(database.pool) == (2, 2, 6)
    assert logger.stats.rejected == 1
    rejected = list(Spool(tmp_path / "spool.rejected.jsonl").batches(10))
    assert rejected[0][0]["linkedid"] == "1700000000.2"


async def test_a_full_queue_drops_and_counts_instead_of_blocking(database, tmp_path):
    logger = InteractionLogger(database.pool, tmp_path / "spool.jsonl", PHONES, queue_size=2, **FAST)
    accepted = [logger.put(sample_call(n)) for n in range(3)]  # the writer is not started: nothing drains
    assert accepted == [True, True, False] and logger.stats.dropped == 1
    await logger.start()
    await logger.close()
    assert (await counts(database.pool))[0] == 2


async def test_a_torn_spool_after_a_crash_is_replayed_without_its_torn_line(database, tmp_path):
    spool_path = tmp_path / "spool.jsonl"
    Spool(spool_path).append([to_document(sample_call(n), n, PHONES) for n in range(1, 4)])
    with open(spool_path, "ab") as spool:
        spool.write(b'{"crc32":"0badc0de","record":{"system_name":"pbx1","linked')  # the crash
    logger = InteractionLogger(database.pool, spool_path, PHONES, **FAST)
    await logger.start()
    await logger.close()
    assert await counts(database.pool) == (3, 3, 9)
    assert spool_path.stat().st_size == 0


@pytest.fixture
async def stoppable_postgres():
    """A cluster of this test's own, so it can be stopped and started under the logger."""
    base = _scratch_dir("cti-test-crm-outage-")
    cluster = EmbeddedPostgres(base / "pg", free_tcp_port())
    dsn = await asyncio.to_thread(cluster.start)
    yield cluster, dsn, base
    await asyncio.to_thread(cluster.stop)
    shutil.rmtree(base, ignore_errors=True)


async def test_calls_during_a_postgres_outage_are_spooled_and_replayed_exactly_once(stoppable_postgres):
    cluster, dsn, base = stoppable_postgres
    database = Database(dsn, pool_max=4)
    await database.open()
    spool_dir = _scratch_dir("cti-test-crm-spool-")
    logger = InteractionLogger(database.pool, spool_dir / "interactions.jsonl", PHONES,
                               webhook_endpoints=["crm"], **FAST)
    await logger.start()
    try:
        await put_calls(logger, range(0, 300))
        await eventually(lambda: logger.stats.written == 300, "the calls before the outage")

        await asyncio.to_thread(cluster.stop)
        await put_calls(logger, range(300, 600))
        # Versions of calls already in PostgreSQL arrive during the outage too.
        await put_calls(logger, range(0, 50), outcome=InteractionOutcome.TRANSFERRED)
        await eventually(lambda: logger.stats.spooled >= 350, "the outage's calls in the spool")

        await asyncio.to_thread(cluster.start)
        await put_calls(logger, range(600, 900))
        await logger.close()

        assert await counts(database.pool) == (900, 900, 2700)
        assert await database.pool.fetchval(
            "SELECT count(*) FROM interactions WHERE outcome = 'transferred'") == 50
        assert await database.pool.fetchval("SELECT count(*) FROM webhook_outbox") == 900
        assert logger.stats.replayed >= 350 and logger.stats.dropped == 0
        assert not Spool(spool_dir / "interactions.jsonl").pending()
    finally:
        await database.close()
        shutil.rmtree(spool_dir, ignore_errors=True)


async def put_calls(logger: InteractionLogger, numbers: range, **overrides) -> None:
    for number in numbers:
        assert logger.put(sample_call(number, **overrides))
        if number % 25 == 0:
            await asyncio.sleep(0.01)  # spread the calls over several batches, as real traffic is
