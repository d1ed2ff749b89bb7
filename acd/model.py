"""The ACD's vocabulary: settings as frozen dataclasses, built from configuration by others.

Model in one paragraph: an *agent* holds skills with a proficiency 1-100 and logs in on one
device (``interface``). A *queue* admits the agents whose skills satisfy its requirement
expression (see ``acd.skills``); there is no separate membership list, so an agent serves every
queue its skills qualify it for. A *call* waits in one queue with a priority; its overflow plan
relaxes the requirement step by step as it waits (lower thresholds, alternative skills, the agents
of other queues), then a final action ends the wait. A *callback* is a virtual call that keeps the
caller's place and dials out when its turn comes.

Times are float seconds on the caller's monotonic clock; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AcdError(Exception):
    """Invalid settings, or an event naming an agent or queue the settings do not define."""


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    NOT_READY = "not_ready"
    AVAILABLE = "available"
    RESERVED = "reserved"  # an offer (or a callback dial) is ringing it
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"


class Strategy(StrEnum):
    """How a queue picks among several free agents able to take its call."""

    LONGEST_IDLE = "longest_idle"  # available for the longest time (ready or last call ended)
    MOST_SKILLED = "most_skilled"  # highest score on the call's requirement, then longest idle
    FEWEST_CALLS = "fewest_calls"  # fewest answered calls today, then longest idle
    # Agents take turns: the one offered a call least recently goes first. Unlike longest_idle a
    # ring counts as a turn whether or not it is answered.
    ROUND_ROBIN = "round_robin"


class DispositionKind(StrEnum):
    VOICEMAIL = "voicemail"  # target: the mailbox
    CALLBACK = "callback"  # the caller keeps their place as a callback to their number
    QUEUE = "queue"  # target: another queue; the call keeps waiting there
    EXTERNAL = "external"  # target: a number to transfer to
    MESSAGE_HANGUP = "message_hangup"  # target: the prompt to play before hanging up


@dataclass(frozen=True)
class Disposition:
    """Where a call goes when its wait ends without an agent."""

    kind: DispositionKind
    target: str = ""


@dataclass(frozen=True)
class OverflowStep:
    """After ``after_seconds`` in the queue, widen the set of agents who may take the call.

    Steps are cumulative: step k applies its own relaxation on top of steps 0..k-1.
    """

    after_seconds: float
    # skill -> lower threshold for the queue's own requirement (a threshold is never raised)
    lower_thresholds: Mapping[str, int] = field(default_factory=dict)
    # an alternative requirement, or-ed with the queue's ("english>=50 | generalist")
    add_skills: str = ""
    # queues whose agents may now take the call too
    add_queues: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallbackPolicy:
    """When to dial a callback again after an unsuccessful attempt, and how often at most."""

    retry_after_busy: float = 300.0
    retry_after_no_answer: float = 900.0
    retry_after_failed: float = 900.0
    max_attempts: int = 3

    def retry_after(self, outcome: str) -> float:
        return {"busy": self.retry_after_busy, "no_answer": self.retry_after_no_answer,
                "failed": self.retry_after_failed}[outcome]


@dataclass(frozen=True)
class QueueSettings:
    name: str
    skills: str  # requirement expression, see acd.skills
    strategy: Strategy = Strategy.LONGEST_IDLE
    # A second of waiting here counts `weight` seconds when an agent who serves several queues
    # chooses its next call (see AcdEngine's docstring).
    weight: float = 1.0
    ring_timeout: float = 15.0
    wrap_up_seconds: float = 0.0
    max_waiting: int | None = None  # pre-queue check: queue_full beyond this many waiting calls
    max_wait_seconds: float | None = None  # then the final action
    # Final action after max_wait_seconds, or when no agent who could ever take the call is
    # logged in any more.
    final_action: Disposition = Disposition(DispositionKind.MESSAGE_HANGUP)
    # pre-queue check: refuse with ewt_too_high (so the caller is offered a callback) above this
    ewt_limit_seconds: float | None = None
    overflow: tuple[OverflowStep, ...] = ()
    announce_first_after: float | None = None  # None: no position/EWT announcements
    announce_every: float | None = None  # None: announce once
    service_level_seconds: float = 20.0
    short_abandon_seconds: float = 5.0
    # EWT's handle-time average before the queue has handled a call of its own.
    initial_aht_seconds: float = 180.0
    callback: CallbackPolicy = CallbackPolicy()
    # IVR flow the caller is sent into when the agent hangs up first ("": none). Not used by
    # the engine; carried here because it is a queue's setting like the others.
    survey_flow: str = ""
    # Opening hours, as an IVR flow writes a calendar (timezone, hours, holidays; see
    # ivr.calendar). None: always open. The engine asks AcdSettings.is_open, which the glue
    # answers from this, so a closed queue refuses new calls with PreQueueRejected "closed";
    # calls already waiting are still served.
    calendar: Mapping[str, Any] | None = None
    # Where a call to the closed queue goes: message_hangup, voicemail or external only (the
    # call never joined the queue, so it cannot wait elsewhere or keep a place as a callback).
    closed_action: Disposition = Disposition(DispositionKind.MESSAGE_HANGUP)


@dataclass(frozen=True)
class AgentSettings:
    agent_id: str
    interface: str  # the device the glue rings, e.g. "PJSIP/1001"
    skills: Mapping[str, int]


def always_open(queue: str, now: float) -> bool:
    return True


def single_day(now: float) -> float:
    """Day boundary for a clock with no calendar: "today" is the whole run."""
    return 0.0


DEFAULT_TIER_PRIORITIES: Mapping[str, int] = {"gold": 10, "silver": 5, "standard": 0}


@dataclass(frozen=True)
class AcdSettings:
    queues: tuple[QueueSettings, ...]
    agents: tuple[AgentSettings, ...]
    # CallArrived.customer_tier -> priority, when the event carries no explicit priority.
    tier_priorities: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_TIER_PRIORITIES))
    # Opening hours as a pure function of (queue, now): the glue maps its monotonic clock to
    # the calendar, the engine never looks at one.
    is_open: Callable[[str, float], bool] = always_open
    # now -> the start of the current day on the same clock, for "today" statistics and the
    # fewest_calls strategy.
    day_start: Callable[[float], float] = single_day
    # Weight of the newest call in each queue's exponentially weighted handle-time average.
    aht_smoothing: float = 0.1
    stats_window_seconds: float = 900.0
