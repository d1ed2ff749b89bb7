"""Shared harness of the ACD tests: settings builders and an engine driven by a fake clock.

It lives in a test_acd_* module so that it stays with the tests that import it.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from acd.engine import AcdEngine
from acd.events import AgentLogin, AgentReady, CallArrived, CancelOffer, Decision, Event, Tick
from acd.model import AcdSettings, AgentSettings, QueueSettings

pytestmark = pytest.mark.unit


def queue(name: str = "sales", skills: str | None = None, **options) -> QueueSettings:
    return QueueSettings(name, skills or name, **options)


def agent(agent_id: str, skills: dict[str, int] | None = None) -> AgentSettings:
    return AgentSettings(agent_id, f"PJSIP/{agent_id}", skills if skills is not None else {"sales": 50})


def of(decisions: Iterable[Decision], kind: type) -> list:
    return [decision for decision in decisions if isinstance(decision, kind)]


class Acd:
    """An AcdEngine and the clock value its caller would pass (seconds, set by the test)."""

    def __init__(self, queues: Iterable[QueueSettings] = (queue(),),
                 agents: Iterable[AgentSettings] = (agent("a1"),), **settings) -> None:
        self.engine = AcdEngine(AcdSettings(tuple(queues), tuple(agents), **settings))
        self.now = 0.0

    def at(self, now: float, *events: Event) -> list[Decision]:
        """Handle the events at ``now`` as a glue would, firing first the deadlines due before
        ``now`` at their own time (the glue calls Tick at every next_deadline())."""
        decisions = self.until(now)
        for event in events:
            decisions += self.engine.handle(event, now)
        return decisions

    def until(self, now: float) -> list[Decision]:
        decisions: list[Decision] = []
        while (deadline := self.engine.next_deadline()) is not None and deadline <= now:
            self.now = max(self.now, deadline)
            decisions += self.engine.handle(Tick(), self.now)
        self.now = now
        return decisions

    def ready(self, now: float, *agent_ids: str) -> list[Decision]:
        events = [event for agent_id in agent_ids for event in (AgentLogin(agent_id), AgentReady(agent_id))]
        return self.at(now, *events)


def test_the_harness_fires_deadlines_at_their_own_time():
    acd = Acd()
    acd.ready(0, "a1")
    acd.at(100, CallArrived("c1", "sales"))
    assert acd.engine.next_deadline() == 115.0
    decisions = acd.until(200)
    assert of(decisions, CancelOffer) == [CancelOffer("c1", "a1")]
    assert acd.engine.waiting_calls("sales") == ["c1"]
