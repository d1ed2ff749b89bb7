"""The ACD engine: events and a clock value in, decisions out. Pure and deterministic.

    engine = AcdEngine(settings)
    decisions = engine.handle(event, now)      # now: monotonic float seconds, never decreasing
    engine.next_deadline()                     # call handle(Tick(), t) at t; None: nothing pending

No I/O, no wall clock, no randomness: the same settings and the same (event, now) sequence give
the same decisions, which is what lets ``acd.sim`` run it thousands of times faster than real time.

Routing is event-driven and work-conserving. Whenever a call becomes routable (arrival, a ring
that fell through, an overflow step, a move) it is offered at once to the best free agent able to
take it; whenever an agent becomes free (ready, wrap-up over, device free) it takes at once the
best call it may take. So a free agent never waits while a call it could take waits (there is no
retry timer to sit out, unlike app_queue), and an agent who does not answer is made not_ready and
cannot hold calls back from the others.

Which call a freed agent takes, across every queue it serves: the highest priority first (a
customer tier is a business promise and holds across queues); among equal priorities the longest
*weighted* wait, ``queue weight x seconds waited``. Weighting the wait, rather than multiplying
the priority (priority x weight is 0 for every standard caller, and mixes tiers with queues),
reads as "a second in a weight-2 queue counts as two": a queue with a tighter service-level
target is served as if its callers had waited longer, yet nobody is starved because every wait
keeps growing. Within one queue the order is plain (priority, arrival time).

Deadlines (ring timeouts, wrap-up ends, overflow steps, max waits, announcements, callback
retries) live in one heap, one live entry per agent or call. ``handle`` fires every deadline due
by ``now`` before applying the event (a ring that timed out at 15 s has timed out even if the
answer is reported at 15.2 s), and again after it. An event refused with AcdError changes
nothing itself, but the deadlines fired before it did: their decisions come out of the next
``handle`` call, which ``next_deadline`` asks for at once.

Queue settings can change live (UpdateQueue): the plans are rebuilt from the new set of settings,
and the calls and agents are filed into the new routing classes as if they had always been
there, then routed, so the invariant of ``acd.routing`` holds again before the next event.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
from acd.ewt import expected_wait
from acd.model import AcdError, AcdSettings, AgentState, DispositionKind, QueueSettings
from acd.overflow import build_plans
from acd.routing import Agent, Call, CallState, QueuePlan, RoutingClass, RoutingIndex
from acd.stats import RECENT, TODAY, AcdStats, AgentFigures, CallFigures

NO_ANSWER = "no answer"
OFFER_FAILED = "offer failed"
LOGGED_IN = "logged in"
BUSY_STATES = (AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP)
OFFER_FAILURES = ("no_answer", "busy", "failed")
CALLBACK_FAILURES = ("busy", "no_answer", "failed")


@dataclass(frozen=True)
class QueueSnapshot:
    queue: str
    waiting: int
    longest_wait: float
    expected_wait: float | None  # for a call arriving now
    agents_by_state: dict[str, int]
    recent: CallFigures  # the sliding window (stats_window_seconds)
    today: CallFigures


@dataclass(frozen=True)
class WaitingCallSnapshot:
    call_id: str
    queue: str
    position: int  # 1: the next to be served in its queue
    priority: int
    waited: float  # since the first arrival, kept across moves
    overflow_level: int
    callback: bool
    state: str  # waiting, offered (an agent rings), retry_wait (a callback between attempts)


@dataclass(frozen=True)
class AgentSnapshot:
    agent_id: str
    state: AgentState
    reason: str
    since: float
    recent: AgentFigures
    today: AgentFigures


class _Deadlines:
    """A heap of (when, seq, generation, owner); an entry is live while its generation is the
    owner's current one, so rescheduling is a push and a counter bump, never a search."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Agent | Call]] = []
        self._seq = 0

    def set(self, owner: Agent | Call, when: float | None) -> None:
        owner.timer_generation += 1
        if when is not None:
            self._seq += 1
            heapq.heappush(self._heap, (when, self._seq, owner.timer_generation, owner))

    def next(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2] != heap[0][3].timer_generation:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> Agent | Call | None:
        heap = self._heap
        while heap:
            when, _, generation, owner = heap[0]
            if generation != owner.timer_generation:
                heapq.heappop(heap)  # superseded by a later set()
            elif when > now:
                return None
            else:
                heapq.heappop(heap)
                owner.timer_generation += 1
                return owner
        return None


