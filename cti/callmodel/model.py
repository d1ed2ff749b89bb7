"""Live telephony model of Asterisk servers, fed by their AMI events.

Channels are keyed by (system, Uniqueid) and grouped into calls by Linkedid: Asterisk gives every
channel created on behalf of a call (Local pairs, dialed agents, transfer legs) the Linkedid of the
oldest channel involved, so one Linkedid is one customer call. A call ends when its last channel
hangs up.

Pure and synchronous: no I/O, no wall clock. Time comes from each event's Timestamp header; when
that is missing (``timestampevents = no``, or action responses during a resync) from the injected
clock, and without a clock from the last timestamp seen.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType

import structlog

from cti.ami.message import Message
from cti.callmodel.events import (
    BusEvent,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallHeld,
    CallStarted,
    CallState,
    CallTransferred,
    CallUnbridged,
    CallUnheld,
    CallUpdated,
    DeviceStateChanged,
    Outcome,
    TransferKind,
)

log = structlog.get_logger(__name__)

Handler = Callable[["_SystemState", Message], list[BusEvent]]

# "s" is the dialplan's start extension: the channel entered without a dialed number.
_NO_DNIS = frozenset({"", "s"})
_UNKNOWN = "<unknown>"

_CALL_STATE_BY_CHANNEL_STATE = {
    "Down": CallState.DIALING,
    "Rsrvd": CallState.DIALING,
    "OffHook": CallState.DIALING,
    "Dialing": CallState.DIALING,
    "Dialing Offhook": CallState.DIALING,
    "Ring": CallState.RINGING,
    "Ringing": CallState.RINGING,
    "Pre-ring": CallState.RINGING,
    "Up": CallState.UP,
    "Busy": CallState.BUSY,
}


def _known(value: str) -> str:
    """Asterisk writes ``<unknown>`` for an absent caller id; the model says ``""``."""
    return "" if value == _UNKNOWN else value


def _call_state_of(channel_state: str) -> CallState:
    return _CALL_STATE_BY_CHANNEL_STATE.get(channel_state, CallState.RINGING)


def _cause(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


def _seconds(duration: str | None) -> int:
    """CoreShowChannel's ``Duration`` (HH:MM:SS) in seconds; 0 when absent or unreadable."""
    parts = (duration or "").split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return 0
    hours, minutes, seconds = (int(part) for part in parts)
    return hours * 3600 + minutes * 60 + seconds


class Channel:
    __slots__ = (
        "uniqueid",
        "name",
        "linkedid",
        "state",
        "caller_num",
        "caller_name",
        "connected_num",
        "connected_name",
        "exten",
        "context",
        "bridge_id",
        "held",
        "local_peer",
        "call",
    )
    # Set as soon as the model files the channel under its call, before anyone reads it.
    call: Call

    def __init__(self, uniqueid: str, name: str, linkedid: str, message: Message) -> None:
        self.uniqueid = uniqueid
        self.name = name
        self.linkedid = linkedid
        self.state = message.get("ChannelStateDesc", "")
        self.caller_num = _known(message.get("CallerIDNum", ""))
        self.caller_name = _known(message.get("CallerIDName", ""))
        self.connected_num = _known(message.get("ConnectedLineNum", ""))
        self.connected_name = _known(message.get("ConnectedLineName", ""))
        self.exten = message.get("Exten", "")
        self.context = message.get("Context", "")
        self.bridge_id: str | None = None
        self.held = False
        # The other half of a Local channel pair (LocalBridge event), where the agent usually is.
        self.local_peer: str | None = None

    @classmethod
    def from_snapshot(cls, message: Message) -> Channel:
        """From any event carrying Asterisk's channel snapshot headers; KeyError if incomplete."""
        return cls(message["Uniqueid"], message["Channel"], message["Linkedid"], message)

    def __repr__(self) -> str:
        return f"Channel({self.name!r}, uniqueid={self.uniqueid!r}, state={self.state!r})"


# A channel from a CoreShowChannel list, with its age in seconds.
_Member = tuple[Channel, int]


