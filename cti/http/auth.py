"""Bearer-token authentication and role checks for every HTTP and WebSocket endpoint."""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from cti.http.throttle import LoginThrottle
from crm_bridge.principals import Principal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None: ...


class StaticTokens:
    """Tokens configured at start-up (the operator token); compared in constant time."""

    def __init__(self, tokens: dict[str, Principal]) -> None:
        self._tokens = tokens

    async def authenticate(self, token: str) -> Principal | None:
        for known, principal in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return principal
        return None


class FirstMatch:
    """Several token sources (the operator's static token, API clients in the database)."""

    def __init__(self, *sources: Authenticator) -> None:
        self._sources = sources

    async def authenticate(self, token: str) -> Principal | None:
        for source in self._sources:
            if principal := await source.authenticate(token):
                return principal
        return None


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
# Bad bearer tokens per address: a token of a known API client costs an argon2 verification.
TOKEN_THROTTLE = web.AppKey("token_throttle", LoginThrottle)
PRINCIPAL = web.RequestKey("principal", Principal)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Browsers cannot set headers on a WebSocket handshake.
    return request.query.get("token") if request.headers.get("Upgrade", "").lower() == "websocket" else None


async def authorize(request: web.Request, *roles: str) -> Principal:
    """The request's principal (bearer token, or ?token= on a WebSocket handshake): 401 without a
    valid token, 429 while its address has sent too many invalid ones (TOKEN_THROTTLE), 403 when
    its role is not one of ``roles``."""
    token = bearer_token(request)
    address, throttle = request.remote or "?", request.app[TOKEN_THROTTLE]
    if token and (wait := throttle.retry_after(address)):
        raise too_many_tries("too many invalid tokens from this address", wait)
    principal = await request.app[AUTHENTICATOR].authenticate(token) if token else None
    if principal is None:
        if token:
            throttle.failed(address)
        raise web.HTTPUnauthorized(
            text='{"error": "missing or invalid bearer token"}', content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="cti"'})
    if principal.role not in roles:
        raise web.HTTPForbidden(
            text=f'{{"error": "role {principal.role} may not use this endpoint"}}',
            content_type="application/json")
    request[PRINCIPAL] = principal
    return principal


def too_many_tries(reason: str, seconds: float) -> web.HTTPTooManyRequests:
    """429 for a throttled try (throttle.py), saying when to come back."""
    wait = math.ceil(seconds)
    return web.HTTPTooManyRequests(text=json.dumps({"error": f"{reason}: try again in {wait} s"}),
                                   content_type="application/json", headers={"Retry-After": str(wait)})


def requires(*roles: str) -> Callable[[Handler], Handler]:
    """Handler decorator: ``authorize`` with these roles before the handler runs."""

    def decorate(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            await authorize(request, *roles)
            return await handler(request)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    return decorate
