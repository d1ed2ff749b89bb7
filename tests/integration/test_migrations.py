import asyncpg

from crm_bridge import migrations
from crm_bridge.database import Database


async def test_upgrade_applies_every_file_once(db_dsn):
    connection = await asyncpg.connect(db_dsn)
    try:
        applied = await migrations.upgrade(connection)
        assert [m.version for m in applied] == [m.version for m in migrations.available()]
        assert await migrations.upgrade(connection) == []
        states = await migrations.status(connection)
        assert all(s.applied_at and not s.changed_since_applied for s in states)
        columns = {r["column_name"] for r in await connection.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'interactions'")}
        assert {"system_name", "linkedid", "ani", "dnis", "outcome"} <= columns
    finally:
        await connection.close()


async def test_status_before_upgrade_lists_pending(db_dsn):
    connection = await asyncpg.connect(db_dsn)
    try:
        states = await migrations.status(connection)
        assert states and all(s.applied_at is None for s in states)
    finally:
        await connection.close()


async def test_a_changed_file_is_reported_not_rerun(db_dsn):
    connection = await asyncpg.connect(db_dsn)
    try:
        await migrations.upgrade(connection)
        await connection.execute("UPDATE schema_migrations SET checksum = 'other' WHERE version = 1")
        states = await migrations.status(connection)
        assert states[0].changed_since_applied
        assert await migrations.upgrade(connection) == []
    finally:
        await connection.close()


async def test_interactions_are_unique_per_system_and_linkedid(db_dsn):
    connection = await asyncpg.connect(db_dsn)
    try:
        await migrations.upgrade(connection)
        insert = ("INSERT INTO interactions (system_name, linkedid, started_at) VALUES ($1, $2, now()) "
                  "ON CONFLICT (system_name, linkedid) DO NOTHING")
        await connection.execute(insert, "pbx1", "1700000000.1")
        await connection.execute(insert, "pbx1", "1700000000.1")
        await connection.execute(insert, "pbx2", "1700000000.1")
        assert await connection.fetchval("SELECT count(*) FROM interactions") == 2
    finally:
        await connection.close()


async def test_a_new_store_has_a_starting_wrap_up_catalogue(db_dsn):
    database = Database(db_dsn)
    await database.open()
    try:
        codes = {row["code"] for row in await database.pool.fetch("SELECT code FROM dispositions WHERE active")}
        assert {"resolved", "follow_up", "escalated"} <= codes
    finally:
        await database.close()
