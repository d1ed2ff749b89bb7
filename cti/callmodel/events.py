"""Typed events the call model publishes on the internal bus.

Frozen, slotted dataclasses: cheap to build, safe to hand to many subscribers
(nobody can mutate what another subscriber is reading), hashable for de-duplication.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CallState(StrEnum):
    DIALING = "dialing"
    RINGING = "ringing"
    UP = "up"
    HELD = "held"
    BUSY = "busy"
    ENDED = "ended"


class Outcome(StrEnum):
    ANSWERED = "answered"
    UNANSWERED = "unanswered"
    # Asterisk was unreachable when the call disappeared: we never saw its Hangup.
    LOST_DURING_OUTAGE = "lost_during_outage"


class TransferKind(StrEnum):
    BLIND = "blind"
    ATTENDED = "attended"


@dataclass(frozen=True, slots=True)
class BusEvent:
    system: str
    # Epoch seconds, from the AMI event's Timestamp header (or the model's injected clock).
    timestamp: float


@dataclass(frozen=True, slots=True)
class CallEvent(BusEvent):
    call_id: str


@dataclass(frozen=True, slots=True)
class CallStarted(CallEvent):
    ani: str
    caller_name: str
    dnis: str
    channel: str
    # Calls found already answered (adopted mid-call, or at a resync) start "up".
    state: CallState


@dataclass(frozen=True, slots=True)
class CallUpdated(CallEvent):
    """Something about the call changed; ``reason`` says what, ``detail`` carries the new value."""

    reason: str
    state: CallState
    ani: str
    caller_name: str
    dnis: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CallAnswered(CallEvent):
    channel: str


@dataclass(frozen=True, slots=True)
class CallBridged(CallEvent):
    bridge_id: str
    channel: str
    # Every channel in the bridge after this one entered, whatever call they belong to.
    bridge_channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CallUnbridged(CallEvent):
    bridge_id: str
    channel: str
    bridge_channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CallHeld(CallEvent):
    channel: str
    music_class: str


@dataclass(frozen=True, slots=True)
class CallUnheld(CallEvent):
    channel: str


@dataclass(frozen=True, slots=True)
class CallTransferred(CallEvent):
    kind: TransferKind
    result: str
    transferer_channel: str
    transferee_channel: str
    # Blind: "exten@context". Attended: the transfer target's channel, or the application it runs.
    target: str
    # Attended only (Bridge, App, Link, Threeway, Fail): how Asterisk completed the transfer.
    dest_type: str = ""
    # The other calls the transfer joined (attended transfers merge the consultation call).
    related_call_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CallEnded(CallEvent):
    outcome: Outcome
    cause: int | None
    cause_txt: str
    started_at: float
    answered_at: float | None


@dataclass(frozen=True, slots=True)
class DeviceStateChanged(BusEvent):
    device: str
    state: str
    previous: str | None
