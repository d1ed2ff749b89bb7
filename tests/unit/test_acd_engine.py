"""AcdEngine: agent states, offers and rings, strategies, priorities and weights, skills."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import acd

from acd.events import (
    AgentDeviceBusy,
    AgentDeviceFree,
    AgentLogin,
    AgentLogout,
    AgentNotReady,
    AgentReady,
    AgentStateChanged,
    CallAbandoned,
    CallArrived,
    CallCompleted,
    CallEnded,
    CancelOffer,
    MoveCall,
    Offer,
    OfferAccepted,
    OfferFailed,
    SetAgentSkills,
    SetCallPriority,
    Tick,
    WrapUpDone,
)
from acd.model import AcdError, AgentState, Strategy
from tests.unit.test_acd_support import Acd, agent, of, queue

pytestmark = pytest.mark.unit


def offered(decisions) -> list[tuple[str, str]]:
    return [(offer.call_id, offer.agent_id) for offer in of(decisions, Offer)]


# --- agent states ---------------------------------------------------------------------------


def test_login_is_not_ready_until_the_agent_says_ready():
    acd = Acd()
    assert acd.at(5, AgentLogin("a1")) == [AgentStateChanged("a1", AgentState.NOT_READY, "logged in", 5)]
    assert acd.at(7, AgentReady("a1")) == [AgentStateChanged("a1", AgentState.AVAILABLE, "", 7)]


def test_a_call_is_offered_at_once_to_a_free_agent_and_reserves_it():
    acd = Acd(queues=[queue(ring_timeout=20)])
    acd.ready(0, "a1")
    decisions = acd.at(10, CallArrived("c1", "sales", data={"account": "42"}))
    assert decisions == [AgentStateChanged("a1", AgentState.RESERVED, "", 10),
                         Offer("c1", "a1", "PJSIP/a1", 20, "sales", 0.0, {"account": "42"})]
    assert acd.engine.next_deadline() == 30


def test_answer_talk_wrap_up_then_available():
    acd = Acd(queues=[queue(wrap_up_seconds=30)])
    acd.ready(0, "a1")
    acd.at(10, CallArrived("c1", "sales"))
    assert acd.at(12, OfferAccepted("c1", "a1")) == [AgentStateChanged("a1", AgentState.ON_CALL, "", 12)]
    assert acd.at(100, CallCompleted("c1")) == [CallEnded("c1", "sales", "completed"),
                                                AgentStateChanged("a1", AgentState.WRAP_UP, "", 100)]
    assert acd.engine.next_deadline() == 130
    assert acd.until(130) == [AgentStateChanged("a1", AgentState.AVAILABLE, "", 130)]


def test_wrap_up_time_is_the_queue_of_the_call_just_handled():
    acd = Acd(queues=[queue("sales", "general", wrap_up_seconds=10),
                      queue("support", "general", wrap_up_seconds=60)],
              agents=[agent("a1", {"general": 50})])
    acd.ready(0, "a1")
    acd.at(1, CallArrived("c1", "support"), OfferAccepted("c1", "a1"))
    acd.at(50, CallCompleted("c1"))
    assert acd.engine.next_deadline() == 110


def test_the_agent_can_end_wrap_up_early():
    acd = Acd(queues=[queue(wrap_up_seconds=60)])
    acd.ready(0, "a1")
    acd.at(1, CallArrived("c1", "sales"), OfferAccepted("c1", "a1"))
    acd.at(2, CallArrived("c2", "sales"))
    acd.at(50, CallCompleted("c1"))
    decisions = acd.at(55, WrapUpDone("a1"))
    assert offered(decisions) == [("c2", "a1")]


def test_not_ready_asked_during_a_call_applies_after_wrap_up_and_ready_cancels_it():
    acd = Acd(queues=[queue(wrap_up_seconds=10)])
    acd.ready(0, "a1")
    acd.at(1, CallArrived("c1", "sales"), OfferAccepted("c1", "a1"), AgentNotReady("a1", "break"))
    assert acd.engine.agent_state("a1") is AgentState.ON_CALL
    acd.at(20, CallCompleted("c1"))
    assert acd.until(30)[-1] == AgentStateChanged("a1", AgentState.NOT_READY, "break", 30)

    acd.at(40, AgentReady("a1"), CallArrived("c2", "sales"), OfferAccepted("c2", "a1"),
           AgentNotReady("a1", "lunch"))
    acd.at(41, AgentReady("a1"), CallCompleted("c2"))
    assert acd.until(51)[-1] == AgentStateChanged("a1", AgentState.AVAILABLE, "", 51)


# --- rings that are not answered --------------------------------------------------------------


def test_ring_timeout_makes_the_agent_not_ready_and_the_next_free_agent_rings_at_once():
    acd = Acd(queues=[queue(ring_timeout=15)], agents=[agent("a1"), agent("a2")])
    acd.ready(0, "a1")
    acd.ready(1, "a2")
    assert offered(acd.at(10, CallArrived("c1", "sales"))) == [("c1", "a1")]
    decisions = acd.until(25)
    assert decisions == [CancelOffer("c1", "a1"),
                         AgentStateChanged("a1", AgentState.NOT_READY, "no answer", 25),
                         AgentStateChanged("a2", AgentState.RESERVED, "", 25),
                         Offer("c1", "a2", "PJSIP/a2", 15, "sales", 15.0, {})]



def test_a_refused_event_does_not_lose_what_the_deadlines_due_before_it_decided():
    acd = Acd(queues=[queue(ring_timeout=15)], agents=[agent("a1"), agent("a2")])
    acd.ready(0, "a1")
    acd.ready(1, "a2")
    acd.at(10, CallArrived("c1", "sales"))
    with pytest.raises(AcdError, match="no agent 'ghost'"):
        acd.engine.handle(AgentReady("ghost"), 25)
    assert acd.engine.next_deadline() == 25
    assert acd.engine.handle(Tick(), 25) == [CancelOffer("c1", "a1"),
                                             AgentStateChanged("a1", AgentState.NOT_READY, "no answer", 25),
                                             AgentStateChanged("a2", AgentState.RESERVED, "", 25),
                                             Offer("c1", "a2", "PJSIP/a2", 15, "sales", 15.0, {})]
    assert acd.engine.next_deadline() == 40

def test_an_unanswered_call_returns_to_the_head_of_its_queue():
    acd = Acd(agents=[agent("a1"), agent("a2")])
    acd.ready(0, "a1")
    acd.at(1, AgentLogin("a2"))
    acd.at(10, CallArrived("c1", "sales"), CallArrived("c2", "sales"), CallArrived("c3", "sales"))
    decisions = acd.at(12, OfferFailed("c1", "a1", "no_answer"))
    assert CancelOffer("c1", "a1") not in decisions  # the glue reported it, nothing to stop
    assert acd.engine.agent_state("a1") is AgentState.NOT_READY
    assert acd.engine.waiting_calls("sales") == ["c1", "c2", "c3"]
    assert offered(acd.at(13, AgentReady("a2"))) == [("c1", "a2")]


def test_a_busy_device_is_skipped_until_it_is_free_again():
    acd = Acd(agents=[agent("a1")])
    acd.ready(0, "a1")
    acd.at(10, CallArrived("c1", "sales"))
    decisions = acd.at(11, OfferFailed("c1", "a1", "busy"))
    assert decisions == [AgentStateChanged("a1", AgentState.AVAILABLE, "", 11)]
    assert acd.engine.waiting_calls("sales") == ["c1"]
    assert offered(acd.at(30, AgentDeviceFree("a1"))) == [("c1", "a1")]


def test_a_failed_offer_makes_the_agent_not_ready():
    acd = Acd()
    acd.ready(0, "a1")
    acd.at(10, CallArrived("c1", "sales"))
    decisions = acd.at(11, OfferFailed("c1", "a1", "failed"))
    assert AgentStateChanged("a1", AgentState.NOT_READY, "offer failed", 11) in decisions
    with pytest.raises(AcdError, match="OfferFailed reason"):
        acd.at(12, OfferFailed("c1", "a1", "exploded"))


def test_an_agent_on_another_call_is_never_offered():
    acd = Acd(agents=[agent("a1"), agent("a2")])
    acd.ready(0, "a1", "a2")
    acd.at(1, AgentDeviceBusy("a1"))
    assert offered(acd.at(10, CallArrived("c1", "sales"))) == [("c1", "a2")]
    acd.at(11, CallArrived("c2", "sales"))
    assert offered(acd.at(20, AgentDeviceFree("a1"))) == [("c2", "a1")]


def test_a_free_agent_is_never_starved_behind_one_that_does_not_answer():
    """The app_queue baseline: with leastrecent, a member that never answers is ranked first for
    ever and the free member is never offered the caller. Here the silent agent leaves the
    rotation at its first ring timeout and the other takes every caller the moment it frees up."""
    acd = Acd(queues=[queue(ring_timeout=5)], agents=[agent("silent"), agent("worker")])
    acd.ready(0, "silent")
    acd.ready(1, "worker")
    calls = [f"c{n}" for n in range(10)]
    assert offered(acd.at(2, *(CallArrived(call_id, "sales") for call_id in calls))) == [("c0", "silent"),
                                                                                        ("c1", "worker")]
    acd.at(3, OfferAccepted("c1", "worker"))
    assert CancelOffer("c0", "silent") in acd.until(7)
    assert acd.engine.agent_state("silent") is AgentState.NOT_READY
    now, current = 9.0, "c1"
    for next_call in ["c0", *calls[2:]]:  # c0 went back to the head
        assert offered(acd.at(now, CallCompleted(current))) == [(next_call, "worker")]  # no idle second
        acd.at(now + 0.5, OfferAccepted(next_call, "worker"))
        now, current = now + 2, next_call
    assert offered(acd.at(now, CallCompleted(current))) == []
    assert acd.engine.agent_state("silent") is AgentState.NOT_READY


def test_not_ready_or_logout_while_ringing_cancels_the_offer_and_requeues_the_call():
    acd = Acd(agents=[agent("a1"), agent("a2"), agent("a3")])
    acd.ready(0, "a1", "a2", "a3")
    acd.at(10, CallArrived("c1", "sales"))
    decisions = acd.at(11, AgentNotReady("a1", "break"))
    assert decisions[:2] == [AgentStateChanged("a1", AgentState.NOT_READY, "break", 11), CancelOffer("c1", "a1")]
    assert offered(decisions) == [("c1", "a2")]
    decisions = acd.at(12, AgentLogout("a2"))
    assert CancelOffer("c1", "a2") in decisions and offered(decisions) == [("c1", "a3")]


def test_a_caller_hanging_up_during_the_ring_frees_the_agent_for_the_next_call():
    acd = Acd()
    acd.ready(0, "a1")
    acd.at(10, CallArrived("c1", "sales"), CallArrived("c2", "sales"))
    decisions = acd.at(12, CallAbandoned("c1"))
    assert decisions[:2] == [CancelOffer("c1", "a1"), CallEnded("c1", "sales", "abandoned")]
    assert offered(decisions) == [("c2", "a1")]


def test_stale_events_are_ignored_and_unknown_names_raise():
    acd = Acd()
    acd.ready(0, "a1")
    acd.at(1, CallArrived("c1", "sales"), OfferAccepted("c1", "a1"))
    assert acd.at(2, OfferAccepted("c1", "a1"), OfferFailed("c1", "a1", "no_answer"), CallAbandoned("c1"),
                  CallCompleted("nope"), MoveCall("nope", "sales"), SetCallPriority("nope", 3)) == []
    with pytest.raises(AcdError, match="no agent 'ghost'"):
        acd.at(3, AgentReady("ghost"))
    with pytest.raises(AcdError, match="no queue 'nowhere'"):
        acd.at(3, CallArrived("c2", "nowhere"))
    with pytest.raises(AcdError, match="arrived twice"):
        acd.at(3, CallArrived("c1", "sales"))
    with pytest.raises(AcdError, match="clock went backwards"):
        acd.engine.handle(Tick(), 1)
    with pytest.raises(AcdError, match="not an ACD event"):
        acd.engine.handle("CallArrived", 5)


def test_a_late_answer_loses_to_the_ring_timeout_that_already_expired():
    acd = Acd(queues=[queue(ring_timeout=15)])
    acd.ready(0, "a1")
    acd.at(0, CallArrived("c1", "sales"))
    decisions = acd.engine.handle(OfferAccepted("c1", "a1"), 15.2)
    assert decisions[0] == CancelOffer("c1", "a1")
    assert acd.engine.agent_state("a1") is AgentState.NOT_READY


# --- strategies -----------------------------------------------------------------------------


def three_agents(strategy: Strategy, skills=(50, 50, 50)) -> Acd:
    acd = Acd(queues=[queue(strategy=strategy)],
              agents=[agent(f"a{n}", {"sales": level}) for n, level in enumerate(skills, start=1)])
    for n in (1, 2, 3):
        acd.ready(n, f"a{n}")
    return acd


def serve(acd: Acd, now: float, call_id: str) -> str:
    """A call arrives, is answered and completed at once; returns the agent that took it."""
    [(_, agent_id)] = offered(acd.at(now, CallArrived(call_id, "sales")))
    acd.at(now, OfferAccepted(call_id, agent_id), CallCompleted(call_id))
    return agent_id


def test_longest_idle_takes_the_agent_free_for_the_longest_time():
    acd = three_agents(Strategy.LONGEST_IDLE)
    assert [serve(acd, 10 + n, f"c{n}") for n in range(4)] == ["a1", "a2", "a3", "a1"]


def test_most_skilled_takes_the_best_proficiency_on_the_requirement():
    acd = three_agents(Strategy.MOST_SKILLED, skills=(40, 90, 60))
    assert serve(acd, 10, "c1") == "a2"
    assert [serve(acd, 11, "c2"), serve(acd, 12, "c3")] == ["a2", "a2"]


def test_fewest_calls_counts_today_only():
    acd = Acd(queues=[queue(strategy=Strategy.FEWEST_CALLS)], agents=[agent("a1"), agent("a2")],
              day_start=lambda now: 0.0 if now < 1000 else 1000.0)
    acd.ready(0, "a1")
    for n in range(3):
        serve(acd, 10 + n, f"c{n}")  # a1: 3 calls, idle since 12
    acd.ready(13, "a2")
    assert serve(acd, 20, "c3") == "a2"  # fewer calls beats a longer idle time
    assert serve(acd, 1001, "c4") == "a1"  # a new day: 0 calls each, a1 idle longest


def test_round_robin_counts_a_ring_as_a_turn():
    # The caller hangs up while a1 rings: longest_idle would ring a1 again (its idle time is
    # kept), round_robin moves on to a2.
    for strategy, expected in ((Strategy.LONGEST_IDLE, "a1"), (Strategy.ROUND_ROBIN, "a2")):
        acd = three_agents(strategy)
        acd.at(10, CallArrived("c1", "sales"), CallAbandoned("c1"))
        assert serve(acd, 11, "c2") == expected


# --- priorities and queue weights -----------------------------------------------------------


def test_priority_comes_from_the_customer_tier_or_is_explicit():
    acd = Acd(tier_priorities={"gold": 10, "silver": 5})
    acd.at(0, AgentLogin("a1"))
    acd.at(1, CallArrived("std", "sales"), CallArrived("silver", "sales", customer_tier="silver"),
           CallArrived("gold", "sales", customer_tier="gold"), CallArrived("vip", "sales", priority=50),
           CallArrived("unknown", "sales", customer_tier="platinum"))
    assert acd.engine.waiting_calls("sales") == ["vip", "gold", "silver", "std", "unknown"]
    acd.at(2, SetCallPriority("unknown", 20))
    assert acd.engine.waiting_calls("sales") == ["vip", "unknown", "gold", "silver", "std"]
    assert offered(acd.at(3, AgentReady("a1"))) == [("vip", "a1")]


def test_a_freed_agent_takes_the_highest_priority_call_across_its_queues():
    acd = Acd(queues=[queue("sales", "general"), queue("support", "general")],
              agents=[agent("a1", {"general": 50})])
    acd.at(0, AgentLogin("a1"))
    acd.at(1, CallArrived("old", "sales"))
    acd.at(50, CallArrived("gold", "support", customer_tier="gold"))
    assert offered(acd.at(60, AgentReady("a1"))) == [("gold", "a1")]


def test_equal_priorities_go_to_the_longest_weighted_wait():
    acd = Acd(queues=[queue("sales", "general"), queue("vip", "general", weight=2.0)],
              agents=[agent("a1", {"general": 50})])
    acd.at(0, AgentLogin("a1"))
    acd.at(0, CallArrived("sales-70s", "sales"))
    acd.at(20, CallArrived("sales-50s", "sales"))
    acd.at(40, CallArrived("vip-30s", "vip"))
    # at 70: sales-70s counts 70, vip-30s counts 2 x 30 = 60, sales-50s 50
    assert offered(acd.at(70, AgentReady("a1"))) == [("sales-70s", "a1")]
    acd.at(71, OfferAccepted("sales-70s", "a1"), CallCompleted("sales-70s"))  # at 71: vip 62 > sales 51
    assert acd.engine.waiting_calls("sales") == ["sales-50s"]
    assert acd.engine.waiting_calls("vip") == []


def test_move_call_keeps_its_arrival_time_and_restarts_the_overflow_plan():
    acd = Acd(queues=[queue("sales", "general"), queue("support", "general", max_wait_seconds=100)],
              agents=[agent("a1", {"general": 50})])
    acd.at(0, AgentLogin("a1"))
    acd.at(0, CallArrived("moved", "sales"))
    acd.at(10, CallArrived("other", "support"))
    acd.at(50, MoveCall("moved", "support"))
    assert acd.engine.waiting_calls("support") == ["moved", "other"]
    assert acd.engine.next_deadline() == 110  # other's max wait; moved's is 150


# --- skills ---------------------------------------------------------------------------------


def test_only_agents_meeting_the_requirement_are_offered():
    acd = Acd(queues=[queue("billing", "billing>=50 & (spanish>=30 | english>=70)")],
              agents=[agent("weak", {"billing": 40, "english": 90}),
                      agent("nolang", {"billing": 80, "english": 60}),
                      agent("es", {"billing": 50, "spanish": 30})])
    acd.ready(0, "weak", "nolang", "es")
    assert offered(acd.at(10, CallArrived("c1", "billing"))) == [("c1", "es")]


def test_new_skills_take_effect_at_once():
    acd = Acd(agents=[agent("a1", {"support": 50}), agent("a2")])
    acd.ready(0, "a1")
    acd.at(0, AgentLogin("a2"))
    acd.at(10, CallArrived("c1", "sales"))
    assert offered(acd.at(20, SetAgentSkills("a1", {"sales": 60}))) == [("c1", "a1")]


def test_same_inputs_same_decisions():
    def run() -> list:
        acd = Acd(queues=[queue("sales", "general"), queue("support", "general", strategy=Strategy.ROUND_ROBIN)],
                  agents=[agent(f"a{n}", {"general": 10 * n}) for n in range(1, 6)])
        decisions = acd.ready(0, *(f"a{n}" for n in range(1, 6)))
        for n in range(20):
            decisions += acd.at(n, CallArrived(f"c{n}", "sales" if n % 3 else "support"))
        return decisions + acd.until(500)
    assert run() == run()


def test_the_engine_modules_import_no_io_clock_or_randomness():
    """The hard rule that lets the simulator run the engine thousands of times faster than real
    time: only the simulator may use random (seeded), and nothing may read a clock or do I/O."""
    forbidden = {"aiohttp", "asyncpg", "asyncio", "socket", "time", "datetime", "random", "os", "uvloop"}
    package = Path(acd.__file__).parent
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        allowed = {"random"} if path.name == "sim.py" else set()
        assert not imported & (forbidden - allowed), f"{path.name} imports {imported & forbidden}"
