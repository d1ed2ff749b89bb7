"""EventBus: inline and queued subscribers, isolation of failures, bounded queues, clean stop."""

from __future__ import annotations

import asyncio

import pytest

from cti.callmodel import (
    BusEvent,
    CallEnded,
    CallEvent,
    CallUnheld,
    DeviceStateChanged,
    EventBus,
    Outcome,
)

pytestmark = pytest.mark.unit


def unheld(n: int) -> CallUnheld:
    return CallUnheld("pbx1", float(n), f"pbx1:{n}", "PJSIP/100-00000001")


def ended(n: int) -> CallEnded:
    return CallEnded("pbx1", float(n), f"pbx1:{n}", Outcome.ANSWERED, 16, "Normal", 0.0, 1.0)


def device(n: int) -> DeviceStateChanged:
    return DeviceStateChanged("pbx1", float(n), "PJSIP/100", "INUSE", None)


class Recorder:
    def __init__(self) -> None:
        self.events: list[BusEvent] = []

    def __call__(self, event: BusEvent) -> None:
        self.events.append(event)


class AsyncRecorder(Recorder):
    async def __call__(self, event: BusEvent) -> None:  # type: ignore[override]
        await asyncio.sleep(0)  # let other tasks interleave, as a real subscriber would
        self.events.append(event)


def fail_on_odd(event: BusEvent) -> None:
    if int(event.timestamp) % 2:
        raise RuntimeError("subscriber bug")


async def async_fail_on_odd(event: BusEvent) -> None:
    fail_on_odd(event)


def test_inline_subscriber_failure_is_isolated() -> None:
    bus, healthy = EventBus(), Recorder()
    failing = bus.subscribe(fail_on_odd)
    bus.subscribe(healthy)
    bus.publish([unheld(n) for n in range(4)])
    assert [e.timestamp for e in healthy.events] == [0.0, 1.0, 2.0, 3.0]
    assert failing.delivered == 2  # its even events still reached it


async def test_queued_subscriber_failure_is_isolated() -> None:
    bus, healthy = EventBus(), AsyncRecorder()
    failing = bus.subscribe(async_fail_on_odd)
    bus.subscribe(healthy)
    bus.publish([unheld(n) for n in range(4)])
    await bus.aclose()
    assert len(healthy.events) == 4
    assert failing.delivered == 2


async def test_queued_subscriber_gets_events_in_publish_order() -> None:
    bus, recorder = EventBus(), AsyncRecorder()
    bus.subscribe(recorder)
    for n in range(50):
        bus.publish([unheld(n), ended(n)])
    await bus.aclose()
    assert recorder.events == [e for n in range(50) for e in (unheld(n), ended(n))]


async def test_publish_does_not_wait_for_queued_subscribers() -> None:
    bus, recorder = EventBus(), AsyncRecorder()
    bus.subscribe(recorder)
    bus.publish([unheld(1)])
    assert recorder.events == []  # queued; the worker has not run yet
    await bus.aclose()
    assert recorder.events == [unheld(1)]


async def test_overflow_is_counted_not_queued() -> None:
    bus, recorder = EventBus(), AsyncRecorder()
    subscription = bus.subscribe(recorder, queue_size=3)
    bus.publish([unheld(n) for n in range(10)])  # synchronous: the worker cannot drain meanwhile
    assert subscription.dropped == bus.dropped == 7
    await bus.aclose()
    assert [e.timestamp for e in recorder.events] == [0.0, 1.0, 2.0]
    assert subscription.delivered == 3


async def test_event_type_filter_includes_subclasses() -> None:
    bus, calls, devices = EventBus(), Recorder(), AsyncRecorder()
    bus.subscribe(calls, [CallEvent])
    bus.subscribe(devices, [DeviceStateChanged])
    bus.publish([unheld(1), device(2), ended(3)])
    await bus.aclose()
    assert calls.events == [unheld(1), ended(3)]
    assert devices.events == [device(2)]


async def test_unsubscribe_stops_delivery() -> None:
    bus, inline, queued = EventBus(), Recorder(), AsyncRecorder()
    inline_subscription = bus.subscribe(inline)
    queued_subscription = bus.subscribe(queued)
    bus.publish([unheld(1)])
    inline_subscription.unsubscribe()
    queued_subscription.unsubscribe()  # drops what it had not processed yet
    bus.publish([unheld(2)])
    await bus.aclose()
    assert inline.events == [unheld(1)]
    assert queued.events == []


async def test_aclose_drains_then_stops_workers() -> None:
    tasks_before = asyncio.all_tasks()
    bus, recorder = EventBus(), AsyncRecorder()
    bus.subscribe(recorder, queue_size=5)
    bus.publish([unheld(n) for n in range(5)])
    await bus.aclose()
    assert len(recorder.events) == 5
    assert asyncio.all_tasks() == tasks_before  # the worker is gone
    bus.publish([unheld(6)])  # after close: dropped quietly, the publisher is not failed
    assert len(recorder.events) == 5
    with pytest.raises(RuntimeError, match="closed"):
        bus.subscribe(Recorder())


def test_coroutine_subscriber_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="running event loop"):
        EventBus().subscribe(AsyncRecorder())
