"""Plain SQL migrations, applied in order and recorded in schema_migrations.

Files are crm_bridge/migrations/NNNN_name.sql. Each runs in its own transaction under an
advisory lock, so two daemons starting together cannot apply one twice. A changed file that
was already applied is reported, never re-run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x4354490001  # arbitrary, stable: "CTI" + 1

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    migration: Migration
    applied_at: str | None
    changed_since_applied: bool


def available() -> list[Migration]:
    found = []
    for entry in resources.files("crm_bridge").joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def status(connection: asyncpg.Connection) -> list[MigrationState]:
    await connection.execute(_BOOKKEEPING)
    rows = await connection.fetch("SELECT version, checksum, applied_at FROM schema_migrations")
    applied = {row["version"]: row for row in rows}
    states = []
    for migration in available():
        row = applied.get(migration.version)
        states.append(MigrationState(
            migration,
            applied_at=row["applied_at"].isoformat() if row else None,
            changed_since_applied=bool(row) and row["checksum"] != migration.checksum))
    return states


async def upgrade(connection: asyncpg.Connection) -> list[Migration]:
    """Apply every pending migration; returns those applied now."""
    await connection.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        pending = [s.migration for s in await status(connection) if s.applied_at is None]
        for migration in pending:
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version, migration.name, migration.checksum)
            log.info("db.migration_applied", version=migration.version, name=migration.name)
        return pending
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
