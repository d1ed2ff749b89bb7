"""An external CRM asked over HTTP, merged with our own record into a screen-pop.

The agent's screen must pop when the call rings, whoever else is slow: the external lookup
runs beside ours under a short timeout, and when it is late or failing the screen-pop comes
with our record alone and says that the external part is missing. Answers are cached for a
while, so a caller who rings again does not cost another request.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from crm_bridge.customers import CustomerRepository
from crm_bridge.phone import PhoneNormalizer

log = structlog.get_logger(__name__)

# Statuses of the external part of a screen-pop; only answers are cached, never failures.
OK, NOT_FOUND, TIMEOUT, UNAVAILABLE, NOT_ASKED = "ok", "not_found", "timeout", "unavailable", "not_asked"
_CACHED_STATUSES = frozenset({OK, NOT_FOUND})


@dataclass(frozen=True)
class ExternalAnswer:
    status: str
    fields: dict[str, Any] = field(default_factory=dict)


class ExternalCrm:
    """GET ``url_template`` (placeholders ``{e164}`` and ``{digits}``) and read a JSON object.

    A JSON list answers with its first object; ``field_map`` (external name -> screen-pop name)
    picks and renames fields, else every top-level field is kept.
    """

    def __init__(self, session: aiohttp.ClientSession, url_template: str, *, timeout: float = 1.0,
                 cache_ttl: float = 300.0, cache_size: int = 10_000, field_map: Mapping[str, str] | None = None,
                 headers: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        _url_for(url_template, "+10000000000")  # a bad template fails at start-up, not on a call
        self._session = session
        self._url_template = url_template
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._cache_ttl = cache_ttl
        self._cache_size = cache_size
        self._field_map = dict(field_map) if field_map else None
        self._headers = dict(headers or {})  # may carry the external CRM's API key: never logged
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, ExternalAnswer]] = OrderedDict()

    async def lookup(self, e164: str) -> ExternalAnswer:
        """Never raises: a slow or failing CRM is an answer with status timeout or unavailable."""
        cached = self._cache.get(e164)
        if cached and cached[0] > self._clock():
            return cached[1]
        answer = await self._ask(e164)
        if answer.status in _CACHED_STATUSES:
            self._cache[e164] = (self._clock() + self._cache_ttl, answer)
            self._cache.move_to_end(e164)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return answer

    async def _ask(self, e164: str) -> ExternalAnswer:
        url = _url_for(self._url_template, e164)
        try:
            async with self._session.get(url, headers=self._headers, timeout=self._timeout) as response:
                if response.status == 404:
                    return ExternalAnswer(NOT_FOUND)
                response.raise_for_status()
                return self._answer(await response.json(content_type=None))
        except TimeoutError:
            log.warning("external_crm.timeout", timeout_s=self._timeout.total)
            return ExternalAnswer(TIMEOUT)
        except (aiohttp.ClientError, ValueError) as error:
            log.warning("external_crm.unavailable", error=f"{type(error).__name__}: {error}")
            return ExternalAnswer(UNAVAILABLE)

    def _answer(self, body: Any) -> ExternalAnswer:
        if isinstance(body, list):
            body = body[0] if body else None
        if not isinstance(body, dict):
            return ExternalAnswer(NOT_FOUND)
        if self._field_map is None:
            return ExternalAnswer(OK, body)
        return ExternalAnswer(OK, {ours: body[theirs] for theirs, ours in self._field_map.items() if theirs in body})


def _url_for(template: str, e164: str) -> str:
    return template.format(e164=quote(e164), digits=e164.lstrip("+"))


async def screen_pop(customers: CustomerRepository, external: ExternalCrm | None, phones: PhoneNormalizer,
                     ani: str) -> dict[str, Any]:
    """What the agent's screen shows for a caller: our customer(s), plus the external CRM's fields.

    ``customer`` is set when exactly one customer has the number; ``customers`` lists them all.
    ``external_status`` says whether the external part is there (ok), empty (not_found) or
    missing (timeout, unavailable, not_asked).
    """
    e164 = phones.e164(ani)
    if external is None or e164 is None:
        ours, theirs = await customers.find_by_phone(ani), ExternalAnswer(NOT_ASKED)
    else:
        ours, theirs = await asyncio.gather(customers.find_by_phone(ani), external.lookup(e164))
    return {"phone": e164 or ani, "customer": ours[0] if len(ours) == 1 else None, "customers": ours,
            "external": theirs.fields, "external_status": theirs.status}
