"""Discrete-event simulator: the real AcdEngine on a simulated clock.

Per queue (``Traffic``): Poisson arrivals, talk times exponential or lognormal with a given mean
(and coefficient of variation), exponential patience (callers hang up if not answered in time;
None: they never do). Agents log in and get ready at time 0 and answer every offer after
``answer_delay_seconds``; wrap-up is the queue's, run by the engine itself. Callbacks, when a
queue's final action makes some, are answered at once by the customer.

The loop advances to the earlier of the next simulated happening and the engine's own
``next_deadline()``; nothing sleeps, so hours of a large center take seconds. Randomness comes
only from a ``random.Random(seed)``: a scenario always gives the same results.

The figures are the engine's own statistics (``acd.stats``), in its "today" window with the day
made to start at the end of the warm-up, so the empty system at time 0 does not flatter them.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

from acd import erlang
from acd.engine import AcdEngine
from acd.events import (
    AgentLogin,
    AgentReady,
    CallAbandoned,
    CallArrived,
    CallbackDial,
    CallbackResult,
    CallCompleted,
    CallEnded,
    CancelOffer,
    Decision,
    Event,
    Offer,
    OfferAccepted,
    Tick,
)
from acd.model import AcdSettings, AgentSettings, QueueSettings
from acd.stats import TODAY, CallFigures

DISTRIBUTIONS = ("exponential", "lognormal")


@dataclass(frozen=True)
class Traffic:
    queue: str
    calls_per_hour: float
    aht_seconds: float  # mean talk time
    distribution: str = "exponential"
    handle_cv: float = 1.0  # lognormal only: standard deviation / mean
    patience_seconds: float | None = None  # mean; None: callers never abandon


@dataclass(frozen=True)
class Scenario:
    settings: AcdSettings  # queues and agents; its day_start is replaced (see module docstring)
    traffic: tuple[Traffic, ...]
    hours: float  # simulated in all, warm-up included
    warmup_hours: float = 0.5
    seed: int = 1
    answer_delay_seconds: float = 0.0
    antithetic: bool = False  # the mirror run of the same seed (see _Draws)


@dataclass(frozen=True)
class SimResults:
    """The engine's "today" figures after the warm-up: service level (sl_answered is the Erlang C
    one), ASA, abandon rate, occupancy... per queue and over the whole site."""

    queues: dict[str, CallFigures]
    overall: CallFigures
    engine_events: int  # handle() calls, for throughput figures


def single_queue(agents: int, calls_per_hour: float, aht_seconds: float, hours: float, *,
                 patience_seconds: float | None = None, sl_seconds: float = 20.0,
                 distribution: str = "exponential", wrap_up_seconds: float = 0.0,
                 warmup_hours: float = 0.5, seed: int = 1) -> Scenario:
    """One queue, one skill, identical agents: the Erlang C setting (with the options off)."""
    queue = QueueSettings("main", "main", wrap_up_seconds=wrap_up_seconds, service_level_seconds=sl_seconds,
                          short_abandon_seconds=0.0, initial_aht_seconds=aht_seconds)
    staff = tuple(AgentSettings(f"agent-{n}", f"Local/agent-{n}", {"main": 50}) for n in range(1, agents + 1))
    traffic = Traffic("main", calls_per_hour, aht_seconds, distribution, patience_seconds=patience_seconds)
    return Scenario(AcdSettings((queue,), staff), (traffic,), hours, warmup_hours, seed)


class _Draws:
    """Random variates from one seeded stream of uniforms in (0, 1).

    The antithetic twin of a stream maps every u to 1 - u: long talk times become short ones,
    long gaps between calls short ones. A run and its twin err in opposite directions, so their
    average is much closer to the truth than two independent runs (used by the tests against
    Erlang C). Each purpose (gaps, talk times, patience) has its own stream, so call n gets the
    n-th draw of each in both runs however the events interleave.
    """

    def __init__(self, seed: int, antithetic: bool) -> None:
        self._rng = random.Random(seed)
        self._antithetic = antithetic

    def uniform(self) -> float:
        u = (self._rng.getrandbits(53) + 0.5) / 2 ** 53  # never 0 nor 1: logs and quantiles stay finite
        return 1 - u if self._antithetic else u

    def exponential(self, mean: float) -> float:
        return -mean * math.log(self.uniform())

    def lognormal(self, mean: float, cv: float) -> float:
        sigma = math.sqrt(math.log(1 + cv ** 2))
        return math.exp(math.log(mean) - sigma ** 2 / 2 + sigma * _STANDARD_NORMAL.inv_cdf(self.uniform()))


_STANDARD_NORMAL = NormalDist()


class _Source:
    """One queue's callers: when they come, how long they talk, how long they would wait."""

    def __init__(self, traffic: Traffic, seeds: random.Random, antithetic: bool) -> None:
        if traffic.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution: expected one of {DISTRIBUTIONS}, got {traffic.distribution!r}")
        self.traffic = traffic
        self._gaps, self._talks, self._patience = (_Draws(seeds.getrandbits(64), antithetic)
                                                   for _ in range(3))

    def gap(self) -> float:
        return self._gaps.exponential(3600 / self.traffic.calls_per_hour)

    def talk(self) -> float:
        traffic = self.traffic
        if traffic.distribution == "lognormal":
            return self._talks.lognormal(traffic.aht_seconds, traffic.handle_cv)
        return self._talks.exponential(traffic.aht_seconds)

    def patience(self) -> float | None:
        mean = self.traffic.patience_seconds
        return None if mean is None else self._patience.exponential(mean)


