"""Webhook delivery from the outbox table: at least once, signed, retried with backoff.

The interaction logger queues an ``interaction.closed`` event per endpoint in the transaction
that closes the call, so an event exists exactly when its call is stored. The dispatcher
claims due rows (``FOR UPDATE SKIP LOCKED`` with a lease, so several daemons may share one
outbox), POSTs them and records the answer. A receiver may see an event more than once (a
lost answer, a crash after delivery): it de-duplicates on the ``X-CTI-Event-Id`` header,
which is the same on every retry.

Signature: ``X-CTI-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``.
The timestamp is signed too, so a receiver can refuse old captures (``verify_signature``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
import asyncpg
import structlog

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-CTI-Signature"
EVENT_ID_HEADER = "X-CTI-Event-Id"
EVENT_TYPE_HEADER = "X-CTI-Event-Type"

_CLAIM = """
UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $3)
WHERE id IN (
    SELECT id FROM webhook_outbox
    WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now() AND endpoint = ANY($1::text[])
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING id, event_id, event_type, endpoint, payload::text AS body, attempts
"""
_DELIVERED = "UPDATE webhook_outbox SET delivered_at = now(), last_error = NULL WHERE id = $1"
_RETRY = "UPDATE webhook_outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3 WHERE id = $1"
_GIVE_UP = "UPDATE webhook_outbox SET failed_at = now(), last_error = $2 WHERE id = $1"


@dataclass(frozen=True)
class WebhookEndpoint:
    url: str
    secret: str = field(repr=False)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, now: float, tolerance: float = 300.0) -> bool:
    """For receivers: the signature matches and was made within ``tolerance`` seconds of ``now``."""
    parts = dict(part.partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    expected = sign(secret, timestamp, body)
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, header)


@dataclass(frozen=True)
class _Claimed:
    id: int
    event_id: str
    event_type: str
    endpoint: str
    body: str
    attempts: int


class WebhookDispatcher:
    def __init__(self, pool: asyncpg.Pool, endpoints: Mapping[str, WebhookEndpoint], *,
                 poll_interval: float = 1.0, batch_size: int = 50, base_delay: float = 1.0,
                 max_delay: float = 600.0, max_attempts: int = 20, request_timeout: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self._endpoints = dict(endpoints)
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._max_attempts = max_attempts
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        # A claimed row is retried by anyone once its lease ends: a daemon died delivering it.
        self._lease = request_timeout * 3
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def close(self) -> None:
        self._stopping.set()
        if self._task:
            await self._task
        if self._session:
            await self._session.close()

    async def deliver_due(self) -> int:
        """Deliver one batch of due events; returns how many were claimed."""
        claimed = [_Claimed(**row) for row in await self._pool.fetch(
            _CLAIM, list(self._endpoints), self._batch_size, self._lease)]
        await asyncio.gather(*(self._deliver(event) for event in claimed))
        return len(claimed)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = await self.deliver_due()
            except Exception as error:  # the outbox is unreachable: try again at the next poll
                log.warning("webhooks.outbox_unavailable", error=f"{type(error).__name__}: {error}")
                claimed = 0
            if claimed < self._batch_size:  # else more are due at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._poll_interval)

    async def _deliver(self, event: _Claimed) -> None:
        error = await self._post(event)
        if error is None:
            await self._pool.execute(_DELIVERED, event.id)
            log.info("webhooks.delivered", event_id=event.event_id, endpoint=event.endpoint,
                     attempts=event.attempts)
        elif event.attempts >= self._max_attempts:
            await self._pool.execute(_GIVE_UP, event.id, error)
            log.error("webhooks.given_up", event_id=event.event_id, endpoint=event.endpoint,
                      attempts=event.attempts, error=error)
        else:
            delay = min(self._max_delay, self._base_delay * 2 ** (event.attempts - 1))
            await self._pool.execute(_RETRY, event.id, delay, error)
            log.warning("webhooks.retry", event_id=event.event_id, endpoint=event.endpoint,
                        attempts=event.attempts, retry_in_s=delay, error=error)

    async def _post(self, event: _Claimed) -> str | None:
        """None when the receiver took the event, else why not."""
        endpoint = self._endpoints[event.endpoint]
        body = event.body.encode()
        headers = {"Content-Type": "application/json", EVENT_ID_HEADER: str(event.event_id),
                   EVENT_TYPE_HEADER: event.event_type,
                   SIGNATURE_HEADER: sign(endpoint.secret, int(self._clock()), body)}
        try:
            async with self._session.post(endpoint.url, data=body, headers=headers) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"{type(error).__name__}: {error}"
