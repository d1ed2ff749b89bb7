"""The ACD inside the daemon: the pure engine (acd/) on a monotonic clock, with its deadline timer.

Events come from FastAGI sessions (a caller queued, a ring answered or not, a caller gone), from
the AMI (agent devices busy with other calls, calls bridged), from agent desktops and supervisors.
Each decision goes to the session holding that call (its inbox), and to every listener (desktops,
the supervisor wall, the interaction data). The engine is called from the event loop only, so it
needs no lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import structlog

from acd import (AcdEngine, AcdError, AgentDeviceBusy, AgentDeviceFree, Decision, Event, OfferAccepted,
                 QueueSettings, Tick, UpdateQueue)
from acd.config import AcdDefinitions
from cti.callmodel.events import CallBridged, DeviceStateChanged
from ivr.calendar import BusinessCalendar, calendar_from_table

log = structlog.get_logger(__name__)

Listener = Callable[[Decision], None]
Watcher = Callable[[Event], None]
# AMI device states in which an agent's phone cannot take a call (Asterisk's DeviceStateChange).
BUSY_DEVICE_STATES = frozenset({"INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD", "UNAVAILABLE"})


class AcdService:
    def __init__(self, definitions: AcdDefinitions, *, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.definitions = definitions
        self.clock = clock
        self.wall_clock = wall_clock
        self._today = (0.0, 0.0)  # epoch seconds: this local day's start and the next one's
        self._midnight_on_engine_clock = 0.0
        self._calendars = {queue.name: _calendar(queue) for queue in definitions.queues}
        self.engine = AcdEngine(definitions.settings(day_start=self._day_start, is_open=self._is_open))
        self._inboxes: dict[str, asyncio.Queue[object]] = {}
        self._listeners: list[Listener] = []
        self._watchers: list[Watcher] = []
        self._timer: asyncio.TimerHandle | None = None
        self._device_agents = {agent.device: agent.agent_id for agent in definitions.agents if agent.device}
        # call_id -> (agent_id, engine time) of answers the holding session has not yet seen.
        self.accepted: dict[str, tuple[str, float]] = {}
        self.decisions_made = 0
        self.listener_errors = 0

    # --- feeding the engine ---

    def submit(self, event: Event) -> list[Decision]:
        """Hand ``event`` to the engine now and carry its decisions out. AcdError reaches the caller."""
        try:
            decisions = self.engine.handle(event, self.clock())
        finally:
            # Armed even when the event is refused: the engine may hold decisions for at once.
            self._arm_timer()
        for decision in decisions:
            self._deliver(decision)
        self._notify(self._watchers, event)
        return decisions

    def update_queue(self, queue: QueueSettings) -> list[Decision]:
        """A queue's new settings, live: the engine's first (AcdError: refused, nothing changed),
        then the definitions' that lookups read. Only that queue is replaced in them: the rest
        must stay what the engine runs, even if the store has more."""
        decisions = self.submit(UpdateQueue(queue))
        self._calendars[queue.name] = _calendar(queue)
        self.definitions = dataclasses.replace(self.definitions, queues=tuple(
            queue if known.name == queue.name else known for known in self.definitions.queues))
        return decisions

    def now(self) -> float:
        return self.clock()

    def wall_time(self, monotonic: float) -> float:
        """Epoch seconds of an engine time (engine times are monotonic)."""
        return self.wall_clock() - (self.clock() - monotonic)

    def is_open(self, queue: str) -> bool:
        """Whether the queue takes new calls now (its opening hours; always, without any)."""
        return self._is_open(queue, self.clock())

    def _is_open(self, queue: str, now: float) -> bool:
        calendar = self._calendars.get(queue)
        return calendar is None or calendar.is_open(datetime.fromtimestamp(self.wall_time(now), timezone.utc))

    def _day_start(self, now: float) -> float:
        """Local midnight on the engine's clock, for "today" figures. Kept for the whole day: the
        engine compares it, and a value recomputed from two clocks read a microsecond apart
        would differ at each event, so "today" would start afresh every time. The statistics ask
        for it many times per event: the calendar is consulted once a day."""
        wall = self.wall_time(now)
        if not self._today[0] <= wall < self._today[1]:
            day = datetime.fromtimestamp(wall).replace(hour=0, minute=0, second=0, microsecond=0)
            # Local midnights, so a day of a daylight-saving change lasts 23 or 25 hours.
            self._today = (day.timestamp(), (day + timedelta(days=1)).timestamp())
            self._midnight_on_engine_clock = now - (wall - self._today[0])
        return self._midnight_on_engine_clock

    def _arm_timer(self) -> None:
        deadline = self.engine.next_deadline()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            delay = max(0.0, deadline - self.clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        try:
            self.submit(Tick())
        except AcdError:
            log.exception("acd.tick_failed")

    # --- delivering decisions ---

    def hold(self, call_id: str) -> asyncio.Queue[object]:
        """The inbox of a session about to queue ``call_id``: its decisions and caller's digits."""
        inbox: asyncio.Queue[object] = asyncio.Queue()
        self._inboxes[call_id] = inbox
        return inbox

    def release(self, call_id: str) -> None:
        self._inboxes.pop(call_id, None)
        self.accepted.pop(call_id, None)

    def answer(self, call_id: str, agent_id: str) -> None:
        """The agent ringing for ``call_id`` answered; a second report of the same answer is a no-op
        (the engine no longer has it ringing)."""
        if self.engine.ringing_agent(call_id) == agent_id:
            self.accepted[call_id] = (agent_id, self.clock())
            self.submit(OfferAccepted(call_id, agent_id))

    @property
    def ringing(self) -> dict[str, str]:
        """call_id -> agent_id while that agent's phone rings for it: a bridge means it answered."""
        return self.engine.rings()

    def position(self, call_id: str) -> int | None:
        """1 for the next call to be served in its queue; None when it is not waiting."""
        return self.engine.position(call_id)

    def holding(self, call_id: str) -> bool:
        """Whether a session holds ``call_id`` (so a desktop may post it talk commands)."""
        return call_id in self._inboxes

    def post(self, call_id: str, item: object) -> bool:
        """Put something that is not a decision (a digit the caller pressed) in a call's inbox."""
        inbox = self._inboxes.get(call_id)
        if inbox is not None:
            inbox.put_nowait(item)
        return inbox is not None

    def listen(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """``watcher`` sees each event the engine handled, after its decisions: some events change
        what a supervisor sees without any decision (a call queued while nobody is free)."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    def _deliver(self, decision: Decision) -> None:
        self.decisions_made += 1
        call_id = getattr(decision, "call_id", None)
        if call_id is not None:
            self.post(call_id, decision)
        self._notify(self._listeners, decision)

    def _notify(self, callbacks: list, item: Decision | Event) -> None:
        """A failing listener or watcher is counted and logged: the others, and the engine, go on."""
        for callback in tuple(callbacks):
            try:
                callback(item)
            except Exception:
                self.listener_errors += 1
                log.exception("acd.listener_failed", item=type(item).__name__)

    # --- what the AMI tells us ---

    def on_call_event(self, event) -> None:
        """Bus subscriber: agent devices busy elsewhere, and rings answered (the call bridged)."""
        if isinstance(event, DeviceStateChanged):
            self._device_changed(event)
        elif isinstance(event, CallBridged) and len(event.bridge_channels) > 1:
            agent_id = self.engine.ringing_agent(event.call_id)
            if agent_id is not None:
                self.answer(event.call_id, agent_id)

    def _device_changed(self, event: DeviceStateChanged) -> None:
        agent_id = self._device_agents.get(event.device)
        if agent_id is None:
            return
        busy = event.state.upper() in BUSY_DEVICE_STATES
        self.submit(AgentDeviceBusy(agent_id) if busy else AgentDeviceFree(agent_id))

    def agent_interface(self, agent_id: str) -> str:
        return self.definitions.agent(agent_id).interface

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _calendar(queue: QueueSettings) -> BusinessCalendar | None:
    # Checked when the definitions were read: the problems are known to be none here.
    return None if queue.calendar is None else calendar_from_table(queue.calendar, queue.name)[0]