def _origin_of(members: list[_Member]) -> _Member:
    """The call's originating channel: Asterisk's Linkedid is the Uniqueid of the oldest channel."""
    for channel, age in members:
        if channel.uniqueid == channel.linkedid:
            return channel, age
    return max(members, key=lambda member: member[1])


class Bridge:
    __slots__ = ("bridge_id", "bridge_type", "channels")

    def __init__(self, bridge_id: str, bridge_type: str = "") -> None:
        self.bridge_id = bridge_id
        self.bridge_type = bridge_type
        self.channels: dict[str, Channel] = {}

    def channel_names(self) -> tuple[str, ...]:
        return tuple([channel.name for channel in self.channels.values()])

    def calls(self) -> list[Call]:
        return list(dict.fromkeys([channel.call for channel in self.channels.values()]))


class Call:
    """One customer call: every channel sharing a Linkedid on one Asterisk system."""

    __slots__ = (
        "call_id",
        "system",
        "linkedid",
        "origin",
        "channels",
        "ani",
        "caller_name",
        "dnis",
        "state",
        "bridges",
        "transfers",
        "cause",
        "cause_txt",
        "hangup_requested_by",
        "started_at",
        "answered_at",
        "ended_at",
        "outcome",
        "data",
    )

    def __init__(self, system: str, origin: Channel, started_at: float) -> None:
        self.call_id = f"{system}:{origin.linkedid}"
        self.system = system
        self.linkedid = origin.linkedid
        # The channel that created the call; kept after it hangs up, for the caller's identity.
        self.origin = origin
        self.channels: dict[str, Channel] = {}
        self.ani = origin.caller_num
        self.caller_name = origin.caller_name
        self.dnis = "" if origin.exten in _NO_DNIS else origin.exten
        self.state = _call_state_of(origin.state)
        self.bridges: list[str] = []
        self.transfers: list[CallTransferred] = []
        self.cause: int | None = None
        self.cause_txt = ""
        self.hangup_requested_by: str | None = None
        self.started_at = started_at
        self.answered_at = started_at if self.state is CallState.UP else None
        self.ended_at: float | None = None
        self.outcome: Outcome | None = None
        self.data: dict[str, object] = {}
        self.add(origin)

    def add(self, channel: Channel) -> None:
        channel.call = self
        self.channels[channel.uniqueid] = channel
        if channel.bridge_id is not None:
            self.entered_bridge(channel.bridge_id)

    def entered_bridge(self, bridge_id: str) -> None:
        if bridge_id not in self.bridges:
            self.bridges.append(bridge_id)

    @property
    def held(self) -> bool:
        return any(channel.held for channel in self.channels.values())

    def resting_state(self) -> CallState:
        """The state the call is in when nothing (hold) overrides it."""
        return CallState.UP if self.answered_at is not None else _call_state_of(self.origin.state)

    def __repr__(self) -> str:
        return f"Call({self.call_id!r}, ani={self.ani!r}, dnis={self.dnis!r}, state={self.state!r})"


class _SystemState:
    """Everything the model knows about one Asterisk server."""

    __slots__ = ("name", "channels", "calls", "bridges", "devices")

    def __init__(self, name: str) -> None:
        self.name = name
        self.channels: dict[str, Channel] = {}
        self.calls: dict[str, Call] = {}  # by Linkedid
        self.bridges: dict[str, Bridge] = {}
        self.devices: dict[str, str] = {}

    def bridge(self, bridge_id: str) -> Bridge:
        bridge = self.bridges.get(bridge_id)
        if bridge is None:
            bridge = self.bridges[bridge_id] = Bridge(bridge_id)
        return bridge


