"""Automatic call distribution: a pure, event-driven, skill-based routing engine.

Modules: ``model`` (settings), ``events`` (events in, decisions out), ``engine`` (AcdEngine),
``skills`` (requirement expressions), ``routing`` (the index behind each decision),
``overflow`` (per-level requirements), ``ewt`` (expected wait), ``stats`` (live statistics),
``sim`` (discrete-event simulator, ``cti sim``), ``erlang`` (Erlang C, to check the simulator).
"""

from acd.engine import AcdEngine, AgentSnapshot, QueueSnapshot, WaitingCallSnapshot
from acd.events import (
    AgentDeviceBusy,
    AgentDeviceFree,
    AgentLogin,
    AgentLogout,
    AgentNotReady,
    AgentReady,
    AgentStateChanged,
    Announce,
    CallAbandoned,
    CallArrived,
    CallbackDial,
    CallbackFinished,
    CallbackRequested,
    CallbackResult,
    CallCompleted,
    CallEnded,
    CancelOffer,
    Decision,
    Event,
    FinalAction,
    MoveCall,
    Offer,
    OfferAccepted,
    OfferFailed,
    Overflowed,
    PreQueueRejected,
    SetAgentSkills,
    SetCallPriority,
    Tick,
    UpdateQueue,
    WrapUpDone,
)
from acd.model import (
    AcdError,
    AcdSettings,
    AgentSettings,
    AgentState,
    CallbackPolicy,
    Disposition,
    DispositionKind,
    OverflowStep,
    QueueSettings,
    Strategy,
)
from acd.skills import SkillExpressionError, parse_skills

__all__ = [
    "AcdEngine", "AgentSnapshot", "QueueSnapshot", "WaitingCallSnapshot",
    "AgentDeviceBusy", "AgentDeviceFree", "AgentLogin", "AgentLogout", "AgentNotReady", "AgentReady",
    "CallAbandoned", "CallArrived", "CallbackRequested", "CallbackResult", "CallCompleted", "MoveCall",
    "OfferAccepted", "OfferFailed", "SetAgentSkills", "SetCallPriority", "Tick", "UpdateQueue",
    "WrapUpDone", "Event",
    "AgentStateChanged", "Announce", "CallbackDial", "CallbackFinished", "CallEnded", "CancelOffer",
    "FinalAction", "Offer", "Overflowed", "PreQueueRejected", "Decision",
    "AcdError", "AcdSettings", "AgentSettings", "AgentState", "CallbackPolicy", "Disposition",
    "DispositionKind", "OverflowStep", "QueueSettings", "Strategy",
    "SkillExpressionError", "parse_skills",
]
