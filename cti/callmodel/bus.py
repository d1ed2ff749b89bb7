"""In-process event bus: the call model publishes, the ACD, pushers and CRM bridge subscribe.

``publish`` is synchronous so the AMI reader never waits on a subscriber. Plain callbacks run inline
(they must be quick); coroutine callbacks each get a bounded queue and one worker task, which keeps
their events in order and caps memory: when a slow subscriber's queue is full, its new events are
dropped and counted rather than piling up. A subscriber that raises is logged and skipped; the
others, and its own later events, are unaffected.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable

import structlog

from cti.callmodel.events import BusEvent

log = structlog.get_logger(__name__)

Callback = Callable[[BusEvent], object] | Callable[[BusEvent], Awaitable[object]]

_STOP = object()


def _is_async(callback: Callback) -> bool:
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)
    )


def _log_failure(subscription: Subscription, event: BusEvent) -> None:
    log.exception(
        "bus subscriber failed",
        subscriber=subscription.name,
        event_type=type(event).__name__,
        call_id=getattr(event, "call_id", None),
    )


class Subscription:
    """Handle returned by ``EventBus.subscribe``: counters, and ``unsubscribe()``."""

    def __init__(
        self, bus: EventBus, callback: Callback, event_types: tuple[type[BusEvent], ...] | None
    ) -> None:
        self._bus = bus
        self.callback = callback
        self.event_types = event_types
        self.name = getattr(callback, "__qualname__", repr(callback))
        self.delivered = 0
        self.dropped = 0

    def wants(self, event: BusEvent) -> bool:
        return self.event_types is None or isinstance(event, self.event_types)

    def deliver(self, event: BusEvent) -> None:
        try:
            self.callback(event)
        except Exception:
            _log_failure(self, event)
        else:
            self.delivered += 1

    def unsubscribe(self) -> None:
        self._bus._remove(self)

    async def _stop(self) -> None:
        """Nothing to wind down for an inline subscriber."""


class _QueuedSubscription(Subscription):
    """A coroutine subscriber: its own bounded queue, drained in order by its own worker task."""

    def __init__(
        self,
        bus: EventBus,
        callback: Callback,
        event_types: tuple[type[BusEvent], ...] | None,
        queue_size: int,
    ) -> None:
        super().__init__(bus, callback, event_types)
        self._queue: asyncio.Queue[object] = asyncio.Queue(queue_size)
        self._overflowing = False
        try:
            self._worker = asyncio.get_running_loop().create_task(self._run())
        except RuntimeError:
            message = "coroutine subscribers must subscribe from a running event loop"
            raise RuntimeError(message) from None

    def deliver(self, event: BusEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if not self._overflowing:  # one warning per overflow episode, not one per event
                self._overflowing = True
                log.warning("bus subscriber overflowing, dropping events", subscriber=self.name)
        else:
            self._overflowing = False

    def unsubscribe(self) -> None:
        super().unsubscribe()
        self._worker.cancel()

    async def _run(self) -> None:
        while (event := await self._queue.get()) is not _STOP:
            try:
                await self.callback(event)  # type: ignore[misc]
            except Exception:
                _log_failure(self, event)  # type: ignore[arg-type]
            else:
                self.delivered += 1

    async def _stop(self) -> None:
        """Let the worker deliver what is queued, then end it."""
        if not self._worker.done():
            await self._queue.put(_STOP)
        await asyncio.gather(self._worker, return_exceptions=True)


class EventBus:
    def __init__(self, *, queue_size: int = 10_000) -> None:
        self._queue_size = queue_size
        # A tuple, rebuilt on (un)subscribe: publish iterates it while callbacks may unsubscribe.
        self._subscriptions: tuple[Subscription, ...] = ()
        self._closed = False

    def subscribe(
        self,
        callback: Callback,
        event_types: Iterable[type[BusEvent]] | None = None,
        *,
        queue_size: int | None = None,
    ) -> Subscription:
        """Deliver events (of ``event_types`` and their subclasses, or all) to ``callback``."""
        if self._closed:
            raise RuntimeError("the event bus is closed")
        types = tuple(event_types) if event_types is not None else None
        if _is_async(callback):
            size = self._queue_size if queue_size is None else queue_size
            subscription: Subscription = _QueuedSubscription(self, callback, types, size)
        else:
            subscription = Subscription(self, callback, types)
        self._subscriptions = (*self._subscriptions, subscription)
        return subscription

    def publish(self, events: Iterable[BusEvent]) -> None:
        # After aclose() nobody is left to receive: late events from a reader still shutting down
        # are dropped instead of failing that reader.
        if self._closed:
            return
        subscriptions = self._subscriptions
        for event in events:
            for subscription in subscriptions:
                if subscription.wants(event):
                    subscription.deliver(event)

    @property
    def dropped(self) -> int:
        return sum(subscription.dropped for subscription in self._subscriptions)

    async def aclose(self) -> None:
        """Refuse new events, let coroutine subscribers finish their queues, end their workers."""
        self._closed = True
        subscriptions, self._subscriptions = self._subscriptions, ()
        await asyncio.gather(*(subscription._stop() for subscription in subscriptions))

    def _remove(self, subscription: Subscription) -> None:
        self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
