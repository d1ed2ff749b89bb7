"""The CRM store's connection pool, backed by the configured DSN or the embedded cluster."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from crm_bridge import migrations
from crm_bridge.embedded_pg import EmbeddedPostgres

log = structlog.get_logger(__name__)


class Database:
    def __init__(self, dsn: str, embedded: EmbeddedPostgres | None = None,
                 pool_min: int = 1, pool_max: int = 10) -> None:
        self._dsn = dsn
        self._embedded = embedded
        self._pool_size = (pool_min, pool_max)
        self.pool: asyncpg.Pool | None = None

    @classmethod
    def from_config(cls, config) -> Database:
        """The configured DSN, or a private cluster under <data_dir>/pg when there is none."""
        settings = config.database
        if settings.dsn:
            return cls(settings.dsn, None, settings.pool_min, settings.pool_max)
        embedded = EmbeddedPostgres(config.path("pg"), settings.embedded_port, settings.embedded_user)
        return cls("", embedded, settings.pool_min, settings.pool_max)

    @property
    def embedded(self) -> EmbeddedPostgres | None:
        return self._embedded

    async def open(self, migrate: bool = True) -> None:
        if self._embedded:
            # initdb and pg_ctl block; a thread keeps the loop (and AMI readers) responsive.
            self._dsn = await asyncio.to_thread(self._embedded.start)
        self.pool = await asyncpg.create_pool(
            self._dsn, min_size=self._pool_size[0], max_size=self._pool_size[1], timeout=10)
        if migrate:
            async with self.pool.acquire() as connection:
                await migrations.upgrade(connection)

    async def close(self) -> None:
        if self.pool:
            await self.pool.close()
            self.pool = None
        if self._embedded:
            await asyncio.to_thread(self._embedded.stop)

    async def check(self) -> tuple[bool, str]:
        """Readiness: a round trip to the server."""
        if self.pool is None:
            return False, "not connected"
        async with self.pool.acquire(timeout=2) as connection:
            await connection.fetchval("SELECT 1")
        return True, "ok"

