"""Agents: who they are, their skills, and their login secret (kept as an argon2id hash only)."""

from __future__ import annotations

import asyncpg

from crm_bridge.hashing import hash_secret, verify_secret


class AgentRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def save(self, agent_id: str, name: str, skills: list[str]) -> None:
        await self._pool.execute(
            "INSERT INTO agents (id, name, skills) VALUES ($1, $2, $3) "
            "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, skills = EXCLUDED.skills",
            agent_id, name, skills)

    async def set_secret(self, agent_id: str, secret: str) -> bool:
        status = await self._pool.execute(
            "UPDATE agents SET secret_hash = $2 WHERE id = $1", agent_id, await hash_secret(secret))
        return status == "UPDATE 1"

    async def verify_secret(self, agent_id: str, secret: str) -> bool:
        """Whether an active agent with this id has this secret."""
        stored = await self._pool.fetchval(
            "SELECT secret_hash FROM agents WHERE id = $1 AND active", agent_id)
        return stored is not None and await verify_secret(stored, secret)
