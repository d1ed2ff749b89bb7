"""What goes into the engine (events) and what comes out (decisions): frozen dataclasses.

The glue turns AMI/FastAGI happenings into events, calls ``AcdEngine.handle(event, now)`` and
carries out the decisions it gets back, in order. Identifiers are the glue's own strings.

Events about a call or an offer the engine no longer knows (a hangup racing an answer, a late
OfferFailed) are normal in telephony and are ignored: ``handle`` returns no decisions. An agent
or queue that the settings do not define is a configuration mismatch and raises ``AcdError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from acd.model import AgentState, DispositionKind, QueueSettings

# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentLogin:
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentLogout:
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentReady:
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentNotReady:
    """Takes effect at once, or after the current call and wrap-up if the agent is busy."""

    agent_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class AgentDeviceBusy:
    """The agent's device is in use by a non-ACD call: never offer until AgentDeviceFree."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentDeviceFree:
    agent_id: str


@dataclass(frozen=True, slots=True)
class CallArrived:
    call_id: str
    queue: str
    priority: int | None = None  # explicit; else from customer_tier; else 0
    customer_tier: str | None = None
    caller_number: str = ""  # where a callback final action dials back
    # Opaque to the engine, handed back on the Offer (screen-pop data gathered by the IVR).
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallAbandoned:
    call_id: str


@dataclass(frozen=True, slots=True)
class OfferAccepted:
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class OfferFailed:
    """The ring ended without an answer. ``reason``: no_answer, busy or failed.

    no_answer: the agent goes not_ready ("no answer"). busy: the device is taken by another call
    (as AgentDeviceBusy). failed: the agent goes not_ready ("offer failed"), a broken device
    must not swallow the next calls. In every case the call returns to the head of its queue.
    """

    call_id: str
    agent_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CallCompleted:
    """Talk ended (the call or a callback): the agent goes into its queue's wrap-up."""

    call_id: str


@dataclass(frozen=True, slots=True)
class WrapUpDone:
    agent_id: str


@dataclass(frozen=True, slots=True)
class CallbackRequested:
    """The caller leaves a number instead of waiting.

    A waiting call keeps its place as a callback (its id becomes the callback_id). A call the
    engine refused with ewt_too_high is not waiting: name its ``queue`` and it joins from now.
    """

    call_id: str
    number: str
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """Outcome of a CallbackDial: answered, busy, no_answer or failed."""

    callback_id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class SetAgentSkills:
    agent_id: str
    skills: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class MoveCall:
    """Supervisor move: the call keeps its original arrival time (its place in the ordering);
    the new queue's overflow plan starts from the move."""

    call_id: str
    queue: str


@dataclass(frozen=True, slots=True)
class SetCallPriority:
    call_id: str
    priority: int


@dataclass(frozen=True, slots=True)
class UpdateQueue:
    """Supervisor change: ``settings`` replace those of the queue of that name, live.

    Waiting calls keep their arrival time, priority and wait; their overflow level is what their
    time in the queue reaches under the new steps. Offered and talking calls stay with their
    agent: the new ring timeout and wrap-up apply from the next offer and wrap-up. Settings the
    engine would refuse at start (an unknown queue named, a loop of final actions) raise
    AcdError and change nothing.
    """

    settings: QueueSettings


@dataclass(frozen=True, slots=True)
class Tick:
    """Nothing happened but time passed: fire the deadlines due by ``now``."""


Event = (AgentLogin | AgentLogout | AgentReady | AgentNotReady | AgentDeviceBusy | AgentDeviceFree
         | CallArrived | CallAbandoned | OfferAccepted | OfferFailed | CallCompleted | WrapUpDone
         | CallbackRequested | CallbackResult | SetAgentSkills | MoveCall | SetCallPriority | UpdateQueue
         | Tick)

# --- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    """The agent is reserved: ring ``interface`` for at most ``ring_timeout`` seconds."""

    call_id: str
    agent_id: str
    interface: str
    ring_timeout: float
    queue: str
    wait_seconds: float
    data: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Stop ringing the agent (ring timeout, caller hung up, agent logged out or not ready)."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell the caller their position (1 = next) and expected wait (None: nobody is staffed)."""

    call_id: str
    position: int
    expected_wait_seconds: float | None


@dataclass(frozen=True, slots=True)
class FinalAction:
    """The wait is over without an agent. Kind queue: the call waits on in ``target`` (not an
    end); kind callback: it waits on as a callback to ``target`` (the caller's number)."""

    call_id: str
    kind: DispositionKind
    target: str


@dataclass(frozen=True, slots=True)
class PreQueueRejected:
    """Not queued. reason: closed, queue_full, no_agents, or ewt_too_high (offer a callback)."""

    call_id: str
    queue: str
    reason: str


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    agent_id: str
    state: AgentState
    reason: str
    since: float


@dataclass(frozen=True, slots=True)
class Overflowed:
    """The call reached overflow step ``step_index`` (0-based in the queue's plan)."""

    call_id: str
    step_index: int


@dataclass(frozen=True, slots=True)
class CallbackDial:
    """The agent is reserved for this callback: originate to ``number`` and report CallbackResult."""

    callback_id: str
    agent_id: str
    number: str
    attempt: int
    queue: str


@dataclass(frozen=True, slots=True)
class CallbackFinished:
    callback_id: str
    outcome: str  # answered, or the last failed attempt's outcome
    attempts: int


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The engine is done with this call: exactly one per CallArrived.

    outcome: completed, abandoned, rejected, final_action, callback (it lives on as a callback,
    whose own end is CallbackFinished).
    """

    call_id: str
    queue: str
    outcome: str


Decision = (Offer | CancelOffer | Announce | FinalAction | PreQueueRejected | AgentStateChanged
            | Overflowed | CallbackDial | CallbackFinished | CallEnded)