class _Simulation:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        seeds = random.Random(scenario.seed)
        self.sources = [_Source(traffic, seeds, scenario.antithetic) for traffic in scenario.traffic]
        warmup_end = scenario.warmup_hours * 3600
        settings = dataclasses.replace(scenario.settings,
                                       day_start=lambda now: warmup_end if now >= warmup_end else 0.0)
        self.engine = AcdEngine(settings)
        self.engine_events = 0
        self.heap: list[tuple[float, int, Callable[..., None], tuple]] = []
        self.seq = 0
        self.talk_seconds: dict[str, float] = {}  # drawn at arrival, spent when answered
        self.ringing: dict[str, str] = {}  # call_id -> agent_id
        self.unanswered: set[str] = set()  # in the ACD and not yet talking: may still abandon
        self.call_numbers = 0
        self.now = 0.0
        self.reactions: dict[type, Callable] = {
            Offer: self.offered, CancelOffer: self.offer_cancelled, CallEnded: self.call_ended,
            CallbackDial: self.callback_dialled}

    def at(self, when: float, action: Callable[..., None], *args: object) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, action, args))

    def send(self, event: Event) -> None:
        self.engine_events += 1
        for decision in self.engine.handle(event, self.now):
            self.react(decision)

    def react(self, decision: Decision) -> None:
        reaction = self.reactions.get(type(decision))
        if reaction is not None:
            reaction(decision)

    def offered(self, offer: Offer) -> None:
        self.ringing[offer.call_id] = offer.agent_id
        self.at(self.now + self.scenario.answer_delay_seconds, self.answer, offer.call_id, offer.agent_id)

    def offer_cancelled(self, cancel: CancelOffer) -> None:
        self.ringing.pop(cancel.call_id, None)

    def call_ended(self, ended: CallEnded) -> None:
        self.unanswered.discard(ended.call_id)
        self.ringing.pop(ended.call_id, None)
        if ended.outcome != "callback":  # a callback talks later, with the caller's draw
            self.talk_seconds.pop(ended.call_id, None)

    def callback_dialled(self, dial: CallbackDial) -> None:
        self.send(CallbackResult(dial.callback_id, "answered"))
        self.talk(dial.callback_id)

    def arrive(self, source: _Source) -> None:
        self.at(self.now + source.gap(), self.arrive, source)
        self.call_numbers += 1
        call_id = f"call-{self.call_numbers}"
        self.unanswered.add(call_id)
        self.talk_seconds[call_id] = source.talk()
        patience = source.patience()
        if patience is not None:
            self.at(self.now + patience, self.lose_patience, call_id)
        self.send(CallArrived(call_id, source.traffic.queue))

    def answer(self, call_id: str, agent_id: str) -> None:
        if self.ringing.get(call_id) != agent_id:
            return  # the offer was withdrawn meanwhile
        del self.ringing[call_id]
        self.unanswered.discard(call_id)
        self.send(OfferAccepted(call_id, agent_id))
        self.talk(call_id)

    def talk(self, call_id: str) -> None:
        self.at(self.now + self.talk_seconds.pop(call_id), self.send, CallCompleted(call_id))

    def lose_patience(self, call_id: str) -> None:
        if call_id in self.unanswered:
            self.send(CallAbandoned(call_id))

    def run(self) -> SimResults:
        for agent in self.scenario.settings.agents:
            self.send(AgentLogin(agent.agent_id))
            self.send(AgentReady(agent.agent_id))
        for source in self.sources:
            self.at(source.gap(), self.arrive, source)
        end = self.scenario.hours * 3600
        while True:
            happening = self.heap[0][0] if self.heap else math.inf
            deadline = self.engine.next_deadline()
            deadline = math.inf if deadline is None else deadline
            if min(happening, deadline) > end:
                break
            if deadline <= happening:
                self.now = deadline
                self.send(Tick())
            else:
                self.now, _, action, args = heapq.heappop(self.heap)
                action(*args)
        return self.results(end)

    def results(self, end: float) -> SimResults:
        queues = {queue.name: self.engine.queue_snapshot(queue.name, end).today
                  for queue in self.scenario.settings.queues}
        return SimResults(queues, self.engine.stats.site_figures(TODAY, end), self.engine_events)


