"""Property tests: random event sequences against invariants the glue relies on.

A hypothesis state machine plays a glue (it fires Tick at every next_deadline(), answers or lets
offers ring out, hangs calls up, asks for callbacks, moves agents in and out) and checks every
decision as it comes:

- a call is offered to one agent at a time, and an agent gets one call at a time;
- overflow steps fire exactly when due (later only if the call was ringing an agent then), so a
  waiting call has always reached every step due;
- every call ends exactly once (CallEnded), every callback finishes at most once;
- nothing is decided about a call that has ended.

Supervisors change queue settings on the way (UpdateQueue): valid changes must keep all of the
above (steps reached through a change fire at the change), refused ones must change nothing.

A second, single-queue machine checks the order: every offer goes to the waiting call with the
highest priority, the longest waiting first among equals, across changes of the queue's settings.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from acd.engine import AcdEngine
from acd.model import AcdError
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

pytestmark = pytest.mark.unit

QUEUES = (
    QueueSettings("sales", "sales>=60", ring_timeout=10, wrap_up_seconds=5, max_wait_seconds=200,
                  announce_first_after=15, announce_every=30,
                  overflow=(OverflowStep(20, lower_thresholds={"sales": 30}),
                            OverflowStep(45, add_queues=("support",))),
                  final_action=Disposition(DispositionKind.QUEUE, "support"),
                  callback=CallbackPolicy(retry_after_busy=30, retry_after_no_answer=40, max_attempts=2)),
    QueueSettings("support", "support", ring_timeout=8, max_waiting=4, weight=2.0, max_wait_seconds=150,
                  overflow=(OverflowStep(30, add_skills="sales>=80"),),
                  final_action=Disposition(DispositionKind.CALLBACK)),
)
SALES, SUPPORT = QUEUES
# What supervisors change queues to. Every sales variant ends in support, so a support queue
# ending in sales is a loop (refused).
VARIANTS = (
    SALES,
    dataclasses.replace(SALES, skills="sales>=30 | support>=60", ring_timeout=6, wrap_up_seconds=0,
                        max_wait_seconds=90, announce_first_after=None,
                        overflow=(OverflowStep(10, add_queues=("support",)),)),
    dataclasses.replace(SALES, skills="sales>=95", strategy=Strategy.MOST_SKILLED, max_wait_seconds=None,
                        announce_first_after=5, announce_every=10,
                        overflow=(OverflowStep(5, lower_thresholds={"sales": 50}),
                                  OverflowStep(15, lower_thresholds={"sales": 20}),
                                  OverflowStep(70, add_skills="support"))),
    dataclasses.replace(SALES, skills="nobody"),  # its waiting calls go to support at once
    SUPPORT,
    dataclasses.replace(SUPPORT, skills="support>=60", weight=0.5, max_wait_seconds=60,
                        final_action=Disposition(DispositionKind.MESSAGE_HANGUP),
                        overflow=(OverflowStep(10, add_queues=("sales",)), OverflowStep(25, add_skills="sales>=30"))),
    dataclasses.replace(SUPPORT, skills="support | sales>=80", strategy=Strategy.ROUND_ROBIN, overflow=(),
                        max_wait_seconds=None, callback=CallbackPolicy(max_attempts=1)),
)
REFUSED = (
    QueueSettings("ghost", "support"),
    dataclasses.replace(SUPPORT, overflow=(OverflowStep(30, add_queues=("ghost",)),)),
    dataclasses.replace(SUPPORT, final_action=Disposition(DispositionKind.QUEUE, "sales")),
)
AGENTS = (AgentSettings("a1", "PJSIP/a1", {"sales": 90}),
          AgentSettings("a2", "PJSIP/a2", {"sales": 40, "support": 50}),
          AgentSettings("a3", "PJSIP/a3", {"support": 70}))
AGENT_IDS = [agent.agent_id for agent in AGENTS]
SKILL_SETS = [{"sales": 90}, {"sales": 40, "support": 50}, {"support": 70}, {}]


@dataclass
class CallModel:
    queue: str
    entered_at: float
    state: str = "waiting"  # waiting, ringing, talking, callback, ended
    agent: str | None = None
    steps_seen: int = 0
    rang_since_entering: bool = False
    changed_at: float = -math.inf  # the last change of its queue's settings
    endings: list[str] = field(default_factory=list)

    def enter(self, queue: str, now: float) -> None:
        """Moved to ``queue``: its overflow plan starts over."""
        self.queue, self.entered_at, self.steps_seen, self.rang_since_entering = queue, now, 0, False


class GlueMachine(RuleBasedStateMachine):
    """Drives an engine the way the glue does: a Tick at every deadline as time goes by."""

    engine: AcdEngine
    now = 0.0

    def send(self, event: Event) -> list[Decision]:
        raise NotImplementedError

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while (deadline := self.engine.next_deadline()) is not None and deadline <= target:
            self.now = deadline
            self.send(Tick())
        self.now = target


class AcdMachine(GlueMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = AcdEngine(AcdSettings(QUEUES, AGENTS))
        self.calls: dict[str, CallModel] = {}
        self.callbacks: dict[str, CallModel] = {}  # callback_id -> the call it came from
        self.finished: dict[str, int] = {}
        self.agent_state = {agent_id: AgentState.LOGGED_OUT for agent_id in AGENT_IDS}
        self.engaged: dict[str, str | None] = dict.fromkeys(AGENT_IDS)
        self.step_after = {queue.name: [step.after_seconds for step in queue.overflow] for queue in QUEUES}
        self.serial = 0

    # --- driving the engine like a glue ---

    def send(self, event: Event) -> list[Decision]:
        decisions = self.engine.handle(event, self.now)
        for decision in decisions:
            self.check(decision)
        self.check_steps_reached()
        return decisions

    def calls_in(self, *states: str) -> list[str]:
        return sorted(call_id for call_id, call in self.calls.items() if call.state in states)

    @initialize()
    def staff(self) -> None:
        for agent_id in AGENT_IDS:
            self.send(AgentLogin(agent_id))

    @rule(seconds=st.floats(0, 60))
    def time_passes(self, seconds: float) -> None:
        self.advance(seconds)

    @rule(queue=st.sampled_from([queue.name for queue in QUEUES]), priority=st.integers(0, 3))
    def call_arrives(self, queue: str, priority: int) -> None:
        self.serial += 1
        call_id = f"c{self.serial}"
        self.calls[call_id] = CallModel(queue, self.now)
        self.send(CallArrived(call_id, queue, priority=priority, caller_number=f"+{self.serial}"))

    @rule(agent_id=st.sampled_from(AGENT_IDS), action=st.sampled_from(
        [AgentLogin, AgentLogout, AgentReady, AgentDeviceBusy, AgentDeviceFree, WrapUpDone]))
    def agent_acts(self, agent_id: str, action: type) -> None:
        self.send(action(agent_id))

    @rule(agent_id=st.sampled_from(AGENT_IDS), reason=st.sampled_from(["break", "lunch"]))
    def agent_not_ready(self, agent_id: str, reason: str) -> None:
        self.send(AgentNotReady(agent_id, reason))

    @rule(agent_id=st.sampled_from(AGENT_IDS), skills=st.sampled_from(SKILL_SETS))
    def skills_change(self, agent_id: str, skills: dict[str, int]) -> None:
        self.send(SetAgentSkills(agent_id, skills))

    @rule(settings=st.sampled_from(VARIANTS))
    def supervisor_changes_a_queue(self, settings: QueueSettings) -> None:
        """A call's steps are those its time in the queue reaches under the new plan: the ones
        not reached yet before fire at the change."""
        steps = self.step_after[settings.name] = [step.after_seconds for step in settings.overflow]
        for call in self.calls.values():
            if call.queue == settings.name:
                reached = sum(1 for after in steps if call.entered_at + after <= self.now)
                call.steps_seen, call.changed_at = min(call.steps_seen, reached), self.now
        self.send(UpdateQueue(settings))

    @rule(settings=st.sampled_from(REFUSED))
    def supervisor_change_is_refused(self, settings: QueueSettings) -> None:
        before = self.engine.next_deadline(), [self.engine.waiting_calls(queue.name) for queue in QUEUES]
        with pytest.raises(AcdError):
            self.send(UpdateQueue(settings))
        assert (self.engine.next_deadline(), [self.engine.waiting_calls(queue.name) for queue in QUEUES]) == before

    @precondition(lambda self: self.calls_in("ringing"))
    @rule(data=st.data())
    def agent_answers(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(self.calls_in("ringing")))
        agent_id = self.calls[call_id].agent
        decisions = self.send(OfferAccepted(call_id, agent_id))
        assert AgentStateChanged(agent_id, AgentState.ON_CALL, "", self.now) in decisions
        self.calls[call_id].state = "talking"

    @precondition(lambda self: self.calls_in("ringing"))
    @rule(data=st.data(), reason=st.sampled_from(["no_answer", "busy", "failed"]))
    def offer_fails(self, data: st.DataObject, reason: str) -> None:
        call_id = data.draw(st.sampled_from(self.calls_in("ringing")))
        call = self.calls[call_id]
        agent_id, call.state, call.agent = call.agent, "waiting", None
        self.send(OfferFailed(call_id, agent_id, reason))
        if reason == "busy":
            self.send(AgentDeviceFree(agent_id))

    @precondition(lambda self: self.calls_in("talking"))
    @rule(data=st.data())
    def talk_ends(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(self.calls_in("talking")))
        self.send(CallCompleted(call_id))
        if call_id in self.callbacks:  # a callback's CallEnded came when it became one
            self.calls[call_id].state = "finished"

    @precondition(lambda self: self.calls_in("waiting", "ringing"))
    @rule(data=st.data())
    def caller_hangs_up(self, data: st.DataObject) -> None:
        self.send(CallAbandoned(data.draw(st.sampled_from(self.calls_in("waiting", "ringing")))))

    @precondition(lambda self: self.calls_in("waiting"))
    @rule(data=st.data(), priority=st.integers(0, 3), queue=st.sampled_from([queue.name for queue in QUEUES]))
    def supervisor_acts(self, data: st.DataObject, priority: int, queue: str) -> None:
        call_id = data.draw(st.sampled_from(self.calls_in("waiting")))
        self.send(SetCallPriority(call_id, priority))
        call = self.calls[call_id]
        if call.queue != queue:
            call.enter(queue, self.now)
        self.send(MoveCall(call_id, queue))

    @precondition(lambda self: self.calls_in("waiting"))
    @rule(data=st.data())
    def caller_asks_for_a_callback(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(self.calls_in("waiting")))
        self.send(CallbackRequested(call_id, "+1555"))
        self.callbacks[call_id] = self.calls[call_id]

    @precondition(lambda self: self.dialling())
    @rule(data=st.data(), outcome=st.sampled_from(["answered", "busy", "no_answer", "failed"]))
    def callback_dial_ends(self, data: st.DataObject, outcome: str) -> None:
        callback_id = data.draw(st.sampled_from(self.dialling()))
        self.callbacks[callback_id].agent = None
        self.send(CallbackResult(callback_id, outcome))

    def dialling(self) -> list[str]:
        return sorted(callback_id for callback_id, call in self.callbacks.items() if call.agent is not None
                      and call.state == "callback")

    # --- the checks ---

    def check(self, decision: Decision) -> None:
        checker = getattr(self, f"on_{type(decision).__name__}", None)
        if checker is not None:
            checker(decision)

    def check_steps_reached(self) -> None:
        for call_id in self.calls_in("waiting"):
            call = self.calls[call_id]
            due = sum(1 for after in self.step_after[call.queue] if call.entered_at + after <= self.now)
            assert call.steps_seen == due, f"{call_id} reached {call.steps_seen} steps of the {due} due"

    def on_AgentStateChanged(self, change: AgentStateChanged) -> None:
        if change.state is AgentState.RESERVED:
            assert self.agent_state[change.agent_id] is AgentState.AVAILABLE
            assert self.engaged[change.agent_id] is None, "an agent got two calls"
        if change.state in (AgentState.AVAILABLE, AgentState.NOT_READY, AgentState.LOGGED_OUT):
            self.engaged[change.agent_id] = None
        self.agent_state[change.agent_id] = change.state

    def on_Offer(self, offer: Offer) -> None:
        call = self.calls[offer.call_id]
        assert call.state == "waiting", f"{offer.call_id} offered while {call.state}"
        assert self.agent_state[offer.agent_id] is AgentState.RESERVED
        assert self.engaged[offer.agent_id] is None
        self.engaged[offer.agent_id] = offer.call_id
        call.state, call.agent, call.rang_since_entering = "ringing", offer.agent_id, True

    def on_CallbackDial(self, dial: CallbackDial) -> None:
        call = self.callbacks[dial.callback_id]
        assert call.state == "callback" and call.agent is None
        assert self.engaged[dial.agent_id] is None
        self.engaged[dial.agent_id] = dial.callback_id
        call.agent, call.rang_since_entering = dial.agent_id, True

    def on_CancelOffer(self, cancel: CancelOffer) -> None:
        call = self.calls[cancel.call_id]
        assert call.agent == cancel.agent_id
        call.agent = None
        if call.state == "ringing":
            call.state = "waiting"

    def on_CallbackFinished(self, finished: CallbackFinished) -> None:
        assert finished.callback_id not in self.finished, "a callback finished twice"
        self.finished[finished.callback_id] = finished.attempts
        self.callbacks[finished.callback_id].state = "talking" if finished.outcome == "answered" else "finished"

    def on_Overflowed(self, step: Overflowed) -> None:
        call = self.calls[step.call_id]
        assert call.state in ("waiting", "callback") and step.step_index == call.steps_seen
        due = call.entered_at + self.step_after[call.queue][step.step_index]
        assert self.now >= due
        if not call.rang_since_entering:
            due = max(due, call.changed_at)  # a change that reaches it makes it due at once
            assert self.now == due, f"step {step.step_index} of {step.call_id} due at {due}, fired at {self.now}"
        call.steps_seen += 1

    def on_FinalAction(self, action: FinalAction) -> None:
        call = self.calls[action.call_id]
        assert call.state == "waiting"
        if action.kind is DispositionKind.QUEUE:
            call.enter(action.target, self.now)
        elif action.kind is DispositionKind.CALLBACK:
            self.callbacks[action.call_id] = call

    def on_Announce(self, announce: Announce) -> None:
        assert self.calls[announce.call_id].state == "waiting"

    def on_PreQueueRejected(self, rejected: PreQueueRejected) -> None:
        assert self.calls[rejected.call_id].state == "waiting"

    def on_CallEnded(self, ended: CallEnded) -> None:
        call = self.calls[ended.call_id]
        assert not call.endings, f"{ended.call_id} ended twice: {call.endings} then {ended.outcome}"
        call.endings.append(ended.outcome)
        call.state = "callback" if ended.outcome == "callback" else "ended"
        call.agent = None

    def teardown(self) -> None:
        """Hang up every call still in the ACD: each must then have ended exactly once."""
        for call_id in self.calls_in("talking"):
            self.send(CallCompleted(call_id))
        for call_id in self.calls_in("waiting", "ringing"):
            self.send(CallAbandoned(call_id))
        assert all(len(call.endings) == 1 for call in self.calls.values())


AcdMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestAcdInvariants = AcdMachine.TestCase


class OrderMachine(GlueMachine):
    """One queue, interchangeable agents: offers must follow (priority, arrival)."""

    def __init__(self) -> None:
        super().__init__()
        agents = tuple(AgentSettings(f"a{n}", f"PJSIP/a{n}", {"s": 50}) for n in range(3))
        self.engine = AcdEngine(AcdSettings((QueueSettings("q", "s", ring_timeout=5),), agents))
        self.keys: dict[str, tuple[int, float, int]] = {}  # call -> (-priority, arrival, serial)
        self.waiting: set[str] = set()
        self.ringing: dict[str, str] = {}
        self.talking: list[str] = []
        self.serial = 0

    def send(self, event: Event) -> list[Decision]:
        decisions = self.engine.handle(event, self.now)
        for decision in decisions:
            if isinstance(decision, Offer):
                best = min(self.waiting, key=self.keys.__getitem__)
                assert decision.call_id == best, f"offered {decision.call_id}, {best} should go first"
                self.waiting.remove(decision.call_id)
                self.ringing[decision.call_id] = decision.agent_id
            elif isinstance(decision, CancelOffer):  # a ring timed out: back to the head
                del self.ringing[decision.call_id]
                self.waiting.add(decision.call_id)
        return decisions

    @initialize()
    def staff(self) -> None:
        for n in range(3):
            self.send(AgentLogin(f"a{n}"))

    @rule(priority=st.integers(0, 2), seconds=st.floats(0, 20))
    def call_arrives(self, priority: int, seconds: float) -> None:
        self.advance(seconds)  # rings may time out on the way
        self.serial += 1
        call_id = f"c{self.serial}"
        self.keys[call_id] = (-priority, self.now, self.serial)
        self.waiting.add(call_id)
        self.send(CallArrived(call_id, "q", priority=priority))

    @rule(ring_timeout=st.sampled_from([3, 5, 8]), strategy=st.sampled_from(Strategy), weight=st.sampled_from([1, 3]))
    def queue_changes(self, ring_timeout: float, strategy: Strategy, weight: float) -> None:
        self.send(UpdateQueue(QueueSettings("q", "s", ring_timeout=ring_timeout, strategy=strategy, weight=weight)))

    @rule(agent=st.integers(0, 2), ready=st.booleans())
    def agent_toggles(self, agent: int, ready: bool) -> None:
        self.send(AgentReady(f"a{agent}") if ready else AgentNotReady(f"a{agent}", "x"))

    @precondition(lambda self: self.ringing)
    @rule(data=st.data(), answer=st.booleans())
    def ring_ends(self, data: st.DataObject, answer: bool) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.ringing)))
        agent_id = self.ringing.pop(call_id)
        if answer:
            self.talking.append(call_id)
            self.send(OfferAccepted(call_id, agent_id))
        else:  # back to the head: it keeps its priority and arrival time
            self.waiting.add(call_id)
            self.send(OfferFailed(call_id, agent_id, "no_answer"))

    @precondition(lambda self: self.talking)
    @rule()
    def talk_ends(self) -> None:
        self.send(CallCompleted(self.talking.pop(0)))


OrderMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestOfferOrder = OrderMachine.TestCase
