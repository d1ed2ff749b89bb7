"""Telephony model: calls, channels, bridges and device states of Asterisk, as typed events."""

from cti.callmodel.bus import EventBus, Subscription
from cti.callmodel.control import AmiActionSender, CallControl, CallControlError
from cti.callmodel.events import (
    BusEvent,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallEvent,
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
from cti.callmodel.model import Bridge, Call, CallModel, Channel

__all__ = [
    "AmiActionSender",
    "Bridge",
    "BusEvent",
    "Call",
    "CallAnswered",
    "CallBridged",
    "CallControl",
    "CallControlError",
    "CallEnded",
    "CallEvent",
    "CallHeld",
    "CallModel",
    "CallStarted",
    "CallState",
    "CallTransferred",
    "CallUnbridged",
    "CallUnheld",
    "CallUpdated",
    "Channel",
    "DeviceStateChanged",
    "EventBus",
    "Outcome",
    "Subscription",
    "TransferKind",
]
