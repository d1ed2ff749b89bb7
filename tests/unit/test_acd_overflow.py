"""Overflow steps, final actions, pre-queue checks and settings validation."""

from __future__ import annotations

import pytest

from acd.engine import AcdEngine
from acd.events import (
    AgentLogin,
    AgentLogout,
    CallArrived,
    CallEnded,
    FinalAction,
    Offer,
    OfferAccepted,
    Overflowed,
    PreQueueRejected,
    Tick,
)
from acd.model import AcdError, AcdSettings, Disposition, DispositionKind, OverflowStep, QueueSettings
from tests.unit.test_acd_support import Acd, agent, of, queue

pytestmark = pytest.mark.unit

VOICEMAIL = Disposition(DispositionKind.VOICEMAIL, "box-100")


def offered(decisions) -> list[tuple[str, str]]:
    return [(offer.call_id, offer.agent_id) for offer in of(decisions, Offer)]


# --- overflow steps -------------------------------------------------------------------------


def test_a_step_lowers_a_threshold_when_it_expires_and_routes_at_that_instant():
    acd = Acd(queues=[queue("sales", "sales>=70", overflow=(OverflowStep(30, lower_thresholds={"sales": 40}),))],
              agents=[agent("junior", {"sales": 45})])
    acd.ready(0, "junior")
    assert acd.at(10, CallArrived("c1", "sales")) == []
    assert acd.engine.next_deadline() == 40
    decisions = acd.until(40)
    assert decisions[0] == Overflowed("c1", 0)
    assert offered(decisions) == [("c1", "junior")]
    assert of(decisions, Offer)[0].wait_seconds == 30


def test_steps_add_alternative_skills_then_other_queues_cumulatively():
    steps = (OverflowStep(20, add_skills="english>=50"), OverflowStep(60, add_queues=("support",)))
    acd = Acd(queues=[queue("billing", "billing", overflow=steps), queue("support", "helpdesk")],
              agents=[agent("helper", {"helpdesk": 50}), agent("english", {"english": 60}),
                      agent("biller", {"billing": 50})])
    acd.at(0, AgentLogin("biller"))  # logged in, so the queue is staffed, but never ready
    acd.ready(0, "helper", "english")
    acd.at(0, CallArrived("c1", "billing"))
    decisions = acd.until(20)
    assert decisions[0] == Overflowed("c1", 0) and offered(decisions) == [("c1", "english")]
    acd.at(30, OfferAccepted("c1", "english"), CallArrived("c2", "billing"))
    assert acd.until(89) == [Overflowed("c2", 0)]  # the english agent is busy
    decisions = acd.until(90)
    assert decisions[0] == Overflowed("c2", 1) and offered(decisions) == [("c2", "helper")]


def test_a_call_that_already_passed_several_steps_reaches_them_all_at_once():
    steps = (OverflowStep(10, lower_thresholds={"sales": 60}), OverflowStep(20, lower_thresholds={"sales": 30}))
    acd = Acd(queues=[queue("sales", "sales>=90", overflow=steps)], agents=[agent("a1", {"sales": 35})])
    acd.at(0, AgentLogin("a1"))
    acd.at(0, CallArrived("c1", "sales"))
    decisions = acd.engine.handle(Tick(), 25)  # the glue was late with its Tick
    assert decisions == [Overflowed("c1", 0), Overflowed("c1", 1)]


# --- final actions --------------------------------------------------------------------------


def test_after_the_max_wait_the_final_action_ends_the_call():
    acd = Acd(queues=[queue(max_wait_seconds=120, final_action=VOICEMAIL)])
    acd.at(0, AgentLogin("a1"))
    acd.at(5, CallArrived("c1", "sales"))
    assert acd.until(125) == [FinalAction("c1", DispositionKind.VOICEMAIL, "box-100"),
                              CallEnded("c1", "sales", "final_action")]
    assert acd.engine.waiting_calls("sales") == []


def test_a_final_action_to_another_queue_keeps_the_call_and_its_arrival_time():
    acd = Acd(queues=[queue("sales", "general", max_wait_seconds=60,
                            final_action=Disposition(DispositionKind.QUEUE, "backup")),
                      queue("backup", "general")],
              agents=[agent("a1", {"general": 50})])
    acd.at(0, AgentLogin("a1"))
    acd.at(0, CallArrived("early", "sales"))
    acd.at(30, CallArrived("later", "backup"))
    assert acd.until(60) == [FinalAction("early", DispositionKind.QUEUE, "backup")]
    assert acd.engine.waiting_calls("backup") == ["early", "later"]


def test_a_callback_final_action_keeps_the_callers_place_and_needs_a_number():
    acd = Acd(queues=[queue(max_wait_seconds=60, final_action=Disposition(DispositionKind.CALLBACK))])
    acd.at(0, AgentLogin("a1"))
    acd.at(0, CallArrived("known", "sales", caller_number="+4930123"), CallArrived("anonymous", "sales"))
    assert acd.until(60) == [FinalAction("known", DispositionKind.CALLBACK, "+4930123"),
                             CallEnded("known", "sales", "callback"),
                             FinalAction("anonymous", DispositionKind.MESSAGE_HANGUP, ""),
                             CallEnded("anonymous", "sales", "final_action")]
    assert acd.engine.waiting_calls("sales") == ["known"]


