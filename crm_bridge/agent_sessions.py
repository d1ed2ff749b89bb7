"""Agent desktop sessions and the wrap-up catalogue, in PostgreSQL.

A session row holds the SHA-256 of its bearer token (a token is 256 random bits, so a fast
hash is enough to make a stolen table useless; argon2 is for human-chosen passwords), and the
desk's state to restore after a daemon restart.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson


class AgentSessionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def replace(self, agent_id: str, token_sha256: bytes) -> bool:
        """Make this token the agent's only one; True when it replaced an earlier session."""
        replaced = await self._pool.fetchval(
            "WITH old AS (SELECT 1 FROM agent_sessions WHERE agent_id = $1) "
            "INSERT INTO agent_sessions AS s (agent_id, token_sha256) VALUES ($1, $2) "
            "ON CONFLICT (agent_id) DO UPDATE SET token_sha256 = EXCLUDED.token_sha256, started_at = now() "
            "RETURNING EXISTS (SELECT 1 FROM old)", agent_id, token_sha256)
        return bool(replaced)

    async def agent_for(self, token_sha256: bytes) -> str | None:
        return await self._pool.fetchval("SELECT agent_id FROM agent_sessions WHERE token_sha256 = $1", token_sha256)

    async def remove(self, agent_id: str) -> None:
        await self._pool.execute("DELETE FROM agent_sessions WHERE agent_id = $1", agent_id)

    async def save_desk(self, agent_id: str, desk: dict[str, Any]) -> None:
        await self._pool.execute("UPDATE agent_sessions SET desk = $2::jsonb WHERE agent_id = $1",
                                 agent_id, orjson.dumps(desk).decode())

    async def desk(self, agent_id: str) -> dict[str, Any]:
        saved = await self._pool.fetchval("SELECT desk::text FROM agent_sessions WHERE agent_id = $1", agent_id)
        return orjson.loads(saved) if saved else {}


async def active_dispositions(pool: asyncpg.Pool) -> list[dict[str, str]]:
    """The wrap-up catalogue (table dispositions), in label order."""
    rows = await pool.fetch("SELECT code, label FROM dispositions WHERE active ORDER BY label, code")
    return [dict(row) for row in rows]
