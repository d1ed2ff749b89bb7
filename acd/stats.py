"""Live statistics per queue and per agent, fed by the engine with its own timestamps.

Two windows for every counter: a sliding one (the last ``window_seconds``, 15 min by default)
and "today" (since ``day_start(now)``, an injected function, so the module stays pure). Call
counters are attributed to the moment of the outcome; agent time-in-state is clipped exactly to
each window.

Definitions (per queue; T = the queue's service_level_seconds, S = its short_abandon_seconds):

- offered: calls that entered the queue (past the pre-queue checks, or moved/overflowed into it).
  ``rejected`` counts the pre-queue refusals apart.
- answered: an agent picked up; wait = pickup - first arrival (moves keep the arrival time).
- short_abandoned: the caller hung up within S seconds (misdials, callers who hear the greeting
  and leave). Counted apart and left out of the abandon rate and the service level: no agent
  could have answered them, and the usual definition does not charge them to the queue.
- abandoned: hang-ups after S seconds.
- sl_answered = answered within T / answered (the Erlang C figure).
- sl_offered = answered within T / (answered + abandoned) - callers lost count against it.
- abandon_rate = abandoned / (answered + abandoned).
- ASA = total wait of answered calls / answered.
- AHT = (talk + wrap-up) / handled, for calls whose wrap-up ended in the window.
- occupancy = handle time / (handle time + available idle time), from the agents' state times:
  handle = on_call + wrap_up, idle = available + reserved (ringing is not handling). For a
  queue it is the occupancy of the agents who serve it now (shared agents count in each queue).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from acd.model import AgentState, QueueSettings

HANDLING = (AgentState.ON_CALL, AgentState.WRAP_UP)
IDLE = (AgentState.AVAILABLE, AgentState.RESERVED)

DayStart = Callable[[float], float]

RECENT = "recent"  # the sliding window
TODAY = "today"


class DayTotals:
    """Sums of named amounts since the start of the current day."""

    def __init__(self, day_start: DayStart) -> None:
        self._day_start = day_start
        self.day: float | None = None
        self._totals: defaultdict[str, float] = defaultdict(float)

    def totals(self, now: float) -> defaultdict[str, float]:
        """The current day's sums (zeroed when ``now`` starts a new day), to read or add to."""
        day = self._day_start(now)
        if day != self.day:
            self.day, self._totals = day, defaultdict(float)
        return self._totals


class Tally:
    """Named counters, each kept over the sliding window and over today."""

    def __init__(self, window_seconds: float, day_start: DayStart) -> None:
        self._window = window_seconds
        self._recent: deque[tuple[float, tuple[tuple[str, float], ...]]] = deque()
        self._recent_totals: defaultdict[str, float] = defaultdict(float)
        self._today = DayTotals(day_start)

    def add(self, now: float, *amounts: tuple[str, float]) -> None:
        """Record (name, amount) pairs that happened together at ``now``."""
        self._recent.append((now, amounts))
        recent, today = self._recent_totals, self._today.totals(now)
        for name, amount in amounts:
            recent[name] += amount
            today[name] += amount
        self._forget_before(now - self._window)  # memory stays bounded even if nobody asks

    def totals(self, window: str, now: float) -> Mapping[str, float]:
        if window == TODAY:
            return self._today.totals(now)
        self._forget_before(now - self._window)
        return self._recent_totals

    def _forget_before(self, window_start: float) -> None:
        recent, totals = self._recent, self._recent_totals
        while recent and recent[0][0] <= window_start:
            for name, amount in recent.popleft()[1]:
                totals[name] -= amount


def _overlap(start: float, end: float, window_start: float) -> float:
    return max(0.0, end - max(start, window_start))


class StateTimes:
    """One agent's seconds in each state, in both windows."""

    def __init__(self, window_seconds: float, day_start: DayStart) -> None:
        self._window = window_seconds
        self._state = AgentState.LOGGED_OUT
        self._since = 0.0
        self._recent: deque[tuple[float, float, AgentState]] = deque()
        self._today = DayTotals(day_start)

    def change(self, state: AgentState, now: float) -> None:
        self._recent.append((self._since, now, self._state))
        today = self._today.totals(now)
        today[self._state] += _overlap(self._since, now, self._today.day)
        self._state, self._since = state, now
        self._forget_before(now - self._window)

    def seconds(self, window: str, now: float) -> dict[str, float]:
        return self._recent_seconds(now) if window == RECENT else self._today_seconds(now)

    def _forget_before(self, window_start: float) -> None:
        while self._recent and self._recent[0][1] <= window_start:
            self._recent.popleft()

    def _recent_seconds(self, now: float) -> dict[str, float]:
        window_start = now - self._window
        self._forget_before(window_start)
        seconds: defaultdict[str, float] = defaultdict(float)
        for start, end, state in self._recent:
            seconds[state] += _overlap(start, end, window_start)
        seconds[self._state] += _overlap(self._since, now, window_start)
        return seconds

    def _today_seconds(self, now: float) -> dict[str, float]:
        seconds = defaultdict(float, self._today.totals(now))
        seconds[self._state] += _overlap(self._since, now, self._today.day)
        return seconds


