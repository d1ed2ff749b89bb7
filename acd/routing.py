"""The routing index: who may take what, kept so that each decision touches a handful of lists.

A *routing class* is one queue at one overflow level: its calls share a requirement, a strategy
and a weight. Every class keeps

- ``waiting``: its waiting calls, sorted by (-priority, arrival time, sequence): index 0 is next;
- ``free``: the free agents able to take them, sorted by the queue's strategy: index 0 rings next;
- ``members``: the logged-in agents it admits, whatever their state (staffing for EWT and the
  "no agent logged in" check).

A logged-in agent knows the classes it matches. They are found once, at login or on a skill
change, through an anchor index (requirement filed under skills every matching agent must have
one of), so an agent is tested only against the requirements that mention its skills.

The engine keeps one invariant: no class has a waiting call and a free agent at the same time.
Hence a call that becomes routable only looks at the head of its own class's free list, and an
agent that becomes free only compares the heads of the waiting lists of its classes; nothing
scans all calls or all agents. Lists are kept sorted with bisect (a memmove, microseconds here).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from acd.ewt import HandleTimeAverage
from acd.model import AgentState, QueueSettings, Strategy
from acd.skills import SkillExpr


class CallState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # an agent is reserved for it (ringing, or dialling a callback)
    TALKING = "talking"
    RETRY_WAIT = "retry_wait"  # a callback between two attempts
    ENDED = "ended"


@dataclass(eq=False, slots=True)
class Agent:
    agent_id: str
    interface: str
    order: int  # position in the settings: the last tie-break everywhere, for determinism
    skills: Mapping[str, int]
    state: AgentState = AgentState.LOGGED_OUT
    reason: str = ""
    since: float = 0.0
    device_busy: bool = False
    idle_since: float = 0.0  # longest_idle's key: became available (ready, or its last call done)
    busy_since: float = 0.0  # reserved for its current call: EWT's elapsed handle time
    calls_today: int = 0
    calls_day: float | None = None  # the day start calls_today counts from
    last_offer_seq: int = 0
    call: Call | None = None  # offered, talking or in wrap-up
    talk_seconds: float = 0.0  # of the call in wrap-up
    not_ready_after_call: str | None = None  # reason asked for while busy
    deadline: float | None = None  # ring timeout or wrap-up end
    timer_generation: int = 0
    classes: list[RoutingClass] = field(default_factory=list)
    free_entries: list[tuple[RoutingClass, tuple]] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Call:
    call_id: str
    plan: QueuePlan
    priority: int
    arrived_at: float  # first arrival: ordering, position and service level, kept across moves
    seq: int
    entered_queue_at: float  # arrival in the current queue: overflow steps and max wait
    caller_number: str = ""
    data: Mapping[str, str] = field(default_factory=dict)
    callback_number: str | None = None  # set: a virtual call that dials out when its turn comes
    attempts: int = 0
    state: CallState = CallState.WAITING
    level: int = 0  # overflow steps applied; the call waits in plan.classes[level]
    entry: tuple | None = None  # its key in the waiting list
    agent: Agent | None = None
    next_announce_at: float | None = None
    retry_at: float | None = None
    answered_at: float = 0.0
    timer_generation: int = 0

    @property
    def routing_class(self) -> RoutingClass:
        return self.plan.classes[self.level]


class RoutingClass:
    __slots__ = ("index", "queue", "requirement", "waiting", "free", "members")

    def __init__(self, index: int, queue: QueueSettings, requirement: SkillExpr) -> None:
        self.index = index  # creation order: an agent's classes are scanned in this order
        self.queue = queue
        self.requirement = requirement
        self.waiting: list[tuple] = []
        self.free: list[tuple] = []
        self.members: dict[int, Agent] = {}

    def strategy_key(self, agent: Agent) -> tuple:
        """The agent's place among the class's free agents, smallest first. A key stays true
        while the agent is free (idle time, offers and calls only change when it is not; skills
        and the day's call count are re-keyed when they change). ``order`` is unique, so the
        tuple never compares the Agent itself."""
        strategy = self.queue.strategy
        if strategy is Strategy.MOST_SKILLED:
            return (-self.requirement.score(agent.skills), agent.idle_since, agent.order, agent)
        if strategy is Strategy.FEWEST_CALLS:
            return (agent.calls_today, agent.idle_since, agent.order, agent)
        if strategy is Strategy.ROUND_ROBIN:
            return (agent.last_offer_seq, agent.order, agent)
        return (agent.idle_since, agent.order, agent)


class QueuePlan:
    """One queue: its settings, its classes (level 0 = own requirement, last = broadest)."""

    def __init__(self, settings: QueueSettings, classes: list[RoutingClass]) -> None:
        self.settings = settings
        self.classes = classes
        self.handle_time = HandleTimeAverage(settings.initial_aht_seconds)

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def own_class(self) -> RoutingClass:
        return self.classes[0]

    @property
    def broadest_class(self) -> RoutingClass:
        return self.classes[-1]

    def waiting_count(self) -> int:
        return sum(len(klass.waiting) for klass in self.classes)

    def waiting_calls(self) -> list[Call]:
        entries = sorted(entry for klass in self.classes for entry in klass.waiting)
        return [entry[-1] for entry in entries]

    def position(self, key: tuple) -> int:
        """1-based rank of a waiting-list key among this queue's calls, across its levels."""
        return 1 + sum(bisect.bisect_left(klass.waiting, key) for klass in self.classes)

    def next_step_at(self, call: Call) -> float | None:
        steps = self.settings.overflow
        return call.entered_queue_at + steps[call.level].after_seconds if call.level < len(steps) else None

    def steps_reached(self, call: Call, now: float) -> int:
        """How many of this queue's steps the call's time in it has reached by ``now``."""
        return sum(1 for step in self.settings.overflow if call.entered_queue_at + step.after_seconds <= now)

    def final_action_at(self, call: Call) -> float | None:
        max_wait = self.settings.max_wait_seconds
        return None if max_wait is None else call.entered_queue_at + max_wait


class RoutingIndex:
    """Finds an agent's classes, and files calls and agents in and out of the classes' lists."""

    def __init__(self, plans: list[QueuePlan]) -> None:
        self._by_anchor: dict[str, list[RoutingClass]] = {}
        for plan in plans:
            for klass in plan.classes:
                for skill in sorted(klass.requirement.anchor_skills()):
                    self._by_anchor.setdefault(skill, []).append(klass)

    # --- membership (login, logout, skill change) ---

    def attach(self, agent: Agent) -> None:
        candidates = {klass.index: klass for skill in agent.skills if agent.skills[skill] > 0
                      for klass in self._by_anchor.get(skill, ())}
        agent.classes = [candidates[index] for index in sorted(candidates)
                         if candidates[index].requirement.matches(agent.skills)]
        for klass in agent.classes:
            klass.members[agent.order] = agent

    def detach(self, agent: Agent) -> None:
        for klass in agent.classes:
            del klass.members[agent.order]
        agent.classes = []

    # --- waiting calls ---

    @staticmethod
    def add_waiting(call: Call) -> None:
        # seq is unique, so the tuple never compares the Call itself
        call.entry = (-call.priority, call.arrived_at, call.seq, call)
        bisect.insort(call.routing_class.waiting, call.entry)

    @staticmethod
    def remove_waiting(call: Call) -> None:
        waiting = call.routing_class.waiting
        del waiting[bisect.bisect_left(waiting, call.entry)]
        call.entry = None

    @staticmethod
    def best_call_for(agent: Agent, now: float) -> Call | None:
        """Highest priority first; then the longest wait, each second weighted by its queue."""
        best_rank: tuple | None = None
        best: Call | None = None
        for klass in agent.classes:
            if klass.waiting:
                negative_priority, arrived_at, seq, call = klass.waiting[0]
                rank = (-negative_priority, klass.queue.weight * (now - arrived_at), -seq)
                if best_rank is None or rank > best_rank:
                    best_rank, best = rank, call
        return best

    # --- free agents ---

    @staticmethod
    def add_free(agent: Agent) -> None:
        for klass in agent.classes:
            key = klass.strategy_key(agent)
            bisect.insort(klass.free, key)
            agent.free_entries.append((klass, key))

    @staticmethod
    def remove_free(agent: Agent) -> None:
        for klass, key in agent.free_entries:
            del klass.free[bisect.bisect_left(klass.free, key)]
        agent.free_entries.clear()

    @staticmethod
    def best_agent_for(call: Call) -> Agent | None:
        free = call.routing_class.free
        return free[0][-1] if free else None