def test_when_the_last_agent_able_to_answer_logs_out_waiting_calls_get_their_final_action():
    acd = Acd(queues=[queue(final_action=VOICEMAIL)], agents=[agent("a1"), agent("a2")])
    acd.at(0, AgentLogin("a1"), AgentLogin("a2"))
    acd.at(1, CallArrived("c1", "sales"))
    assert of(acd.at(2, AgentLogout("a1")), FinalAction) == []
    decisions = acd.at(3, AgentLogout("a2"))
    assert of(decisions, FinalAction) == [FinalAction("c1", DispositionKind.VOICEMAIL, "box-100")]


# --- pre-queue checks -----------------------------------------------------------------------


def rejection(acd: Acd, now: float, call_id: str, queue_name: str = "sales") -> str | None:
    decisions = acd.at(now, CallArrived(call_id, queue_name))
    rejected = of(decisions, PreQueueRejected)
    if rejected:
        assert CallEnded(call_id, queue_name, "rejected") in decisions
    return rejected[0].reason if rejected else None


def test_closed_hours_come_from_an_injected_calendar():
    acd = Acd(is_open=lambda queue_name, now: 8 * 3600 <= now % 86400 < 18 * 3600)
    acd.at(0, AgentLogin("a1"))
    assert rejection(acd, 7 * 3600, "c1") == "closed"
    assert rejection(acd, 9 * 3600, "c2") is None


def test_a_full_queue_refuses_more_callers():
    acd = Acd(queues=[queue(max_waiting=2)])
    acd.at(0, AgentLogin("a1"))
    assert [rejection(acd, 1, f"c{n}") for n in range(3)] == [None, None, "queue_full"]


def test_no_agent_logged_in_refuses_unless_an_overflow_queue_has_one():
    acd = Acd(queues=[queue("sales", overflow=(OverflowStep(30, add_queues=("support",)),)),
                      queue("support")],
              agents=[agent("a1", {"support": 50})])
    assert rejection(acd, 0, "c1") == "no_agents"
    acd.at(1, AgentLogin("a1"))
    assert rejection(acd, 2, "c2") is None


def test_a_long_expected_wait_refuses_so_that_a_callback_can_be_offered():
    acd = Acd(queues=[queue(ewt_limit_seconds=300, initial_aht_seconds=200)], agents=[agent("a1")])
    acd.ready(0, "a1")
    acd.at(0, CallArrived("talking", "sales"), OfferAccepted("talking", "a1"))
    assert rejection(acd, 1, "c1") is None  # next in line: ~200 s
    assert rejection(acd, 2, "c2") == "ewt_too_high"  # second: ~400 s


# --- settings validation --------------------------------------------------------------------


@pytest.mark.parametrize(("queues", "message"), [
    ([QueueSettings("q", "a>=")], "queue 'q': skills: expected a proficiency 1-100 after '>=', found end of "
                                  "expression at column 4"),
    ([QueueSettings("q", "a", overflow=(OverflowStep(30, add_skills="b |"),))], "queue 'q': add_skills: expected"),
    ([QueueSettings("q", "a", overflow=(OverflowStep(30), OverflowStep(30)))], "overflow\\[1\\].after_seconds"),
    ([QueueSettings("q", "a", overflow=(OverflowStep(30, add_queues=("x",)),))], "no queue named 'x'"),
    ([QueueSettings("q", "a", overflow=(OverflowStep(30, lower_thresholds={"a": 0}),))], "lower_thresholds"),
    ([QueueSettings("q", "a", strategy="fastest")], "'fastest' is not a valid Strategy"),
    ([QueueSettings("q", "a", weight=0)], "weight: expected a positive number"),
    ([QueueSettings("q", "a"), QueueSettings("q", "b")], "queue names must be unique"),
    ([QueueSettings("a", "x", final_action=Disposition(DispositionKind.QUEUE, "b")),
      QueueSettings("b", "x", final_action=Disposition(DispositionKind.QUEUE, "a"))], "loop: a -> b -> a"),
])
def test_bad_settings_are_refused_with_the_place_and_the_reason(queues, message):
    with pytest.raises(AcdError, match=message):
        AcdEngine(AcdSettings(tuple(queues), ()))


def test_strategies_and_dispositions_may_be_given_as_configuration_strings():
    engine = AcdEngine(AcdSettings((QueueSettings("q", "a", strategy="most_skilled", max_wait_seconds=1,
                                                  final_action=Disposition("voicemail", "box")),),
                                   (agent("a1", {"a": 10}),)))
    engine.handle(AgentLogin("a1"), 0)
    engine.handle(CallArrived("c1", "q"), 0)
    assert engine.handle(Tick(), 1)[0] == FinalAction("c1", DispositionKind.VOICEMAIL, "box")
