"""DNIS services: the number a caller dialed names what they want ("sales", "support")."""

from __future__ import annotations

import asyncpg

from crm_bridge.phone import PhoneNormalizer


class DnisDirectory:
    def __init__(self, pool: asyncpg.Pool, phones: PhoneNormalizer) -> None:
        self._pool = pool
        self._phones = phones

    async def assign(self, number: str, service: str) -> None:
        await self._pool.execute(
            "INSERT INTO dnis (number, service) VALUES ($1, $2) "
            "ON CONFLICT (number) DO UPDATE SET service = EXCLUDED.service",
            self._key(number), service)

    async def service_for(self, dialed: str) -> str | None:
        """The service label of a dialed number, written as a public number or an internal one."""
        return await self._pool.fetchval("SELECT service FROM dnis WHERE number = $1", self._key(dialed))

    def _key(self, number: str) -> str:
        # Public numbers are kept in E.164 so any notation finds them; short internal DNIS
        # (a dialplan extension such as "100") are kept as written.
        return self._phones.e164(number) or number.strip()