def simulate(scenario: Scenario) -> SimResults:
    return _Simulation(scenario).run()


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cti sim",
                                     description="Simulate one inbound queue on the real ACD engine.")
    parser.add_argument("--agents", type=int, default=12)
    parser.add_argument("--calls-per-hour", type=float, default=200.0)
    parser.add_argument("--aht", type=float, default=180.0, help="mean talk time, seconds")
    parser.add_argument("--hours", type=float, default=100.0,
                        help="simulated time after the warm-up (long runs give stable figures)")
    parser.add_argument("--warmup", type=float, default=0.5, help="hours simulated before measuring")
    parser.add_argument("--patience", type=float, default=0.0,
                        help="mean patience in seconds (exponential); 0: callers never abandon")
    parser.add_argument("--distribution", choices=DISTRIBUTIONS, default="exponential")
    parser.add_argument("--wrap-up", type=float, default=0.0, help="seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sl-target", type=float, default=20.0, help="service level threshold, seconds")
    return parser


def run_cli(argv: list[str]) -> int:
    """``cti sim``: print service level, ASA, abandon rate and occupancy (and Erlang C's figures
    when the options match its assumptions)."""
    try:
        options = _parser().parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    numbers = {"--agents": options.agents, "--calls-per-hour": options.calls_per_hour, "--aht": options.aht,
               "--hours": options.hours}
    for flag, value in numbers.items():
        if value <= 0:
            print(f"cti sim: {flag}: expected a positive number, got {value}")
            return 2
    patience = options.patience or None
    scenario = single_queue(options.agents, options.calls_per_hour, options.aht,
                            options.warmup + options.hours, patience_seconds=patience,
                            sl_seconds=options.sl_target, distribution=options.distribution,
                            wrap_up_seconds=options.wrap_up, warmup_hours=options.warmup, seed=options.seed)
    result = simulate(scenario).overall
    print(f"simulated {options.hours:g} h after a {options.warmup:g} h warm-up: {options.agents} agents, "
          f"{result.offered} calls offered, {result.answered} answered")
    print(f"service level ({options.sl_target:g} s, of answered): {_percent(result.sl_answered)}")
    print(f"ASA: {_seconds(result.asa)}")
    print(f"abandon rate: {_percent(result.abandon_rate)}")
    print(f"occupancy: {_percent(result.occupancy)}")
    traffic = options.calls_per_hour * options.aht / 3600
    erlang_c_applies = patience is None and options.distribution == "exponential" and not options.wrap_up
    if erlang_c_applies and options.agents > traffic:
        print(f"Erlang C ({traffic:g} Erlangs): service level "
              f"{_percent(erlang.service_level(traffic, options.agents, options.aht, options.sl_target))}, "
              f"ASA {_seconds(erlang.average_speed_of_answer(traffic, options.agents, options.aht))}, "
              f"occupancy {_percent(erlang.occupancy(traffic, options.agents))}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(sys.argv[1:]))
