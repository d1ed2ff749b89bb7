"""Agent logins: a password gives a bearer token, one token (one desktop) per agent.

Tokens read ``agt_<43 url-safe characters>``. The store keeps their SHA-256 only, and so does
the in-memory cache that spares the database a lookup per request. A second login replaces the
agent's token: the first desktop's token stops working at once (the desks tell that desktop
why). Sessions live in PostgreSQL, so a desktop's token survives a daemon restart.

``AgentSessions`` is an authenticator (``cti.http.auth.Authenticator``): put it in the app's
FirstMatch; it answers ``Principal(agent_id, "agent")``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from crm_bridge.principals import Principal

TOKEN_PREFIX = "agt_"
AGENT_ROLE = "agent"


class SessionStore(Protocol):
    async def replace(self, agent_id: str, token_sha256: bytes) -> bool: ...
    async def agent_for(self, token_sha256: bytes) -> str | None: ...
    async def remove(self, agent_id: str) -> None: ...
    async def save_desk(self, agent_id: str, desk: dict[str, Any]) -> None: ...
    async def desk(self, agent_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Login:
    token: str = ""
    replaced: bool = False  # another desktop was logged in as this agent and is now out


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AgentSessions:
    def __init__(self, store: SessionStore, verify_secret: Callable[[str, str], Awaitable[bool]],
                 is_agent: Callable[[str], bool]) -> None:
        self.store = store
        self._verify_secret = verify_secret
        self._is_agent = is_agent
        self._agent_by_digest: dict[bytes, str] = {}
        self._digest_by_agent: dict[str, bytes] = {}

    async def login(self, agent_id: str, secret: str) -> Login | None:
        """A new token for an ACD agent whose password matches; None otherwise (no reason given)."""
        if not self._is_agent(agent_id) or not await self._verify_secret(agent_id, secret):
            return None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = token_digest(token)
        replaced = await self.store.replace(agent_id, digest)
        self._forget(agent_id)
        self._remember(agent_id, digest)
        return Login(token, replaced)

    async def logout(self, agent_id: str) -> None:
        self._forget(agent_id)
        await self.store.remove(agent_id)

    async def authenticate(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX):
            return None  # another source's token: no lookup
        digest = token_digest(token)
        agent_id = self._agent_by_digest.get(digest)
        if agent_id is None:
            agent_id = await self.store.agent_for(digest)
            if agent_id is None or not self._is_agent(agent_id):
                return None
            self._forget(agent_id)
            self._remember(agent_id, digest)
        return Principal(agent_id, AGENT_ROLE)

    def _remember(self, agent_id: str, digest: bytes) -> None:
        self._agent_by_digest[digest] = agent_id
        self._digest_by_agent[agent_id] = digest

    def _forget(self, agent_id: str) -> None:
        digest = self._digest_by_agent.pop(agent_id, None)
        if digest is not None:
            self._agent_by_digest.pop(digest, None)
