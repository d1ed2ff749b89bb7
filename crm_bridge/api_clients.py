"""API clients (CRM applications) and their bearer tokens, kept as argon2id hashes only.

A token reads ``cti_<token_id>_<secret>``. The token id is stored in clear and indexed, so a
request finds its one candidate row directly and verifies a single hash: no scan, and an
unknown id costs no hashing at all.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

import asyncpg
import structlog

from crm_bridge.principals import Principal
from crm_bridge.hashing import hash_secret, verify_secret

log = structlog.get_logger(__name__)

ROLES = ("crm", "supervisor", "operator")
_PREFIX = "cti"
_TOKEN_ID_BYTES = 9  # 12 url-safe characters: enough to be unique, not a secret
_SECRET_BYTES = 32


async def create_client(pool: asyncpg.Pool, name: str, role: str) -> str:
    """Register a client and return its token. The token is shown this once and never stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    # token_urlsafe may contain "_", so the id is hex-like (no "_") and the secret comes last.
    token_id = secrets.token_hex(_TOKEN_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    await pool.execute(
        "INSERT INTO api_clients (name, role, token_id, token_hash) VALUES ($1, $2, $3, $4)",
        name, role, token_id, await hash_secret(secret))
    log.info("api_clients.created", client=name, role=role, token_id=token_id)
    return f"{_PREFIX}_{token_id}_{secret}"


async def revoke_client(pool: asyncpg.Pool, name: str) -> bool:
    status = await pool.execute(
        "UPDATE api_clients SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name)
    log.info("api_clients.revoked", client=name, found=status == "UPDATE 1")
    return status == "UPDATE 1"


class DatabaseTokens:
    """Authenticator backed by the api_clients table.

    An argon2 verification costs about 0.1 s of CPU, too much for every request of a busy CRM
    application, so a verified token is remembered for ``cache_ttl`` seconds under its SHA-256
    (never in clear). A revocation therefore takes effect within ``cache_ttl``.
    """

    def __init__(self, pool: asyncpg.Pool, cache_ttl: float = 60.0, cache_size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pool = pool
        self._cache_ttl = cache_ttl
        self._cache_size = cache_size
        self._clock = clock
        self._verified: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    async def authenticate(self, token: str) -> Principal | None:
        cache_key = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(cache_key)
        if cached and cached[1] > self._clock():
            return cached[0]
        principal = await self._verify(token)
        if principal:
            self._remember(cache_key, principal)
        return principal

    async def _verify(self, token: str) -> Principal | None:
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != _PREFIX or not token_id or not secret:
            return None
        row = await self._pool.fetchrow(
            "SELECT name, role, token_hash FROM api_clients WHERE token_id = $1 AND revoked_at IS NULL",
            token_id)
        if row is None or not await verify_secret(row["token_hash"], secret):
            return None
        return Principal(row["name"], row["role"])

    def _remember(self, cache_key: bytes, principal: Principal) -> None:
        self._verified[cache_key] = (principal, self._clock() + self._cache_ttl)
        self._verified.move_to_end(cache_key)
        while len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