class AcdEngine:
    def __init__(self, settings: AcdSettings) -> None:
        if not 0 < settings.aht_smoothing <= 1:
            raise AcdError(f"aht_smoothing: expected 0 < value <= 1, got {settings.aht_smoothing}")
        self._settings = settings
        self._plans = build_plans(settings.queues)
        self._index = RoutingIndex(list(self._plans.values()))
        self._agents: dict[str, Agent] = {}
        for order, agent in enumerate(settings.agents):
            if agent.agent_id in self._agents:
                raise AcdError(f"agent {agent.agent_id!r} is defined twice")
            self._agents[agent.agent_id] = Agent(agent.agent_id, agent.interface, order, dict(agent.skills))
        self._calls: dict[str, Call] = {}
        self._deadlines = _Deadlines()
        self.stats = AcdStats((plan.settings for plan in self._plans.values()), self._agents,
                              settings.stats_window_seconds, settings.day_start)
        self._now = -math.inf
        self._day: float | None = None
        self._call_seq = 0
        self._offer_seq = 0
        self._out: list[Decision] = []
        self._carried: list[Decision] = []
        self._handlers: dict[type, Callable] = {
            AgentLogin: self._on_login, AgentLogout: self._on_logout, AgentReady: self._on_ready,
            AgentNotReady: self._on_not_ready, AgentDeviceBusy: self._on_device_busy,
            AgentDeviceFree: self._on_device_free, WrapUpDone: self._on_wrap_up_done,
            SetAgentSkills: self._on_set_skills, CallArrived: self._on_arrived,
            CallAbandoned: self._on_abandoned, OfferAccepted: self._on_accepted,
            OfferFailed: self._on_offer_failed, CallCompleted: self._on_completed,
            CallbackRequested: self._on_callback_requested, CallbackResult: self._on_callback_result,
            MoveCall: self._on_move, SetCallPriority: self._on_set_priority,
            UpdateQueue: self._on_update_queue, Tick: lambda event: None,
        }

    # --- public API ---

    def handle(self, event: Event, now: float) -> list[Decision]:
        if now < self._now:
            raise AcdError(f"the clock went backwards: {now} after {self._now}")
        handler = self._handlers.get(type(event))
        if handler is None:
            raise AcdError(f"not an ACD event: {event!r}")
        self._now = now
        self._out, self._carried = self._carried, []
        self._check_day()
        self._fire_due_deadlines()
        try:
            handler(event)
        except AcdError:
            # The deadlines that fired have changed state already: their decisions must not be
            # lost with the refused event, so the next call returns them (next_deadline: now).
            self._carried = self._out
            raise
        self._fire_due_deadlines()
        return self._out

    def next_deadline(self) -> float | None:
        return self._now if self._carried else self._deadlines.next()

    def check_queue(self, settings: QueueSettings) -> None:
        """Raise AcdError if UpdateQueue(settings) would be refused; changes nothing."""
        self._plans_with(settings)

    def agent_state(self, agent_id: str) -> AgentState:
        return self._agent(agent_id).state

    def waiting_calls(self, queue: str) -> list[str]:
        """The queue's waiting calls (callbacks included), next first."""
        return [call.call_id for call in self._plan(queue).waiting_calls()]

    def expected_wait(self, queue: str) -> float | None:
        plan = self._plan(queue)
        return self._expected_wait(plan, plan.waiting_count() + 1)

    def queue_snapshot(self, queue: str, now: float) -> QueueSnapshot:
        plan = self._plan(queue)
        staff = plan.own_class.members.values()
        by_state: dict[str, int] = {}
        for agent in staff:
            by_state[agent.state] = by_state.get(agent.state, 0) + 1
        staff_ids = [agent.agent_id for agent in staff]
        waits = [now - call.arrived_at for call in plan.waiting_calls() if call.callback_number is None]
        return QueueSnapshot(queue, plan.waiting_count(), max(waits, default=0.0), self.expected_wait(queue),
                             by_state, self.stats.queue_figures(queue, staff_ids, RECENT, now),
                             self.stats.queue_figures(queue, staff_ids, TODAY, now))

    def waiting_snapshot(self, queue: str, now: float) -> list[WaitingCallSnapshot]:
        """The queue's calls not yet answered, next first: those waiting, then those ringing."""
        plan = self._plan(queue)
        waiting = plan.waiting_calls()
        ringing = [call for call in self._calls.values() if call.plan is plan and call.entry is None
                   and call.state is not CallState.TALKING]
        return [WaitingCallSnapshot(call.call_id, queue, position, call.priority, now - call.arrived_at, call.level,
                                    call.callback_number is not None, str(call.state))
                for position, call in enumerate([*waiting, *ringing], start=1)]

    def position(self, call_id: str) -> int | None:
        """1 for the next call to be served in its queue; None when it is not waiting."""
        call = self._calls.get(call_id)
        return call.plan.position(call.entry) if call is not None and call.entry is not None else None

    def rings(self) -> dict[str, str]:
        """call_id -> agent_id of every offer whose phone is ringing (callbacks' dials aside)."""
        return {call.call_id: call.agent.agent_id for call in self._calls.values()
                if call.state is CallState.OFFERED and call.callback_number is None}

    def ringing_agent(self, call_id: str) -> str | None:
        """The agent whose phone rings for ``call_id``, if an offer of it is ringing."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.OFFERED or call.callback_number is not None:
            return None
        return call.agent.agent_id

    def agent_call(self, agent_id: str) -> str | None:
        """The call the agent is reserved for, talking on or wrapping up."""
        call = self._agent(agent_id).call
        return call.call_id if call is not None else None

    def agent_snapshot(self, agent_id: str, now: float) -> AgentSnapshot:
        agent = self._agent(agent_id)
        return AgentSnapshot(agent_id, agent.state, agent.reason, agent.since,
                             self.stats.agent_figures(agent_id, RECENT, now),
                             self.stats.agent_figures(agent_id, TODAY, now))

    # --- lookups ---

    def _agent(self, agent_id: str) -> Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise AcdError(f"no agent {agent_id!r} in the settings") from None

    def _plan(self, queue: str) -> QueuePlan:
        try:
            return self._plans[queue]
        except KeyError:
            raise AcdError(f"no queue {queue!r} in the settings") from None

    def _offered_to(self, call_id: str, agent: Agent) -> Call | None:
        """The call if it is currently offered to (or dialling for) this agent; else None (stale)."""
        call = self._calls.get(call_id)
        return call if call is not None and call.state is CallState.OFFERED and call.agent is agent else None

    # --- deadlines ---

    def _fire_due_deadlines(self) -> None:
        while (owner := self._deadlines.pop_due(self._now)) is not None:
            if isinstance(owner, Agent):
                self._agent_deadline(owner)
            else:
                self._call_deadline(owner)

    def _agent_deadline(self, agent: Agent) -> None:
        if agent.state is AgentState.RESERVED:
            self._out.append(CancelOffer(agent.call.call_id, agent.agent_id))
            self._offer_fell_through(agent, "no_answer")
        elif agent.state is AgentState.WRAP_UP:
            self._end_wrap_up(agent)

    def _call_deadline(self, call: Call) -> None:
        if call.state is CallState.RETRY_WAIT:
            call.state, call.retry_at = CallState.WAITING, None
            self._route_call(call)
        elif call.state is CallState.WAITING:
            self._waiting_call_deadline(call)
        self._schedule(call)

    def _waiting_call_deadline(self, call: Call) -> None:
        plan, now = call.plan, self._now
        final_at = plan.final_action_at(call)
        if call.callback_number is None and final_at is not None and final_at <= now:
            self._index.remove_waiting(call)
            self._final_action(call)
            return
        step_at = plan.next_step_at(call)
        if step_at is not None and step_at <= now:
            self._index.remove_waiting(call)
            while step_at is not None and step_at <= now:
                call.level += 1
                self._out.append(Overflowed(call.call_id, call.level - 1))
                step_at = plan.next_step_at(call)
            self._route_call(call)
        announce_at = call.next_announce_at
        if call.state is CallState.WAITING and announce_at is not None and announce_at <= now:
            position = plan.position(call.entry)
            self._out.append(Announce(call.call_id, position, self._expected_wait(plan, position)))
            every = plan.settings.announce_every
            call.next_announce_at = None if every is None else now + every

    def _schedule(self, call: Call) -> None:
        """One live deadline per call: the earliest of what applies to it in its state."""
        if call.state is CallState.RETRY_WAIT:
            self._deadlines.set(call, call.retry_at)
            return
        candidates = []
        if call.state is CallState.WAITING:
            candidates.append(call.plan.next_step_at(call))
            if call.callback_number is None:
                candidates += [call.plan.final_action_at(call), call.next_announce_at]
        self._deadlines.set(call, min((when for when in candidates if when is not None), default=None))

    # --- agent state ---

    def _set_state(self, agent: Agent, state: AgentState, reason: str = "") -> None:
        agent.state, agent.reason, agent.since = state, reason, self._now
        self._deadlines.set(agent, None)
        self.stats.record_state(agent.agent_id, state, self._now)
        self._out.append(AgentStateChanged(agent.agent_id, state, reason, self._now))

    def _make_available(self, agent: Agent) -> None:
        """Back from not_ready or from a call: idle from now on, and routed at once."""
        agent.idle_since = self._now
        self._set_state(agent, AgentState.AVAILABLE)
        self._route_agent(agent)

    def _release_reservation(self, agent: Agent) -> None:
        """The offer ended through no fault of the agent: available again, its idle time kept."""
        agent.call = None
        self._set_state(agent, AgentState.AVAILABLE)
        self._route_agent(agent)

    def _check_day(self) -> None:
        """A new day zeroes the calls_today of the fewest_calls strategy: re-file the free agents
        under their new keys (once a day)."""
        day = self._settings.day_start(self._now)
        if day == self._day:
            return
        self._day = day
        for agent in self._agents.values():
            if agent.free_entries:
                self._index.remove_free(agent)
                self._refresh_calls_today(agent)
                self._index.add_free(agent)

    def _refresh_calls_today(self, agent: Agent) -> None:
        if agent.calls_day != self._day:
            agent.calls_day, agent.calls_today = self._day, 0

    # --- routing ---

    def _route_agent(self, agent: Agent) -> None:
        """An agent became free: it takes the best call it may take, or joins the free lists."""
        if agent.state is not AgentState.AVAILABLE or agent.device_busy or agent.free_entries:
            return
        call = self._index.best_call_for(agent, self._now)
        if call is None:
            self._refresh_calls_today(agent)
            self._index.add_free(agent)
            return
        self._index.remove_waiting(call)
        self._reserve(agent, call)

    def _route_call(self, call: Call) -> None:
        """A call became routable: the best free agent of its class takes it, or it waits."""
        agent = self._index.best_agent_for(call)
        if agent is None:
            self._index.add_waiting(call)
        else:
            self._reserve(agent, call)

    def _reserve(self, agent: Agent, call: Call) -> None:
        self._index.remove_free(agent)
        self._offer_seq += 1
        agent.last_offer_seq, agent.call, agent.busy_since = self._offer_seq, call, self._now
        call.state, call.agent = CallState.OFFERED, agent
        self._deadlines.set(call, None)  # its own timers wait while an agent is reserved
        self._set_state(agent, AgentState.RESERVED)
        if call.callback_number is not None:
            call.attempts += 1
            self._out.append(CallbackDial(call.call_id, agent.agent_id, call.callback_number, call.attempts,
                                           call.plan.name))
            return
        ring_timeout = call.plan.settings.ring_timeout
        self._out.append(Offer(call.call_id, agent.agent_id, agent.interface, ring_timeout, call.plan.name,
                               self._now - call.arrived_at, call.data))
        self._deadlines.set(agent, self._now + ring_timeout)

    def _return_to_queue(self, call: Call) -> None:
        """An offer fell through: the call goes back where its arrival time puts it (the head,
        unless a higher priority call came meanwhile), and is routed again at once."""
        call.state, call.agent = CallState.WAITING, None
        self._route_call(call)
        self._schedule(call)

    def _withdraw_offer(self, agent: Agent) -> None:
        """The agent leaves while reserved (logout, not ready): stop the ring, requeue the call."""
        call = agent.call
        agent.call = None
        self._out.append(CancelOffer(call.call_id, agent.agent_id))
        self._return_to_queue(call)

    def _offer_fell_through(self, agent: Agent, reason: str) -> None:
        call = agent.call
        agent.call = None
        if reason == "no_answer":
            self._set_state(agent, AgentState.NOT_READY, NO_ANSWER)
        elif reason == "busy":
            agent.device_busy = True
            self._set_state(agent, AgentState.AVAILABLE)
        else:
            self._set_state(agent, AgentState.NOT_READY, OFFER_FAILED)
        self._return_to_queue(call)

    # --- agent events ---

    def _on_login(self, event: AgentLogin) -> None:
        agent = self._agent(event.agent_id)
        if agent.state is AgentState.LOGGED_OUT:
            self._index.attach(agent)
            self._set_state(agent, AgentState.NOT_READY, LOGGED_IN)

    def _on_logout(self, event: AgentLogout) -> None:
        agent = self._agent(event.agent_id)
        if agent.state is AgentState.LOGGED_OUT:
            return
        if agent.state is AgentState.WRAP_UP:
            self._record_handled(agent.call, agent, self._handle_seconds(agent))
        was_reserved = agent.state is AgentState.RESERVED
        agent.not_ready_after_call = None
        self._set_state(agent, AgentState.LOGGED_OUT)
        if was_reserved:
            self._withdraw_offer(agent)
        agent.call = None  # a call being talked goes on: its CallCompleted is only counted
        self._leave_classes(agent)

    def _on_ready(self, event: AgentReady) -> None:
        agent = self._agent(event.agent_id)
        if agent.state is AgentState.NOT_READY:
            self._make_available(agent)
        elif agent.state in (AgentState.ON_CALL, AgentState.WRAP_UP):
            agent.not_ready_after_call = None

    def _on_not_ready(self, event: AgentNotReady) -> None:
        agent = self._agent(event.agent_id)
        if agent.state in (AgentState.ON_CALL, AgentState.WRAP_UP):
            agent.not_ready_after_call = event.reason
        elif agent.state is AgentState.RESERVED:
            self._set_state(agent, AgentState.NOT_READY, event.reason)
            self._withdraw_offer(agent)
        elif agent.state in (AgentState.AVAILABLE, AgentState.NOT_READY):
            self._index.remove_free(agent)
            self._set_state(agent, AgentState.NOT_READY, event.reason)

    def _on_device_busy(self, event: AgentDeviceBusy) -> None:
        agent = self._agent(event.agent_id)
        agent.device_busy = True
        self._index.remove_free(agent)

    def _on_device_free(self, event: AgentDeviceFree) -> None:
        agent = self._agent(event.agent_id)
        agent.device_busy = False
        self._route_agent(agent)

    def _on_wrap_up_done(self, event: WrapUpDone) -> None:
        agent = self._agent(event.agent_id)
        if agent.state is AgentState.WRAP_UP:
            self._end_wrap_up(agent)

    def _on_set_skills(self, event: SetAgentSkills) -> None:
        agent = self._agent(event.agent_id)
        if agent.state is AgentState.LOGGED_OUT:
            agent.skills = dict(event.skills)
            return
        old_classes = agent.classes
        self._index.remove_free(agent)
        self._index.detach(agent)
        agent.skills = dict(event.skills)
        self._index.attach(agent)
        self._end_hopeless_waits(old_classes)
        self._route_agent(agent)

    def _leave_classes(self, agent: Agent) -> None:
        classes = agent.classes
        self._index.remove_free(agent)
        self._index.detach(agent)
        self._end_hopeless_waits(classes)

    def _end_hopeless_waits(self, classes: list[RoutingClass]) -> None:
        for klass in classes:
            plan = self._plans[klass.queue.name]
            if klass is plan.broadest_class:
                self._end_hopeless_wait(plan)

    def _end_hopeless_wait(self, plan: QueuePlan) -> None:
        """Calls of a queue whose broadest level no logged-in agent matches any more will never
        be answered: their final action runs now (callbacks wait for someone to log in)."""
        if plan.broadest_class.members:
            return
        for call in plan.waiting_calls():
            if call.callback_number is None:
                self._index.remove_waiting(call)
                self._final_action(call)

    # --- calls ---

    def _on_arrived(self, event: CallArrived) -> None:
        if event.call_id in self._calls:
            raise AcdError(f"call {event.call_id!r} arrived twice")
        plan = self._plan(event.queue)
        priority = event.priority
        if priority is None:
            priority = self._settings.tier_priorities.get(event.customer_tier, 0)
        reason = self._rejection(plan, priority)
        if reason is not None:
            self.stats.record_rejected(plan.name, self._now)
            self._out += [PreQueueRejected(event.call_id, plan.name, reason),
                          CallEnded(event.call_id, plan.name, "rejected")]
            return
        call = self._new_call(event.call_id, plan, priority)
        call.caller_number, call.data = event.caller_number, event.data
        self._enter_queue(call, plan)

    def _new_call(self, call_id: str, plan: QueuePlan, priority: int) -> Call:
        self._call_seq += 1
        call = Call(call_id, plan, priority, self._now, self._call_seq, self._now)
        self._calls[call_id] = call
        return call

    def _rejection(self, plan: QueuePlan, priority: int) -> str | None:
        settings = plan.settings
        if not self._settings.is_open(plan.name, self._now):
            return "closed"
        if settings.max_waiting is not None and plan.waiting_count() >= settings.max_waiting:
            return "queue_full"
        if not plan.broadest_class.members:
            return "no_agents"
        if settings.ewt_limit_seconds is not None:
            ewt = self._expected_wait(plan, plan.position((-priority, self._now, math.inf)))
            if ewt is not None and ewt > settings.ewt_limit_seconds:
                return "ewt_too_high"
        return None

    def _enter_queue(self, call: Call, plan: QueuePlan) -> None:
        """Arrival, move or final action into ``plan``: the overflow plan starts from now."""
        call.plan, call.level, call.entered_queue_at = plan, 0, self._now
        call.state = CallState.WAITING
        first = plan.settings.announce_first_after
        call.next_announce_at = None if first is None or call.callback_number else self._now + first
        self.stats.record_entered(plan.name, self._now)
        if not plan.broadest_class.members and call.callback_number is None:
            self._final_action(call)
            return
        self._route_call(call)
        self._schedule(call)

    def _final_action(self, call: Call) -> None:
        """The call (already out of the waiting lists) leaves its queue's wait without an agent."""
        plan = call.plan
        action = plan.settings.final_action
        self._deadlines.set(call, None)
        if action.kind is DispositionKind.QUEUE:
            self._out.append(FinalAction(call.call_id, action.kind, action.target))
            self.stats.record_left(plan.name, "moved", self._now)
            self._enter_queue(call, self._plans[action.target])
        elif action.kind is DispositionKind.CALLBACK and call.caller_number:
            self._out.append(FinalAction(call.call_id, action.kind, call.caller_number))
            self._convert_to_callback(call, call.caller_number)
        else:
            # A callback needs a number to dial: an anonymous caller hears the closing message.
            kind = DispositionKind.MESSAGE_HANGUP if action.kind is DispositionKind.CALLBACK else action.kind
            self._out.append(FinalAction(call.call_id, kind, action.target))
            self.stats.record_left(plan.name, "final_action", self._now)
            self._end_call(call, "final_action")

    def _end_call(self, call: Call, outcome: str) -> None:
        self._forget(call)
        self._out.append(CallEnded(call.call_id, call.plan.name, outcome))

    def _forget(self, call: Call) -> None:
        call.state = CallState.ENDED
        del self._calls[call.call_id]
        self._deadlines.set(call, None)

    def _on_abandoned(self, event: CallAbandoned) -> None:
        call = self._calls.get(event.call_id)
        if call is None or call.callback_number is not None:
            return  # already answered and gone, or a callback whose original leg hung up
        if call.state is CallState.WAITING:
            self._index.remove_waiting(call)
        elif call.state is not CallState.OFFERED:
            return  # a talking call ends with CallCompleted
        self.stats.record_abandoned(call.plan.name, self._now - call.arrived_at, self._now)
        agent = call.agent
        if agent is not None:
            self._out.append(CancelOffer(call.call_id, agent.agent_id))
        self._end_call(call, "abandoned")
        if agent is not None:
            self._release_reservation(agent)

    def _on_accepted(self, event: OfferAccepted) -> None:
        agent = self._agent(event.agent_id)
        call = self._offered_to(event.call_id, agent)
        if call is None or call.callback_number is not None:
            return
        self.stats.record_answered(call.plan.name, self._now - call.arrived_at, self._now)
        self._start_talking(agent, call)

    def _start_talking(self, agent: Agent, call: Call) -> None:
        call.state, call.answered_at = CallState.TALKING, self._now
        self._refresh_calls_today(agent)
        agent.calls_today += 1
        self._set_state(agent, AgentState.ON_CALL)

    def _on_offer_failed(self, event: OfferFailed) -> None:
        if event.reason not in OFFER_FAILURES:
            raise AcdError(f"OfferFailed reason: expected one of {OFFER_FAILURES}, got {event.reason!r}")
        agent = self._agent(event.agent_id)
        call = self._offered_to(event.call_id, agent)
        if call is not None and call.callback_number is None:
            self._offer_fell_through(agent, event.reason)

    def _on_completed(self, event: CallCompleted) -> None:
        call = self._calls.get(event.call_id)
        if call is None or call.state is not CallState.TALKING:
            return
        if call.callback_number is None:
            self._end_call(call, "completed")
        else:
            self._forget(call)  # a callback's end was its CallbackFinished
        agent, talk = call.agent, self._now - call.answered_at
        if agent.call is not call:  # the agent logged out during the talk
            self._record_handled(call, agent, talk)
            return
        agent.talk_seconds = talk
        wrap_up = call.plan.settings.wrap_up_seconds
        if wrap_up > 0:
            self._set_state(agent, AgentState.WRAP_UP)
            self._deadlines.set(agent, self._now + wrap_up)
        else:
            self._end_wrap_up(agent)

    def _handle_seconds(self, agent: Agent) -> float:
        """Talk plus the wrap-up so far of the agent's current call."""
        wrap_up = self._now - agent.since if agent.state is AgentState.WRAP_UP else 0.0
        return agent.talk_seconds + wrap_up

    def _record_handled(self, call: Call, agent: Agent, handle_seconds: float) -> None:
        call.plan.handle_time.add(handle_seconds, self._settings.aht_smoothing)
        self.stats.record_handled(call.plan.name, agent.agent_id, handle_seconds, self._now)

    def _end_wrap_up(self, agent: Agent) -> None:
        """The call and its wrap-up (if any) are over: the agent is free, or not ready if asked."""
        self._record_handled(agent.call, agent, self._handle_seconds(agent))
        agent.call = None
        reason, agent.not_ready_after_call = agent.not_ready_after_call, None
        if reason is None:
            self._make_available(agent)
        else:
            self._set_state(agent, AgentState.NOT_READY, reason)

    def _on_move(self, event: MoveCall) -> None:
        call = self._calls.get(event.call_id)
        plan = self._plan(event.queue)
        if call is None or call.state is not CallState.WAITING or call.plan is plan:
            return
        self._index.remove_waiting(call)
        self.stats.record_left(call.plan.name, "moved", self._now)
        self._enter_queue(call, plan)

    def _on_set_priority(self, event: SetCallPriority) -> None:
        call = self._calls.get(event.call_id)
        if call is None:
            return
        # A waiting call is re-filed under its new key. No routing: no free agent can take it,
        # or it would not be waiting.
        waiting = call.state is CallState.WAITING
        if waiting:
            self._index.remove_waiting(call)
        call.priority = event.priority
        if waiting:
            self._index.add_waiting(call)

    # --- queue changes ---

    def _plans_with(self, settings: QueueSettings) -> dict[str, QueuePlan]:
        """Every queue's plan, with ``settings`` in place of the queue of that name. Other queues
        are rebuilt too: their overflow steps may add this queue's agents."""
        self._plan(settings.name)
        return build_plans([settings if name == settings.name else plan.settings
                            for name, plan in self._plans.items()])

    def _on_update_queue(self, event: UpdateQueue) -> None:
        plans = self._plans_with(event.settings)
        for plan in plans.values():
            # What was learnt stays; a queue that has learnt nothing yet takes a new initial value.
            if self._plans[plan.name].handle_time.learnt:
                plan.handle_time = self._plans[plan.name].handle_time
        # The old classes are dropped whole: nothing is filed out of them one by one.
        waiting = [call for call in self._calls.values() if call.state is CallState.WAITING]
        self._plans, self._index = plans, RoutingIndex(list(plans.values()))
        changed = plans[event.settings.name]
        self.stats.update_queue(changed.settings)
        for call in self._held_calls():
            old = call.plan.settings
            call.plan, call.entry = plans[call.plan.name], None
            if call.plan is changed:
                self._refit(call, old)
        self._refile_agents()
        # Best first, as a freed agent ranks them: of several calls that can now reach the same
        # agent, the one it would have picked gets it.
        for call in sorted(waiting, key=lambda call: (-call.priority, call.plan.settings.weight
                                                      * (call.arrived_at - self._now), call.seq)):
            self._route_call(call)
        for plan in plans.values():
            self._end_hopeless_wait(plan)

    def _held_calls(self) -> Iterable[Call]:
        """Every call the engine still refers to: its own, and those whose wrap-up is running."""
        wrapping_up = [agent.call for agent in self._agents.values()
                       if agent.call is not None and agent.call.call_id not in self._calls]
        return [*self._calls.values(), *wrapping_up]

    def _refit(self, call: Call, old: QueueSettings) -> None:
        """A call of the changed queue: its overflow level is what its time in the queue reaches
        under the new steps (a waiting call reaches the new ones now, an offered one when it
        waits again), and announcements start over from its entry if they changed."""
        plan, now = call.plan, self._now
        reached = plan.steps_reached(call, now)
        call.level = min(call.level, reached)
        if call.state is CallState.WAITING:
            self._out += [Overflowed(call.call_id, level) for level in range(call.level, reached)]
            call.level = reached
        settings = plan.settings
        if (old.announce_first_after, old.announce_every) != (settings.announce_first_after, settings.announce_every):
            first = settings.announce_first_after
            call.next_announce_at = (None if first is None or call.callback_number is not None
                                     else max(now, call.entered_queue_at + first))
        self._schedule(call)

    def _refile_agents(self) -> None:
        """Logged-in agents join the new classes they match; free ones are free there (an agent
        who matched no queue before may match one now)."""
        for agent in self._agents.values():
            agent.classes, agent.free_entries = [], []
            if agent.state is not AgentState.LOGGED_OUT:
                self._index.attach(agent)
            if agent.state is AgentState.AVAILABLE and not agent.device_busy:
                self._refresh_calls_today(agent)
                self._index.add_free(agent)

    # --- callbacks ---

    def _on_callback_requested(self, event: CallbackRequested) -> None:
        call = self._calls.get(event.call_id)
        if call is None and event.queue is not None:
            call = self._new_call(event.call_id, self._plan(event.queue), 0)
            call.callback_number = event.number
            self._route_call(call)
            self._schedule(call)
        elif call is not None and call.state is CallState.WAITING and call.callback_number is None:
            self._index.remove_waiting(call)
            self._convert_to_callback(call, event.number)

    def _convert_to_callback(self, call: Call, number: str) -> None:
        """The caller hangs up but keeps their place: same arrival time, same overflow level."""
        self.stats.record_left(call.plan.name, "callback", self._now)
        self._out.append(CallEnded(call.call_id, call.plan.name, "callback"))
        call.callback_number, call.next_announce_at = number, None
        call.state = CallState.WAITING
        self._route_call(call)
        self._schedule(call)

    def _on_callback_result(self, event: CallbackResult) -> None:
        if event.outcome != "answered" and event.outcome not in CALLBACK_FAILURES:
            raise AcdError(f"CallbackResult outcome: expected answered or one of {CALLBACK_FAILURES}, "
                           f"got {event.outcome!r}")
        call = self._calls.get(event.callback_id)
        if call is None or call.callback_number is None or call.state is not CallState.OFFERED:
            return
        agent = call.agent
        if event.outcome == "answered":
            self._out.append(CallbackFinished(call.call_id, "answered", call.attempts))
            self._start_talking(agent, call)
            return
        policy = call.plan.settings.callback
        if call.attempts >= policy.max_attempts:
            self._forget(call)
            self._out.append(CallbackFinished(call.call_id, event.outcome, call.attempts))
        else:
            call.state, call.agent = CallState.RETRY_WAIT, None
            call.retry_at = self._now + policy.retry_after(event.outcome)
            self._schedule(call)
        self._release_reservation(agent)

    # --- expected wait ---

    def _expected_wait(self, plan: QueuePlan, position: int) -> float | None:
        staff = plan.own_class
        busy_elapsed = [self._now - agent.busy_since for agent in staff.members.values()
                        if agent.state in BUSY_STATES]
        return expected_wait(position, len(staff.free), busy_elapsed, plan.handle_time.seconds)