class CallModel:
    """Calls, channels, bridges and device states of any number of Asterisk servers."""

    def __init__(
        self, *, clock: Callable[[], float] | None = None, recent_ended_size: int = 256
    ) -> None:
        self._clock = clock
        self._last_timestamp = 0.0
        self._systems: dict[str, _SystemState] = {}
        self._calls: dict[str, Call] = {}
        # Calls whose DNIS is still unknown: while empty, Newexten costs one truthiness test.
        self._awaiting_dnis: set[Call] = set()
        self.recent_ended: deque[Call] = deque(maxlen=recent_ended_size)
        # Events skipped because a header they need was missing.
        self.malformed_events = 0
        self._handlers: dict[str, Handler] = {
            "Newchannel": self._on_newchannel,
            "Newstate": self._on_newstate,
            "NewCallerid": self._on_new_callerid,
            "NewConnectedLine": self._on_new_connected_line,
            "Rename": self._on_rename,
            "Newexten": self._on_newexten,
            "DialBegin": self._on_dial_begin,
            "DialEnd": self._on_dial_end,
            "LocalBridge": self._on_local_bridge,
            "Hold": self._on_hold,
            "Unhold": self._on_unhold,
            "BridgeCreate": self._on_bridge_create,
            "BridgeEnter": self._on_bridge_enter,
            "BridgeLeave": self._on_bridge_leave,
            "BridgeDestroy": self._on_bridge_destroy,
            "BlindTransfer": self._on_blind_transfer,
            "AttendedTransfer": self._on_attended_transfer,
            "HangupRequest": self._on_hangup_request,
            "SoftHangupRequest": self._on_hangup_request,
            "Hangup": self._on_hangup,
            "DeviceStateChange": self._on_device_state_change,
        }

    # ----- public API -----

    def apply(self, system: str, message: Message) -> list[BusEvent]:
        """Feed one AMI event of Asterisk server ``system`` (its SystemName); get the bus events."""
        # The events ignored (most of the stream: VarSet, Agent*, Cdr...) cost one dict lookup,
        # and are never cut into headers (cti/ami/message.py).
        handler = self._handlers.get(message.event)
        if handler is None:
            return []
        try:
            return handler(self._system(system), message)
        except KeyError:  # Message[...] of an absent header
            # Handlers read every header they need before changing anything, so skipping is safe.
            self.malformed_events += 1
            return []

    def resync(
        self,
        system: str,
        channels: Iterable[Message],
        bridges: Iterable[Message],
        device_states: Iterable[Message],
        restarted: bool = False,
    ) -> list[BusEvent]:
        """Rebuild ``system`` from CoreShowChannel, BridgeListItem and DeviceStateChange lists.

        Calls whose Linkedid is still present keep their identity and data; the others are closed
        as lost during the outage. ``restarted`` (Asterisk's uptime went back) trusts nothing from
        before.
        """
        now = self._clock_now()
        old = self._systems.get(system) or _SystemState(system)
        fresh = _SystemState(system)
        self._load_bridges(fresh, bridges)
        members_by_linkedid = self._load_channels(fresh, channels)
        self._load_devices(fresh, device_states)
        events: list[BusEvent] = [
            self._end_call(old, call, Outcome.LOST_DURING_OUTAGE, now)
            for linkedid, call in list(old.calls.items())
            if restarted or linkedid not in members_by_linkedid
        ]
        for linkedid, members in members_by_linkedid.items():
            survivor = old.calls.get(linkedid)
            if survivor is None:
                events.append(self._start_from_snapshot(fresh, members, now))
            else:
                events.extend(self._rejoin(fresh, survivor, members, now))
        events.extend(self._device_changes({} if restarted else old.devices, fresh, now))
        self._systems[system] = fresh
        log.info("resynced", system=system, restarted=restarted, calls=len(fresh.calls))
        return events

    def set_dnis(self, call_id: str, dnis: str) -> list[BusEvent]:
        """Set the dialed number from a better source than the channel's Exten (agi_dnid)."""
        call = self._calls.get(call_id)
        if call is None or not dnis or dnis == call.dnis:
            return []
        return [self._set_dnis(call, dnis, self._clock_now())]

    def attach(self, call_id: str, **data: object) -> bool:
        """Attach data (IVR results...) to a live call; False when the call is unknown or over."""
        call = self._calls.get(call_id)
        if call is None:
            return False
        call.data.update(data)
        return True

    def call(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def calls(self, system: str | None = None) -> Iterator[Call]:
        if system is None:
            return iter(list(self._calls.values()))
        state = self._systems.get(system)
        return iter(list(state.calls.values()) if state else [])

    def devices(self, system: str) -> Mapping[str, str]:
        state = self._systems.get(system)
        return MappingProxyType(state.devices if state else {})

    def bridge(self, system: str, bridge_id: str) -> Bridge | None:
        state = self._systems.get(system)
        return state.bridges.get(bridge_id) if state else None

    # ----- helpers -----

    def _system(self, name: str) -> _SystemState:
        state = self._systems.get(name)
        if state is None:
            state = self._systems[name] = _SystemState(name)
        return state

    def _clock_now(self) -> float:
        return self._clock() if self._clock is not None else self._last_timestamp

    def _now(self, message: Message) -> float:
        # Never raises: read after the model changed, a bad timestamp must not abort the update.
        try:
            self._last_timestamp = float(message.get("Timestamp"))  # type: ignore[arg-type]
        except (TypeError, ValueError):  # absent, or unreadable
            return self._clock_now()
        return self._last_timestamp

    def _channel(self, system: _SystemState, message: Message, events: list[BusEvent]) -> Channel:
        """The event's channel; one never seen (missed Newchannel) is adopted from the snapshot."""
        channel = system.channels.get(message["Uniqueid"])
        if channel is None:
            channel = Channel.from_snapshot(message)
            events.extend(self._add_channel(system, channel, message))
        return channel

    def _add_channel(
        self, system: _SystemState, channel: Channel, message: Message
    ) -> list[BusEvent]:
        system.channels[channel.uniqueid] = channel
        call = system.calls.get(channel.linkedid)
        if call is not None:
            call.add(channel)
            return []
        return [self._start_call(system, channel, self._now(message))]

    def _start_call(self, system: _SystemState, origin: Channel, started_at: float) -> CallStarted:
        call = Call(system.name, origin, started_at)
        system.calls[call.linkedid] = call
        self._calls[call.call_id] = call
        if not call.dnis:
            self._awaiting_dnis.add(call)
        log.debug("call started", call_id=call.call_id, ani=call.ani, dnis=call.dnis)
        return CallStarted(
            system.name, started_at, call.call_id, call.ani, call.caller_name, call.dnis,
            origin.name, call.state,
        )

    def _end_call(
        self, system: _SystemState, call: Call, outcome: Outcome, now: float
    ) -> CallEnded:
        system.calls.pop(call.linkedid, None)
        self._calls.pop(call.call_id, None)
        self._awaiting_dnis.discard(call)
        call.state = CallState.ENDED
        call.ended_at = now
        call.outcome = outcome
        self.recent_ended.append(call)
        log.info("call ended", call_id=call.call_id, outcome=str(outcome), cause=call.cause)
        return CallEnded(
            system.name, now, call.call_id, outcome, call.cause, call.cause_txt,
            call.started_at, call.answered_at,
        )

    def _updated(self, call: Call, reason: str, now: float, detail: str = "") -> CallUpdated:
        return CallUpdated(
            call.system, now, call.call_id, reason, call.state, call.ani, call.caller_name,
            call.dnis, detail,
        )

    def _set_dnis(self, call: Call, dnis: str, now: float) -> CallUpdated:
        call.dnis = dnis
        self._awaiting_dnis.discard(call)
        return self._updated(call, "dnis", now, dnis)

    def _follow_origin_state(self, call: Call, now: float) -> BusEvent | None:
        """Before the answer, the call's state is its originating channel's."""
        if call.answered_at is not None:
            return None
        state = _call_state_of(call.origin.state)
        if state is CallState.UP:
            call.answered_at = now
            call.state = CallState.UP
            return CallAnswered(call.system, now, call.call_id, call.origin.name)
        if state is call.state:
            return None
        call.state = state
        return self._updated(call, "state", now, call.origin.state)

    # ----- resync -----

    def _load_bridges(self, fresh: _SystemState, bridge_items: Iterable[Message]) -> None:
        for item in bridge_items:
            bridge_id = item.get("BridgeUniqueid")
            if not bridge_id:
                self.malformed_events += 1
                continue
            fresh.bridge(bridge_id).bridge_type = item.get("BridgeType", "")

    def _load_channels(
        self, fresh: _SystemState, channel_items: Iterable[Message]
    ) -> dict[str, list[_Member]]:
        """File CoreShowChannel items into ``fresh`` and group them by Linkedid."""
        members_by_linkedid: dict[str, list[_Member]] = {}
        for item in channel_items:
            try:
                channel = Channel.from_snapshot(item)
            except KeyError:
                self.malformed_events += 1
                continue
            fresh.channels[channel.uniqueid] = channel
            bridge_id = item.get("BridgeId")
            # BridgeListItem has no member list: CoreShowChannel's BridgeId says who is where.
            if bridge_id:
                fresh.bridge(bridge_id).channels[channel.uniqueid] = channel
                channel.bridge_id = bridge_id
            member = (channel, _seconds(item.get("Duration")))
            members_by_linkedid.setdefault(channel.linkedid, []).append(member)
        return members_by_linkedid

    def _load_devices(self, fresh: _SystemState, device_items: Iterable[Message]) -> None:
        for item in device_items:
            device, state = item.get("Device"), item.get("State")
            if not device or state is None:
                self.malformed_events += 1
                continue
            fresh.devices[device] = state

    def _start_from_snapshot(
        self, fresh: _SystemState, members: list[_Member], now: float
    ) -> CallStarted:
        origin, age = _origin_of(members)
        started = self._start_call(fresh, origin, now - age)
        call = fresh.calls[origin.linkedid]
        for channel, _ in members:
            call.add(channel)
        return started

    def _rejoin(
        self, fresh: _SystemState, call: Call, members: list[_Member], now: float
    ) -> list[BusEvent]:
        """A call that survived the outage: same identity and data, channels as they are now."""
        call.channels = {}
        for channel, _ in members:
            call.add(channel)
        call.origin = call.channels.get(call.origin.uniqueid, call.origin)
        # The lists cannot tell a held call from an active one: hold is cleared, not guessed.
        call.state = call.resting_state()
        fresh.calls[call.linkedid] = call
        answered = self._follow_origin_state(call, now)
        resynced = self._updated(call, "resync", now)
        return [answered, resynced] if answered is not None else [resynced]

    @staticmethod
    def _device_changes(
        before: Mapping[str, str], fresh: _SystemState, now: float
    ) -> list[BusEvent]:
        return [
            DeviceStateChanged(fresh.name, now, device, state, before.get(device))
            for device, state in fresh.devices.items()
            if before.get(device) != state
        ]

    # ----- channel events -----

    def _on_newchannel(self, system: _SystemState, message: Message) -> list[BusEvent]:
        channel = Channel.from_snapshot(message)
        if channel.uniqueid in system.channels:
            return []
        return self._add_channel(system, channel, message)

    def _on_newstate(self, system: _SystemState, message: Message) -> list[BusEvent]:
        state = message["ChannelStateDesc"]
        events: list[BusEvent] = []
        channel = self._channel(system, message, events)
        channel.state = state
        if channel is channel.call.origin:
            followed = self._follow_origin_state(channel.call, self._now(message))
            if followed is not None:
                events.append(followed)
        return events

    def _on_new_callerid(self, system: _SystemState, message: Message) -> list[BusEvent]:
        number = _known(message["CallerIDNum"])
        name = _known(message.get("CallerIDName", ""))
        events: list[BusEvent] = []
        channel = self._channel(system, message, events)
        channel.caller_num, channel.caller_name = number, name
        call = channel.call
        if channel is call.origin and (number, name) != (call.ani, call.caller_name):
            call.ani, call.caller_name = number, name
            events.append(self._updated(call, "caller_id", self._now(message), number))
        return events

    def _on_new_connected_line(self, system: _SystemState, message: Message) -> list[BusEvent]:
        number = _known(message["ConnectedLineNum"])
        name = _known(message.get("ConnectedLineName", ""))
        events: list[BusEvent] = []
        channel = self._channel(system, message, events)
        channel.connected_num, channel.connected_name = number, name
        return events

    def _on_rename(self, system: _SystemState, message: Message) -> list[BusEvent]:
        new_name = message["Newname"]
        events: list[BusEvent] = []
        self._channel(system, message, events).name = new_name
        return events

    def _on_newexten(self, system: _SystemState, message: Message) -> list[BusEvent]:
        # Only a DNIS fallback: one Newexten per dialplan step makes this a hot event.
        if not self._awaiting_dnis:
            return []
        channel = system.channels.get(message["Uniqueid"])
        if channel is None or channel is not channel.call.origin:
            return []
        if channel.call not in self._awaiting_dnis:
            return []
        exten = message["Exten"]
        if exten in _NO_DNIS:
            return []
        return [self._set_dnis(channel.call, exten, self._now(message))]

    def _on_dial_begin(self, system: _SystemState, message: Message) -> list[BusEvent]:
        return self._dial_update(system, message, "dial_begin", message["DestChannel"])

    def _on_dial_end(self, system: _SystemState, message: Message) -> list[BusEvent]:
        return self._dial_update(system, message, "dial_end", message["DialStatus"])

    def _dial_update(
        self, system: _SystemState, message: Message, reason: str, detail: str
    ) -> list[BusEvent]:
        # An Originate dials without a calling channel: then only the Dest* headers are present.
        call = system.calls.get(message.get("Linkedid") or message["DestLinkedid"])
        if call is None:
            return []
        return [self._updated(call, reason, self._now(message), detail)]

    def _on_local_bridge(self, system: _SystemState, message: Message) -> list[BusEvent]:
        one = system.channels.get(message["LocalOneUniqueid"])
        two = system.channels.get(message["LocalTwoUniqueid"])
        if one is not None and two is not None:
            one.local_peer, two.local_peer = two.uniqueid, one.uniqueid
        return []

    def _on_hold(self, system: _SystemState, message: Message) -> list[BusEvent]:
        events: list[BusEvent] = []
        channel = self._channel(system, message, events)
        channel.held = True
        call = channel.call
        call.state = CallState.HELD
        music_class = message.get("MusicClass", "")
        now = self._now(message)
        events.append(CallHeld(system.name, now, call.call_id, channel.name, music_class))
        return events

    def _on_unhold(self, system: _SystemState, message: Message) -> list[BusEvent]:
        events: list[BusEvent] = []
        channel = self._channel(system, message, events)
        channel.held = False
        call = channel.call
        if not call.held:
            call.state = call.resting_state()
        events.append(CallUnheld(system.name, self._now(message), call.call_id, channel.name))
        return events

    def _on_hangup_request(self, system: _SystemState, message: Message) -> list[BusEvent]:
        # No adoption: a request to hang up is no reason to start tracking a call.
        channel = system.channels.get(message["Uniqueid"])
        if channel is not None and channel.call.hangup_requested_by is None:
            channel.call.hangup_requested_by = channel.name
        return []

    def _on_hangup(self, system: _SystemState, message: Message) -> list[BusEvent]:
        cause, cause_txt = _cause(message.get("Cause")), message.get("Cause-txt", "")
        channel = system.channels.pop(message["Uniqueid"], None)
        if channel is None:
            return []
        self._leave_bridge(system, channel)
        call = channel.call
        del call.channels[channel.uniqueid]
        # The originating channel's cause is the call's; until it hangs up, the latest stands in.
        if channel is call.origin or call.origin.uniqueid in call.channels:
            call.cause, call.cause_txt = cause, cause_txt
        if call.channels:
            return []
        outcome = Outcome.ANSWERED if call.answered_at is not None else Outcome.UNANSWERED
        return [self._end_call(system, call, outcome, self._now(message))]

    # ----- bridges -----

    def _on_bridge_create(self, system: _SystemState, message: Message) -> list[BusEvent]:
        system.bridge(message["BridgeUniqueid"]).bridge_type = message.get("BridgeType", "")
        return []

    def _on_bridge_enter(self, system: _SystemState, message: Message) -> list[BusEvent]:
        bridge_id = message["BridgeUniqueid"]
        events: list[BusEvent] = []
        channel = self._channel(system, message, events)
        bridge = system.bridge(bridge_id)
        bridge.channels[channel.uniqueid] = channel
        channel.bridge_id = bridge.bridge_id
        channel.call.entered_bridge(bridge.bridge_id)
        now = self._now(message)
        events.extend(self._bridge_events(CallBridged, bridge, channel, bridge.calls(), now))
        return events

    def _on_bridge_leave(self, system: _SystemState, message: Message) -> list[BusEvent]:
        bridge = system.bridges.get(message["BridgeUniqueid"])
        channel = system.channels.get(message["Uniqueid"])
        if bridge is None or channel is None or channel.uniqueid not in bridge.channels:
            return []
        self._leave_bridge(system, channel)
        calls = list(dict.fromkeys([channel.call, *bridge.calls()]))
        return self._bridge_events(CallUnbridged, bridge, channel, calls, self._now(message))

    def _on_bridge_destroy(self, system: _SystemState, message: Message) -> list[BusEvent]:
        bridge = system.bridges.pop(message["BridgeUniqueid"], None)
        for channel in bridge.channels.values() if bridge else ():
            channel.bridge_id = None
        return []

    @staticmethod
    def _leave_bridge(system: _SystemState, channel: Channel) -> None:
        bridge = system.bridges.get(channel.bridge_id) if channel.bridge_id else None
        if bridge is not None:
            bridge.channels.pop(channel.uniqueid, None)
        channel.bridge_id = None

    @staticmethod
    def _bridge_events(
        event_type: type[CallBridged] | type[CallUnbridged],
        bridge: Bridge,
        channel: Channel,
        calls: list[Call],
        now: float,
    ) -> list[BusEvent]:
        # Every call with a channel in the bridge learns who joined or left it.
        names = bridge.channel_names()
        return [
            event_type(call.system, now, call.call_id, bridge.bridge_id, channel.name, names)
            for call in calls
        ]

    # ----- transfers -----

    def _on_blind_transfer(self, system: _SystemState, message: Message) -> list[BusEvent]:
        details = dict(
            kind=TransferKind.BLIND,
            result=message["Result"],
            transferer_channel=message["TransfererChannel"],
            transferee_channel=message.get("TransfereeChannel", ""),
            target=f"{message['Extension']}@{message['Context']}",
        )
        calls = self._calls_named_in(system, message, ("Transferer", "Transferee"))
        return self._record_transfer(calls, self._now(message), details)

    def _on_attended_transfer(self, system: _SystemState, message: Message) -> list[BusEvent]:
        details = dict(
            kind=TransferKind.ATTENDED,
            result=message["Result"],
            transferer_channel=message["OrigTransfererChannel"],
            transferee_channel=message.get("TransfereeChannel", ""),
            target=message.get("TransferTargetChannel") or message.get("DestApp", ""),
            dest_type=message.get("DestType", ""),
        )
        prefixes = ("OrigTransferer", "SecondTransferer", "Transferee", "TransferTarget")
        calls = self._calls_named_in(system, message, prefixes)
        return self._record_transfer(calls, self._now(message), details)

    @staticmethod
    def _calls_named_in(
        system: _SystemState, message: Message, prefixes: Iterable[str]
    ) -> list[Call]:
        linkedids = (message.get(f"{prefix}Linkedid") for prefix in prefixes)
        return list(dict.fromkeys(system.calls[lid] for lid in linkedids if lid in system.calls))

    @staticmethod
    def _record_transfer(calls: list[Call], now: float, details: dict[str, str]) -> list[BusEvent]:
        events: list[BusEvent] = []
        for call in calls:
            related = tuple(other.call_id for other in calls if other is not call)
            event = CallTransferred(
                call.system, now, call.call_id, related_call_ids=related, **details
            )
            call.transfers.append(event)
            events.append(event)
        return events

    # ----- devices -----

    def _on_device_state_change(self, system: _SystemState, message: Message) -> list[BusEvent]:
        device, state = message["Device"], message["State"]
        previous = system.devices.get(device)
        if previous == state:  # Asterisk repeats unchanged states (one per channel of the device)
            return []
        system.devices[device] = state
        return [DeviceStateChanged(system.name, self._now(message), device, state, previous)]
