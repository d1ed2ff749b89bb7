"""Secrets at rest: argon2id hashes only, for agents' passwords and API clients' tokens.

Hashing and verifying cost tens of milliseconds of CPU by design, so both run in a worker
thread: the event loop keeps serving calls meanwhile.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults follow RFC 9106's low-memory profile (argon2id, 64 MiB, 3 passes).
_HASHER = PasswordHasher()


async def hash_secret(secret: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, secret)


async def verify_secret(stored_hash: str, secret: str) -> bool:
    return await asyncio.to_thread(_verify, stored_hash, secret)


def _verify(stored_hash: str, secret: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return False
