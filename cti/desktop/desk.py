"""One agent's desk: its desktop socket, the call it is on, the wrap-up of its last call.

Plain state and its JSON views (docs/API.md, "Agent desktop"); ``cti.desktop.service`` changes
it. Frames to the desktop leave through the desk's outbox, in the order they were pushed, even
when one is still being made (a screen-pop waits for the CRM): a "connected" never overtakes
the offer it follows.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
from aiohttp import web

from cti.http import ws

log = structlog.get_logger(__name__)

Frame = tuple[str, dict[str, Any]]


class Refused(Exception):
    """A command that cannot be carried out; ``code`` for programs, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CallKind(StrEnum):
    INBOUND = "inbound"      # offered by the ACD
    CALLBACK = "callback"    # the ACD dials a customer who asked to be called back
    TRANSFER = "transfer"    # handed on by another agent (blind or attended)
    OUTBOUND = "outbound"    # click-to-dial


class CallState(StrEnum):
    RINGING = "ringing"          # the agent's phone rings
    CONNECTED = "connected"      # talking with the customer
    HELD = "held"                # the customer hears music, the agent's leg waits
    CONSULTING = "consulting"    # the customer on hold; the agent rings or talks with another agent
    COMPLETING = "completing"    # attended transfer: the customer is being bridged to the other agent


@dataclass
class Consult:
    agent_id: str
    answered: bool = False


@dataclass(eq=False)
class DeskCall:
    call_id: str
    kind: CallKind
    queue: str | None
    # The ACD engine counts this call for the agent: its ring, talk and wrap-up are the engine's.
    # Otherwise (a transfer received, click-to-dial, a call restored after a restart) the desk
    # keeps the agent out of routing and runs the wrap-up itself.
    engine_call: bool
    offered_at: float
    state: CallState = CallState.RINGING
    channel: str | None = None            # the agent's leg, once Asterisk dials it
    customer_channel: str | None = None
    pop: dict[str, Any] | None = None
    connected_at: float | None = None     # first talk with the customer
    held_since: float | None = None
    hold_seconds: float = 0.0
    consult: Consult | None = None        # on the transferring desk, during an attended transfer
    transferred_from: str | None = None   # on the receiving desk
    customer_left: bool = False
    disposition: str | None = None
    notes: str = ""
    ended_at: float | None = None

    def stop_hold(self, now: float) -> None:
        if self.held_since is not None:
            self.hold_seconds += now - self.held_since
            self.held_since = None

    def view(self, *, with_pop: bool = False) -> dict[str, Any]:
        view = {
            "call_id": self.call_id, "kind": self.kind, "state": self.state, "queue": self.queue,
            "offered_at": self.offered_at, "connected_at": self.connected_at, "held_since": self.held_since,
            "hold_seconds": round(self.hold_seconds, 1), "transferred_from": self.transferred_from,
            "consult": {"agent": self.consult.agent_id, "answered": self.consult.answered} if self.consult else None,
            "customer_left": self.customer_left, "disposition": self.disposition, "notes": self.notes,
            "ended_at": self.ended_at,
        }
        if with_pop:
            view["pop"] = self.pop
        return view

    def saved(self) -> dict[str, Any]:
        """What a restarted daemon needs to show this call again."""
        return {"call_id": self.call_id, "kind": self.kind, "queue": self.queue, "offered_at": self.offered_at,
                "channel": self.channel, "customer_channel": self.customer_channel, "pop": self.pop,
                "connected_at": self.connected_at, "transferred_from": self.transferred_from,
                "disposition": self.disposition, "notes": self.notes}


@dataclass(eq=False)
class WrapUp:
    call: DeskCall
    started_at: float
    ends_at: float | None         # when the wrap-up time runs out; None: no limit
    closed_at: float | None = None  # when it stopped counting (time out, end_wrapup, the engine moved on)
    timer: asyncio.TimerHandle | None = None

    @property
    def seconds(self) -> float:
        return max(0.0, (self.closed_at or self.started_at) - self.started_at)

    def view(self) -> dict[str, Any]:
        return {"call_id": self.call.call_id, "kind": self.call.kind, "started_at": self.started_at,
                "ends_at": self.ends_at, "disposition": self.call.disposition, "notes": self.call.notes,
                "pop": self.call.pop}


@dataclass(eq=False)
class Desk:
    agent_id: str
    name: str
    interface: str
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    call: DeskCall | None = None
    finished: DeskCall | None = None      # the last call that ended, until its wrap-up starts
    wrapup: WrapUp | None = None
    # The ACD state to go back to after a call the engine does not count ("ready", "") or
    # ("not_ready", reason); the agent's ready/not_ready during that call change it.
    restore_to: tuple[str, str] | None = None
    engine_state: str = "logged_out"
    _outbox: deque = field(default_factory=deque)
    _writer: asyncio.Task | None = None
    _away_timer: asyncio.TimerHandle | None = None

    def leave(self, grace_seconds: float, gone: Callable[[], None]) -> None:
        """The last desktop closed: ``gone`` runs unless one comes back (``stay``) within the grace."""
        self.stay()
        self._away_timer = asyncio.get_running_loop().call_later(grace_seconds, gone)

    def stay(self) -> None:
        if self._away_timer is not None:
            self._away_timer.cancel()
            self._away_timer = None

    @property
    def unsent(self) -> int:
        return len(self._outbox)

    def push(self, kind: str, **fields: Any) -> None:
        self._enqueue((kind, fields))

    def push_when_ready(self, making: Awaitable[Frame | None]) -> None:
        """A frame still being made (None when it must not be sent after all): later frames wait for it."""
        self._enqueue(making)

    def _enqueue(self, item: Frame | Awaitable[Frame | None]) -> None:
        self._outbox.append(item)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        # Ends when the outbox is empty: a thousand idle desks cost no task.
        try:
            while self._outbox:
                item = self._outbox.popleft()
                if inspect.isawaitable(item):
                    item = await _made(item)
                if item is not None:
                    await self.send(*item)
        finally:
            self._writer = None

    async def send(self, kind: str, fields: dict[str, Any]) -> None:
        for socket in list(self.sockets):
            await ws.send(socket, kind, **fields)


async def _made(making: Awaitable[Frame | None]) -> Frame | None:
    try:
        return await making
    except Exception:
        log.exception("desk.frame_failed")
        return None
