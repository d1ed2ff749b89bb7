"""AcdService: the engine on the event loop's clock, its deadline timer, inboxes and AMI inputs.

No Asterisk here: the AMI side is the call model's typed bus events, built by hand.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timezone

import pytest

from acd import (AcdError, AgentLogin, AgentReady, AgentState, AgentStateChanged, CallArrived, CallCompleted,
                 CallEnded, Offer, OfferAccepted, PreQueueRejected)
from acd.config import AcdDefinitions, AgentDefinition
from acd.model import QueueSettings
from cti.acd_service import AcdService
from cti.callmodel.events import CallBridged, DeviceStateChanged
from tests.unit.clock import Clock

pytestmark = pytest.mark.unit


def service(clock=None, ring_timeout: float = 15.0, wall_clock=lambda: 1_700_000_000.0,
            calendar: dict | None = None) -> AcdService:
    definitions = AcdDefinitions(
        (QueueSettings("support", "support", ring_timeout=ring_timeout, wrap_up_seconds=0.0, calendar=calendar),),
        (AgentDefinition("a1", "A", "PJSIP/1001", skills={"support": 50}),
         AgentDefinition("a2", "B", "PJSIP/1002", skills={"support": 50})))
    return AcdService(definitions, clock=clock or Clock(), wall_clock=wall_clock)


def bridged(call_id: str, channels: int = 2) -> CallBridged:
    names = tuple(f"PJSIP/x-{n}" for n in range(channels))
    return CallBridged("pbx", 0.0, call_id, "bridge-1", names[0], names)


async def test_an_offer_reaches_the_holding_session_and_every_listener():
    acd = service()
    heard = []
    acd.listen(heard.append)
    inbox = acd.hold("pbx:1")
    acd.submit(AgentLogin("a1"))
    acd.submit(AgentReady("a1"))
    acd.submit(CallArrived("pbx:1", "support"))
    offer = inbox.get_nowait()
    assert isinstance(offer, Offer) and offer.agent_id == "a1" and offer.interface == "PJSIP/1001"
    assert offer in heard and acd.ringing == {"pbx:1": "a1"}


async def test_a_bridge_of_the_ringing_call_is_the_answer_and_is_counted_once():
    acd = service()
    for event in (AgentLogin("a1"), AgentReady("a1"), CallArrived("pbx:1", "support")):
        acd.submit(event)
    acd.on_call_event(bridged("pbx:1", channels=1))  # the caller alone in a bridge: not an answer
    assert acd.engine.agent_state("a1") is AgentState.RESERVED
    acd.on_call_event(bridged("pbx:1"))
    acd.answer("pbx:1", "a1")  # the session's DIALSTATUS=ANSWER after the bridge: no second OfferAccepted
    assert acd.engine.agent_state("a1") is AgentState.ON_CALL and acd.accepted["pbx:1"][0] == "a1"


async def test_the_engine_deadline_fires_on_the_event_loop_without_any_event():
    acd = service(clock=asyncio.get_running_loop().time, ring_timeout=0.05)
    heard = []
    acd.listen(heard.append)
    for event in (AgentLogin("a1"), AgentReady("a1"), CallArrived("pbx:1", "support")):
        acd.submit(event)
    await asyncio.sleep(0.2)
    assert any(isinstance(d, AgentStateChanged) and d.agent_id == "a1" and d.reason == "no answer" for d in heard)
    acd.close()



async def test_a_refused_event_still_lets_the_deadlines_due_before_it_act_at_once():
    clock = Clock()
    acd = service(clock=clock)
    heard = []
    acd.listen(heard.append)
    for event in (AgentLogin("a1"), AgentReady("a1"), CallArrived("pbx:1", "support")):
        acd.submit(event)
    clock.now += 20  # past the ring timeout; the timer has not run yet
    with pytest.raises(AcdError, match="no agent 'ghost'"):
        acd.submit(AgentReady("ghost"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert AgentStateChanged("a1", AgentState.NOT_READY, "no answer", clock.now) in heard
    assert acd.engine.waiting_calls("support") == ["pbx:1"]
    acd.close()

async def test_a_watched_device_in_use_keeps_its_agent_from_offers():
    acd = service()
    for event in (AgentLogin("a1"), AgentReady("a1")):
        acd.submit(event)
    acd.on_call_event(DeviceStateChanged("pbx", 0.0, "PJSIP/1001", "INUSE", "NOT_INUSE"))
    acd.on_call_event(DeviceStateChanged("pbx", 0.0, "PJSIP/9999", "INUSE", "NOT_INUSE"))  # nobody's device
    decisions = acd.submit(CallArrived("pbx:1", "support"))
    assert not [d for d in decisions if isinstance(d, Offer)]
    decisions = []
    acd.listen(decisions.append)
    acd.on_call_event(DeviceStateChanged("pbx", 0.0, "PJSIP/1001", "NOT_INUSE", "INUSE"))
    assert [d.agent_id for d in decisions if isinstance(d, Offer)] == ["a1"]


async def test_positions_snapshots_and_the_agents_call():
    clock = Clock()
    acd = service(clock)
    acd.submit(AgentLogin("a1"))
    acd.submit(CallArrived("pbx:1", "support"))
    clock.now += 5
    acd.submit(CallArrived("pbx:2", "support", priority=10))
    assert (acd.position("pbx:2"), acd.position("pbx:1"), acd.position("pbx:9")) == (1, 2, None)
    waiting = acd.engine.waiting_snapshot("support", clock.now)
    assert [(w.call_id, w.position, w.priority, w.waited) for w in waiting] == [("pbx:2", 1, 10, 0.0),
                                                                             ("pbx:1", 2, 0, 5.0)]
    acd.submit(AgentReady("a1"))
    assert acd.engine.agent_call("a1") == "pbx:2" and acd.engine.agent_call("a2") is None
    ringing = acd.engine.waiting_snapshot("support", clock.now)
    assert [(w.call_id, w.state) for w in ringing] == [("pbx:1", "waiting"), ("pbx:2", "offered")]


async def test_a_failing_listener_is_counted_and_the_others_still_hear():
    acd = service()
    heard = []

    def broken(_decision):
        raise RuntimeError("listener bug")

    acd.listen(broken)
    acd.listen(heard.append)
    acd.submit(AgentLogin("a1"))
    assert acd.listener_errors == 1 and heard


async def test_wall_time_and_day_start_map_the_monotonic_clock_to_the_calendar():
    clock = Clock()
    acd = service(clock)
    assert acd.wall_time(clock.now - 10) == 1_700_000_000.0 - 10
    day = acd._day_start(clock.now)
    assert 0 <= clock.now - day < 86_400


async def test_a_completed_call_frees_the_agent_and_ends_the_call():
    acd = service()
    heard = []
    acd.listen(heard.append)
    for event in (AgentLogin("a1"), AgentReady("a1"), CallArrived("pbx:1", "support"), OfferAccepted("pbx:1", "a1"),
                  CallCompleted("pbx:1")):
        acd.submit(event)
    assert any(isinstance(d, CallEnded) and d.outcome == "completed" for d in heard)
    assert acd.engine.agent_state("a1") is AgentState.AVAILABLE


async def test_a_queue_with_opening_hours_refuses_calls_while_closed_and_takes_them_once_opened():
    office = {"timezone": "Europe/Paris", "hours": {"mon-fri": "08:00-18:00"}}
    # Monday 2026-11-23 07:30 in Paris (06:30 UTC): half an hour before opening.
    clock, wall = Clock(), Clock(datetime(2026, 11, 23, 6, 30, tzinfo=timezone.utc).timestamp())
    acd = service(clock, wall_clock=wall, calendar=office)
    acd.submit(AgentLogin("a1"))
    acd.submit(AgentReady("a1"))
    assert acd.submit(CallArrived("pbx:1", "support"))[0] == PreQueueRejected("pbx:1", "support", "closed")
    clock.now += 1800
    wall.now += 1800  # 08:00 in Paris: open
    assert isinstance(acd.submit(CallArrived("pbx:2", "support"))[-1], Offer)
    acd.update_queue(dataclasses.replace(acd.definitions.queue("support"), calendar={"timezone": "UTC"}))  # never open
    assert acd.submit(CallArrived("pbx:3", "support"))[0].reason == "closed"
    acd.close()