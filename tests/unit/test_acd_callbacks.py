"""Callbacks: a virtual call keeps the caller's place, dials when its turn comes, retries."""

from __future__ import annotations

import pytest

from acd.events import (
    AgentLogin,
    AgentReady,
    AgentStateChanged,
    CallAbandoned,
    CallArrived,
    CallbackDial,
    CallbackFinished,
    CallbackRequested,
    CallbackResult,
    CallCompleted,
    CallEnded,
    Offer,
    OfferAccepted,
    PreQueueRejected,
)
from acd.model import AgentState, CallbackPolicy
from tests.unit.test_acd_support import Acd, of, queue

pytestmark = pytest.mark.unit

POLICY = CallbackPolicy(retry_after_busy=120, retry_after_no_answer=600, retry_after_failed=900, max_attempts=3)


def waiting_callback() -> Acd:
    """c1 (arrived at 0) asked for a callback at 30; c2 arrived at 10 and waits; a1 logged in."""
    acd = Acd(queues=[queue(callback=POLICY)])
    acd.at(0, AgentLogin("a1"), CallArrived("c1", "sales"))
    acd.at(10, CallArrived("c2", "sales"))
    assert acd.at(30, CallbackRequested("c1", "+4930555")) == [CallEnded("c1", "sales", "callback")]
    return acd


def test_a_callback_keeps_the_callers_place_and_reserves_the_agent_before_dialling():
    acd = waiting_callback()
    assert acd.engine.waiting_calls("sales") == ["c1", "c2"]
    assert acd.at(31, CallAbandoned("c1")) == []  # the caller hung up after asking: expected
    assert acd.at(40, AgentReady("a1")) == [
        AgentStateChanged("a1", AgentState.AVAILABLE, "", 40),
        AgentStateChanged("a1", AgentState.RESERVED, "", 40),
        CallbackDial("c1", "a1", "+4930555", 1, "sales")]


def test_an_answered_callback_is_finished_then_talked_and_wrapped_up():
    acd = waiting_callback()
    acd.at(40, AgentReady("a1"))
    assert acd.at(45, CallbackResult("c1", "answered")) == [
        CallbackFinished("c1", "answered", 1), AgentStateChanged("a1", AgentState.ON_CALL, "", 45)]
    decisions = acd.at(100, CallCompleted("c1"))
    assert of(decisions, CallEnded) == []  # the call already ended when it became a callback
    assert [offer.call_id for offer in of(decisions, Offer)] == ["c2"]


def test_retries_follow_the_outcome_policy_and_give_up_after_max_attempts():
    acd = waiting_callback()
    acd.at(40, AgentReady("a1"))
    decisions = acd.at(41, CallbackResult("c1", "busy"))
    assert [offer.call_id for offer in of(decisions, Offer)] == ["c2"]  # the agent goes on at once
    acd.at(42, OfferAccepted("c2", "a1"), CallCompleted("c2"))  # a1 free again; the callback waits
    assert acd.engine.next_deadline() == 41 + 120
    assert of(acd.until(161), CallbackDial) == [CallbackDial("c1", "a1", "+4930555", 2, "sales")]
    acd.at(170, CallbackResult("c1", "no_answer"))
    assert acd.engine.next_deadline() == 170 + 600
    assert of(acd.until(770), CallbackDial) == [CallbackDial("c1", "a1", "+4930555", 3, "sales")]
    decisions = acd.at(780, CallbackResult("c1", "failed"))
    assert decisions[0] == CallbackFinished("c1", "failed", 3)
    assert acd.engine.waiting_calls("sales") == [] and acd.engine.next_deadline() is None


def test_a_caller_refused_for_a_long_wait_can_leave_a_number_and_joins_from_then():
    acd = Acd(queues=[queue(ewt_limit_seconds=60)])
    acd.ready(0, "a1")
    acd.at(0, CallArrived("talking", "sales"), OfferAccepted("talking", "a1"))
    assert PreQueueRejected("c1", "sales", "ewt_too_high") in acd.at(1, CallArrived("c1", "sales"))
    assert acd.at(2, CallbackRequested("c1", "+1555", queue="sales")) == []
    assert acd.engine.waiting_calls("sales") == ["c1"]
    decisions = acd.at(100, CallCompleted("talking"))
    assert of(decisions, CallbackDial) == [CallbackDial("c1", "a1", "+1555", 1, "sales")]
