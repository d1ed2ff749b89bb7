"""A scratch PostgreSQL schema for the CRM benchmarks.

With $CTI_BENCH_DSN the benchmark runs on that server, inside a schema of its own that it drops
at the end (nothing else in that database is touched); without it, a private EmbeddedPostgres
in a temporary folder, removed afterwards. Either way the CRM migrations are applied first.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_bridge import migrations  # noqa: E402
from crm_bridge.embedded_pg import EmbeddedPostgres  # noqa: E402


@asynccontextmanager
async def scratch_pool(pool_size: int = 4) -> AsyncIterator[asyncpg.Pool]:
    async with _server() as dsn:
        schema = f"cti_bench_{os.getpid()}"
        admin = await asyncpg.connect(dsn)
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size,
                                             server_settings={"search_path": schema})
            async with pool.acquire() as connection:
                await migrations.upgrade(connection)
            try:
                yield pool
            finally:
                await pool.close()
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            await admin.close()


@asynccontextmanager
async def _server() -> AsyncIterator[str]:
    if os.environ.get("CTI_BENCH_DSN"):
        yield os.environ["CTI_BENCH_DSN"]
        return
    base = Path(tempfile.mkdtemp(prefix="cti-bench-pg-"))
    base.chmod(0o755)  # as root, the cluster runs as an unprivileged user who must enter it
    cluster = EmbeddedPostgres(base / "pg", _free_port())
    try:
        yield await asyncio.to_thread(cluster.start)
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(base, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]