@dataclass(frozen=True)
class CallFigures:
    """One window of one queue (or of the whole site)."""

    offered: int
    answered: int
    answered_within_sl: int
    abandoned: int  # after the short-abandon threshold
    short_abandoned: int
    rejected: int
    moved: int  # left for another queue (supervisor move or final action)
    final_actions: int
    callbacks: int  # callers who chose to be called back instead of waiting
    handled: int
    sl_answered: float | None
    sl_offered: float | None
    abandon_rate: float | None
    asa: float | None
    aht: float | None
    occupancy: float | None


@dataclass(frozen=True)
class AgentFigures:
    handled: int
    aht: float | None
    occupancy: float | None
    seconds_by_state: Mapping[str, float]


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _occupancy(seconds: Mapping[str, float]) -> float | None:
    handling = sum(seconds.get(state, 0.0) for state in HANDLING)
    idle = sum(seconds.get(state, 0.0) for state in IDLE)
    return _ratio(handling, handling + idle)


def _add_up(parts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    total: defaultdict[str, float] = defaultdict(float)
    for part in parts:
        for name, value in part.items():
            total[name] += value
    return total


def _call_figures(counts: Mapping[str, float], state_seconds: Mapping[str, float]) -> CallFigures:
    answered = counts.get("answered", 0.0)
    abandoned = counts.get("abandoned", 0.0)
    within = counts.get("answered_within_sl", 0.0)
    handled = counts.get("handled", 0.0)
    return CallFigures(
        offered=round(counts.get("offered", 0.0)),
        answered=round(answered),
        answered_within_sl=round(within),
        abandoned=round(abandoned),
        short_abandoned=round(counts.get("short_abandoned", 0.0)),
        rejected=round(counts.get("rejected", 0.0)),
        moved=round(counts.get("moved", 0.0)),
        final_actions=round(counts.get("final_action", 0.0)),
        callbacks=round(counts.get("callback", 0.0)),
        handled=round(handled),
        sl_answered=_ratio(within, answered),
        sl_offered=_ratio(within, answered + abandoned),
        abandon_rate=_ratio(abandoned, answered + abandoned),
        asa=_ratio(counts.get("wait_answered", 0.0), answered),
        aht=_ratio(counts.get("handle_seconds", 0.0), handled),
        occupancy=_occupancy(state_seconds),
    )


class AcdStats:
    """Counters and state clocks; the engine calls the ``record_*`` methods as things happen."""

    def __init__(self, queues: Iterable[QueueSettings], agent_ids: Iterable[str],
                 window_seconds: float, day_start: DayStart) -> None:
        self._queues = {queue.name: queue for queue in queues}
        self._calls = {name: Tally(window_seconds, day_start) for name in self._queues}
        self._agent_calls = {agent_id: Tally(window_seconds, day_start) for agent_id in agent_ids}
        self._states = {agent_id: StateTimes(window_seconds, day_start) for agent_id in self._agent_calls}

    def update_queue(self, queue: QueueSettings) -> None:
        """A queue's new thresholds count from now; what was recorded stays as it was counted."""
        self._queues[queue.name] = queue

    def record_entered(self, queue: str, now: float) -> None:
        self._calls[queue].add(now, ("offered", 1.0))

    def record_rejected(self, queue: str, now: float) -> None:
        self._calls[queue].add(now, ("rejected", 1.0))

    def record_left(self, queue: str, how: str, now: float) -> None:
        """Left without agent or hang-up: moved, final_action, callback."""
        self._calls[queue].add(now, (how, 1.0))

    def record_answered(self, queue: str, wait: float, now: float) -> None:
        within = 1.0 if wait <= self._queues[queue].service_level_seconds else 0.0
        self._calls[queue].add(now, ("answered", 1.0), ("wait_answered", wait),
                               ("answered_within_sl", within))

    def record_abandoned(self, queue: str, wait: float, now: float) -> None:
        short = wait < self._queues[queue].short_abandon_seconds
        self._calls[queue].add(now, ("short_abandoned" if short else "abandoned", 1.0))

    def record_handled(self, queue: str, agent_id: str, handle_seconds: float, now: float) -> None:
        for tally in (self._calls[queue], self._agent_calls[agent_id]):
            tally.add(now, ("handled", 1.0), ("handle_seconds", handle_seconds))

    def record_state(self, agent_id: str, state: AgentState, now: float) -> None:
        self._states[agent_id].change(state, now)

    def queue_figures(self, queue: str, staff: Iterable[str], window: str, now: float) -> CallFigures:
        """One queue; occupancy over the agents in ``staff``."""
        states = _add_up(self._states[agent_id].seconds(window, now) for agent_id in staff)
        return _call_figures(self._calls[queue].totals(window, now), states)

    def site_figures(self, window: str, now: float) -> CallFigures:
        """Every queue and every agent together."""
        counts = _add_up(tally.totals(window, now) for tally in self._calls.values())
        states = _add_up(clock.seconds(window, now) for clock in self._states.values())
        return _call_figures(counts, states)

    def agent_figures(self, agent_id: str, window: str, now: float) -> AgentFigures:
        counts = self._agent_calls[agent_id].totals(window, now)
        seconds = self._states[agent_id].seconds(window, now)
        handled = counts.get("handled", 0.0)
        return AgentFigures(handled=round(handled), aht=_ratio(counts.get("handle_seconds", 0.0), handled),
                            occupancy=_occupancy(seconds), seconds_by_state=seconds)
