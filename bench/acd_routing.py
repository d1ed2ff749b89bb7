"""ACD routing latency: 5,000 agents, 200 skills, 2,000 waiting calls.

    .venv/bin/python bench/acd_routing.py

The site: 200 queues over 200 skills (half of them "skill>=50", half "a>=40 & (b>=30 | c>=60)"),
each with a two-step overflow plan. Queues 0-99 are swamped: their 2,500 agents are all talking
and 2,000 calls wait. Queues 100-199 are quiet: their 2,500 agents are free. Timed, one
``engine.handle()`` each:

- agent freed: a swamped agent ends its call and is offered the best call it may take;
- call arrived: half to a quiet queue (a free agent is offered it), half to a swamped one (it
  queues behind the others).

Between timed decisions, untimed events restore the state (answers, completions, a new call).
The peer is the straightforward design: on each event scan every waiting call, or every agent,
and test the requirement (the same parsed expressions). Last line, over all timed decisions:
``acd_routing p99_us=<x> p50_us=<y>``.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acd.engine import AcdEngine  # noqa: E402
from acd.events import (  # noqa: E402
    AgentLogin,
    AgentReady,
    CallArrived,
    CallCompleted,
    Offer,
    OfferAccepted,
    PreQueueRejected,
)
from acd.model import AcdSettings, AgentSettings, OverflowStep, QueueSettings  # noqa: E402
from acd.skills import parse_skills  # noqa: E402

AGENTS = 5000
SKILLS = 200
WAITING = 2000
SKILLS_PER_AGENT = 6
ROUNDS = 2000
PEER_ROUNDS = 150
SEED = 20240601

HOT_SKILLS = range(SKILLS // 2)  # swamped queues and their agents
COLD_SKILLS = range(SKILLS // 2, SKILLS)


def requirement(index: int, rng: random.Random, skills: range) -> str:
    if index % 2:
        return f"s{index}>=50"
    other, third = rng.sample([skill for skill in skills if skill != index], 2)
    return f"s{index}>=40 & (s{other}>=30 | s{third}>=60)"


def build_settings(rng: random.Random) -> AcdSettings:
    queues = []
    for half in (HOT_SKILLS, COLD_SKILLS):
        for index in half:
            # Overflow far in the future: the bench times routing, not step expiries.
            steps = (OverflowStep(3600, lower_thresholds={f"s{index}": 20}),
                     OverflowStep(7200, add_queues=(f"q{rng.choice(half)}",)))
            queues.append(QueueSettings(f"q{index}", requirement(index, rng, half), overflow=steps,
                                        ring_timeout=3600))
    agents = []
    for number in range(AGENTS):
        half = HOT_SKILLS if number < AGENTS // 2 else COLD_SKILLS
        skills = {f"s{skill}": rng.randint(30, 100) for skill in rng.sample(half, SKILLS_PER_AGENT)}
        agents.append(AgentSettings(f"agent{number}", f"PJSIP/{number}", skills))
    return AcdSettings(tuple(queues), tuple(agents))


class Ours:
    def __init__(self, settings: AcdSettings, rng: random.Random) -> None:
        self.engine = AcdEngine(settings)
        self.rng = rng
        self.now = 0.0
        self.serial = 0
        self.talking: dict[str, str] = {}  # agent -> call
        self.waiting = 0  # hot calls waiting
        for agent in settings.agents:
            self.send(AgentLogin(agent.agent_id))
            self.send(AgentReady(agent.agent_id))
        self.top_up()  # swamp the hot queues: every agent able to take them busy, then a backlog

    def top_up(self) -> None:
        while self.waiting < WAITING:
            self.queue_hot_call(self.send(self.new_call(HOT_SKILLS)))

    def queue_hot_call(self, decisions: list) -> None:
        """Book-keeping for a hot arrival: answered at once, refused (no agent), or waiting."""
        if not any(isinstance(decision, (Offer, PreQueueRejected)) for decision in decisions):
            self.waiting += 1
        self.answer_all(decisions)

    def send(self, event) -> list:
        self.now += 0.001
        return self.engine.handle(event, self.now)

    def new_call(self, skills: range) -> CallArrived:
        self.serial += 1
        return CallArrived(f"call{self.serial}", f"q{self.rng.choice(skills)}",
                           priority=self.rng.choice((0, 0, 0, 5)))

    def queued_in_engine(self) -> int:
        return sum(len(self.engine.waiting_calls(f"q{index}")) for index in HOT_SKILLS)

    def answer_all(self, decisions: list) -> None:
        for offer in decisions:
            if isinstance(offer, Offer):
                self.send(OfferAccepted(offer.call_id, offer.agent_id))
                self.talking[offer.agent_id] = offer.call_id

    def timed(self, event) -> tuple[int, list]:
        self.now += 0.001
        start = time.perf_counter_ns()
        decisions = self.engine.handle(event, self.now)
        return time.perf_counter_ns() - start, decisions

    def agent_freed(self) -> int:
        agent_id = self.rng.choice(sorted(agent for agent in self.talking if agent < f"agent{AGENTS // 2}"))
        elapsed, decisions = self.timed(CallCompleted(self.talking.pop(agent_id)))
        self.waiting -= sum(isinstance(decision, Offer) for decision in decisions)
        self.answer_all(decisions)
        return elapsed

    def hot_call_arrived(self) -> int:
        elapsed, decisions = self.timed(self.new_call(HOT_SKILLS))
        self.queue_hot_call(decisions)
        self.top_up()
        return elapsed

    def cold_call_arrived(self) -> int:
        elapsed, decisions = self.timed(self.new_call(COLD_SKILLS))
        for offer in decisions:
            if isinstance(offer, Offer):  # the quiet agent answers and hangs up: free again
                self.send(OfferAccepted(offer.call_id, offer.agent_id))
                self.send(CallCompleted(offer.call_id))
        return elapsed


class NaivePeer:
    """Scan-everything routing on the same site: lists of agents and calls, no index."""

    def __init__(self, settings: AcdSettings, rng: random.Random) -> None:
        self.rng = rng
        self.requirements = {queue.name: parse_skills(queue.skills) for queue in settings.queues}
        self.agents = [{"id": agent.agent_id, "skills": dict(agent.skills), "free": True, "idle_since": 0.0}
                       for agent in settings.agents]
        self.waiting: list[tuple[int, float, str]] = []  # (priority, arrival, queue)
        self.now = 0.0
        hot_agents = [agent for agent in self.agents if int(agent["id"][5:]) < AGENTS // 2]
        for agent in hot_agents:
            agent["free"] = False
        while len(self.waiting) < WAITING:
            self.call_arrived(self.new_call(HOT_SKILLS))
        self.hot_agents = hot_agents

    def new_call(self, skills: range) -> tuple[int, float, str]:
        self.now += 0.001
        return (self.rng.choice((0, 0, 0, 5)), self.now, f"q{self.rng.choice(skills)}")

    def agent_freed(self, agent: dict) -> tuple[int, float, str] | None:
        best = None
        for call in self.waiting:
            if self.requirements[call[2]].matches(agent["skills"]) and (
                    best is None or (call[0], -call[1]) > (best[0], -best[1])):
                best = call
        if best is not None:
            self.waiting.remove(best)
        return best

    def call_arrived(self, call: tuple[int, float, str]) -> dict | None:
        requirement = self.requirements[call[2]]
        best = None
        for agent in self.agents:
            if agent["free"] and requirement.matches(agent["skills"]) and (
                    best is None or agent["idle_since"] < best["idle_since"]):
                best = agent
        if best is None:
            self.waiting.append(call)
        return best

    def timed(self, action: Callable[[], object]) -> int:
        start = time.perf_counter_ns()
        action()
        return time.perf_counter_ns() - start

    def round(self) -> tuple[int, int, int]:
        agent = self.rng.choice(self.hot_agents)
        freed = self.timed(lambda: self.agent_freed(agent))
        hot = self.new_call(HOT_SKILLS)
        hot_arrived = self.timed(lambda: self.call_arrived(hot))
        cold = self.new_call(COLD_SKILLS)
        cold_arrived = self.timed(lambda: self.call_arrived(cold))
        return freed, hot_arrived, cold_arrived


def percentile(samples: list[int], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000


def describe(name: str, samples: list[int]) -> str:
    return (f"{name}: p50 {percentile(samples, 0.5):.1f} us, p99 {percentile(samples, 0.99):.1f} us "
            f"({len(samples)})")


def main() -> None:
    settings = build_settings(random.Random(SEED))
    started = time.perf_counter()
    ours = Ours(settings, random.Random(SEED + 1))
    print(f"setup: {AGENTS} agents, {SKILLS} skills, {len(settings.queues)} queues, "
          f"{ours.queued_in_engine()} waiting calls "
          f"({time.perf_counter() - started:.1f} s)", flush=True)
    gc.collect()
    gc.freeze()  # the long-lived site is not re-scanned by every collection
    freed, arrived = [], []
    for _ in range(ROUNDS):
        freed.append(ours.agent_freed())
        arrived.append(ours.hot_call_arrived())  # also puts the backlog back to 2,000
        arrived.append(ours.cold_call_arrived())
    assert ours.queued_in_engine() == ours.waiting >= WAITING  # the backlog stayed in place
    print(describe("ours, agent freed", freed))
    print(describe("ours, call arrived", arrived), flush=True)

    peer = NaivePeer(settings, random.Random(SEED + 1))
    peer_freed, peer_arrived = [], []
    for _ in range(PEER_ROUNDS):
        freed_ns, hot_ns, cold_ns = peer.round()
        peer_freed.append(freed_ns)
        peer_arrived += [hot_ns, cold_ns]
    print(describe("peer (naive scan), agent freed", peer_freed))
    print(describe("peer (naive scan), call arrived", peer_arrived))
    ours_p50, ours_p99 = percentile(freed + arrived, 0.5), percentile(freed + arrived, 0.99)
    peer_samples = peer_freed + peer_arrived
    peer_p50, peer_p99 = percentile(peer_samples, 0.5), percentile(peer_samples, 0.99)
    print(f"peer comparison (naive scan / ours): p50 {peer_p50:.0f} / {ours_p50:.1f} us = "
          f"{peer_p50 / ours_p50:.0f}x faster, p99 {peer_p99:.0f} / {ours_p99:.1f} us = "
          f"{peer_p99 / ours_p99:.0f}x faster")
    print(f"acd_routing p99_us={ours_p99:.1f} p50_us={ours_p50:.1f}")

if __name__ == "__main__":
    main()
