"""The ACD on the real lab: callers held on FastAGI with music on hold, agents rung on sipp phones.

Two agents and five callers across the tests: a call answered and completed; a gold customer
served before earlier callers; an overflow step firing at its configured time; ring-no-answer
returning the call to the head of its queue; an abandon recorded with its wait and position;
a callback completing; an agent whose device is busy with another call not offered one;
announcements then the final action; a post-call survey, complete and left midway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from acd import (AgentLogin, AgentReady, AgentState, AgentStateChanged, Announce, CallbackDial, CallbackFinished,
                 CallEnded, FinalAction, Offer, OfferAccepted, Overflowed)
from acd.model import CallbackPolicy, Disposition, DispositionKind, OverflowStep, QueueSettings
from cti.callmodel.events import CallStarted
from cti.lab.phones import PhonePlan
from tests.e2e.acd_support import CallCenter, agent
from tests.e2e.conftest import WAIT, until

SUPPORT = QueueSettings("support", "support>=50", ring_timeout=4, wrap_up_seconds=0)


@pytest.fixture
async def center(link, lab_config, store, tmp_path):
    """An async function starting the call center with the given queues and agents."""
    instance = CallCenter(link, lab_config, store.pool, tmp_path)
    started = False

    async def start(queues=(SUPPORT,), agents=(), **kwargs) -> CallCenter:
        nonlocal started
        started = True
        return await instance.start(queues, agents, **kwargs)

    yield start
    if started:
        await instance.close()


def ready(acd, *agent_ids: str) -> None:
    for agent_id in agent_ids:
        acd.submit(AgentLogin(agent_id))
        acd.submit(AgentReady(agent_id))


async def started_call(link, number: str) -> CallStarted:
    return await link.recorder.wait_for(lambda e: isinstance(e, CallStarted) and e.ani == number)


async def test_a_queued_call_rings_the_ready_agent_and_is_recorded_complete(link, center, phones, calls):
    agent_phone = phones()
    cc = await center(agents=(agent("a1", agent_phone, support=80),))
    ready(cc.acd, "a1")
    calls("José Müller", "5550101", hold_ms=6000)
    call = await started_call(link, "5550101")
    _, offer = await cc.decision(lambda d: isinstance(d, Offer) and d.call_id == call.call_id)
    assert offer.agent_id == "a1" and offer.data["ani"] == "5550101" and offer.data["caller_name"] == "José Müller"
    await cc.decision(lambda d: isinstance(d, AgentStateChanged) and d.state is AgentState.ON_CALL)
    await cc.decision(lambda d: isinstance(d, CallEnded) and d.outcome == "completed", timeout=20)
    row = await cc.interaction(call.call_id.partition(":")[2])
    assert row["queue"] == "support" and row["agents"] == ["a1"] and row["outcome"] == "completed"
    assert row["wait_seconds"] > 0 and row["talk_seconds"] > 1 and row["queued_at"] is not None
    assert agent_phone.answered() == 1


async def test_a_gold_customer_is_served_before_earlier_callers(link, center, phones, calls, store):
    cc = await center(agents=(agent("a1", phones(), support=80), agent("a2", phones(), support=60)))
    await cc.customers.create(cc.customers.parse({"name": "Gold Customer", "tier": "gold", "phones": ["2125550105"]}))
    for agent_id in ("a1", "a2"):
        cc.acd.submit(AgentLogin(agent_id))
    numbers = ["2125550101", "2125550102", "2125550103", "2125550104", "2125550105"]
    call_ids = []
    for number in numbers:  # the gold customer calls last
        calls("Caller", number, hold_ms=20000)
        call_ids.append((await started_call(link, number)).call_id)
        await until(lambda: call_ids[-1] in cc.acd.engine.waiting_calls("support"))
    cc.acd.submit(AgentReady("a1"))
    _, first = await cc.decision(lambda d: isinstance(d, Offer))
    assert first.call_id == call_ids[-1] and first.agent_id == "a1"
    cc.acd.submit(AgentReady("a2"))
    _, second = await cc.decision(lambda d: isinstance(d, Offer) and d.agent_id == "a2")
    assert second.call_id == call_ids[0]


async def test_an_overflow_step_widens_the_queue_at_its_configured_time(link, center, phones, calls):
    queue = QueueSettings("support", "support>=50", ring_timeout=4,
                          overflow=(OverflowStep(after_seconds=3.0, add_skills="general>=10"),))
    cc = await center(queues=(queue,), agents=(agent("a1", phones(), support=80), agent("g1", phones(), general=40)))
    cc.acd.submit(AgentLogin("a1"))  # logged in, not ready: the queue is staffed but nobody is free
    ready(cc.acd, "g1")
    calls("Caller", "2125550111", hold_ms=12000)
    call = await started_call(link, "2125550111")
    overflowed_at, overflowed = await cc.decision(lambda d: isinstance(d, Overflowed) and d.call_id == call.call_id)
    offered_at, offer = await cc.decision(lambda d: isinstance(d, Offer) and d.call_id == call.call_id)
    assert overflowed.step_index == 0 and offer.agent_id == "g1"
    # The engine's own measure of the wait at the offer: the step fired at 3 s, not before.
    assert 3.0 <= offer.wait_seconds < 4.0 and offered_at >= overflowed_at


async def test_ring_no_answer_makes_the_agent_not_ready_and_the_call_goes_to_the_next(link, center, phones, calls):
    silent, answering = phones(PhonePlan(answer_after_ms=None)), phones()
    cc = await center(agents=(agent("a1", silent, support=80), agent("a2", answering, support=80)))
    ready(cc.acd, "a1")
    await asyncio.sleep(0.05)  # a1 idles longer: offered first
    ready(cc.acd, "a2")
    calls("Caller", "2125550121", hold_ms=15000)
    call = await started_call(link, "2125550121")
    _, first = await cc.decision(lambda d: isinstance(d, Offer) and d.call_id == call.call_id)
    assert first.agent_id == "a1"
    _, not_ready = await cc.decision(lambda d: isinstance(d, AgentStateChanged) and d.agent_id == "a1"
                                     and d.state is AgentState.NOT_READY and d.reason == "no answer")
    _, second = await cc.decision(lambda d: isinstance(d, Offer) and d.call_id == call.call_id and d.agent_id == "a2")
    await cc.decision(lambda d: isinstance(d, OfferAccepted) is False and isinstance(d, AgentStateChanged)
                      and d.agent_id == "a2" and d.state is AgentState.ON_CALL)
    assert silent.invites() == 1 and answering.answered() == 1 and second.wait_seconds >= 4.0


async def test_an_abandon_is_recorded_with_its_wait_and_position(link, center, phones, calls):
    cc = await center(agents=(agent("a1", phones(), support=80),))
    cc.acd.submit(AgentLogin("a1"))
    calls("First", "2125550131", hold_ms=15000)
    first = await started_call(link, "2125550131")
    await until(lambda: first.call_id in cc.acd.engine.waiting_calls("support"))
    calls("Second", "2125550132", hold_ms=3000)
    second = await started_call(link, "2125550132")
    await cc.decision(lambda d: isinstance(d, CallEnded) and d.call_id == second.call_id and d.outcome == "abandoned")
    row = await cc.interaction(second.call_id.partition(":")[2])
    assert row["outcome"] == "abandoned" and row["abandoned_position"] == 2 and row["queue"] == "support"
    assert 2.0 <= row["wait_seconds"] < 15.0 and row["agents"] == []


async def test_a_callback_keeps_the_place_and_completes_when_an_agent_is_free(link, center, phones, calls):
    customer_phone = phones()
    cc = await center(agents=(agent("a1", phones(), support=80),),
                      outbound_interface=customer_phone.dial_string("{number}"))
    cc.acd.submit(AgentLogin("a1"))
    calls("Caller", "2125550141", hold_ms=10000, dtmf=("1",))
    call = await started_call(link, "2125550141")
    await cc.decision(lambda d: isinstance(d, CallEnded) and d.call_id == call.call_id and d.outcome == "callback")
    await link.recorder.wait_for(lambda e: type(e).__name__ == "CallEnded" and e.call_id == call.call_id)
    row = await cc.interaction(call.call_id.partition(":")[2])
    assert row["outcome"] == "callback_requested"
    before_callback = len(link.recorder.events)
    cc.acd.submit(AgentReady("a1"))
    _, dial = await cc.decision(lambda d: isinstance(d, CallbackDial))
    assert dial.callback_id == call.call_id and dial.number == "2125550141" and dial.agent_id == "a1"
    _, finished = await cc.decision(lambda d: isinstance(d, CallbackFinished))
    assert finished.outcome == "answered" and finished.attempts == 1
    await cc.decision(lambda d: isinstance(d, AgentStateChanged) and d.agent_id == "a1"
                      and d.state is AgentState.ON_CALL)
    await until(lambda: customer_phone.answered() == 1)
    # The first call to start after the agent was ready (the link's resync reports older calls too).
    callback_leg = await link.recorder.wait_for(
        lambda e: isinstance(e, CallStarted) and link.recorder.events.index(e) >= before_callback)
    await until(lambda: len(getattr(link.model.call(callback_leg.call_id), "channels", ())) >= 2)
    # The customer hangs up (as the test's phones never do): the agent's leg ends with it.
    customer_leg = link.model.call(callback_leg.call_id).origin
    await cc.runtime.call_control(link.client.system_name).hangup(customer_leg.name)
    await cc.decision(lambda d: isinstance(d, AgentStateChanged) and d.agent_id == "a1"
                      and d.state is AgentState.AVAILABLE and d.since > 0, timeout=WAIT)
    row = await cc.interaction(callback_leg.call_id.partition(":")[2])
    assert row["direction"] == "out" and row["agents"] == ["a1"]


def new_voicemails(lab):
    """A function giving the messages left in operator@default's INBOX since this call."""
    inbox = lab.root / "var/spool/asterisk/voicemail/default/operator/INBOX"
    before = set(inbox.glob("msg*.txt"))  # none while the folder does not exist
    return lambda: set(inbox.glob("msg*.txt")) - before


async def test_the_voicemail_final_action_leaves_a_message_in_the_mailbox(lab, link, center, phones, calls):
    left = new_voicemails(lab)
    queue = QueueSettings("support", "support>=50", max_wait_seconds=3.0,
                          final_action=Disposition(DispositionKind.VOICEMAIL, "operator@default"))
    cc = await center(queues=(queue,), agents=(agent("a1", phones(), support=80),))
    cc.acd.submit(AgentLogin("a1"))  # staffed, nobody free
    caller = calls("Caller", "2125550173", hold_ms=16000)
    call = await started_call(link, "2125550173")
    _, final = await cc.decision(lambda d: isinstance(d, FinalAction) and d.call_id == call.call_id)
    assert final.kind is DispositionKind.VOICEMAIL
    await until(lambda: caller.poll() is not None, timeout=30)  # the caller speaks, then hangs up
    row = await cc.interaction(call.call_id.partition(":")[2])
    assert row["outcome"] == "voicemail" and row["agents"] == [] and 3.0 <= row["wait_seconds"] < 10.0
    await until(left, timeout=10)
    [message] = left()
    assert "2125550173" in message.read_text()  # the caller's number, in the message's envelope


async def test_the_external_final_action_puts_the_caller_through_to_the_outside_number(link, center, phones, calls):
    outside = phones()
    queue = QueueSettings("support", "support>=50", max_wait_seconds=3.0,
                          final_action=Disposition(DispositionKind.EXTERNAL, "2125550199"))
    cc = await center(queues=(queue,), agents=(agent("a1", phones(), support=80),),
                      outbound_interface=outside.dial_string("{number}"))
    cc.acd.submit(AgentLogin("a1"))  # staffed, nobody free
    calls("Caller", "2125550174", hold_ms=9000)
    call = await started_call(link, "2125550174")
    _, final = await cc.decision(lambda d: isinstance(d, FinalAction) and d.call_id == call.call_id)
    assert (final.kind, final.target) == (DispositionKind.EXTERNAL, "2125550199")
    await until(lambda: outside.answered() == 1, timeout=15)
    row = await cc.interaction(call.call_id.partition(":")[2])
    assert row["outcome"] == "overflowed" and row["agents"] == [] and 3.0 <= row["wait_seconds"] < 6.0
    assert json.loads(row["data"])["acd"]["final_action"] == "external:2125550199"


async def test_a_closed_queue_sends_callers_to_its_closed_action_until_it_opens(lab, link, center, phones, calls):
    left = new_voicemails(lab)
    # A calendar with no opening hours at all: closed whatever the day and time of the run.
    closed = dataclasses.replace(SUPPORT, calendar={"timezone": "UTC"},
                                 closed_action=Disposition(DispositionKind.VOICEMAIL, "operator@default"))
    agent_phone = phones()
    cc = await center(queues=(closed,), agents=(agent("a1", agent_phone, support=80),))
    ready(cc.acd, "a1")  # a free agent, yet the closed queue offers nothing
    caller = calls("Caller", "2125550175", hold_ms=14000)
    call = await started_call(link, "2125550175")
    await until(lambda: caller.poll() is not None, timeout=30)  # the caller speaks, then hangs up
    row = await cc.interaction(call.call_id.partition(":")[2])
    assert row["outcome"] == "voicemail" and row["agents"] == []
    assert json.loads(row["data"])["acd"]["final_action"] == "closed:voicemail:operator@default"
    await until(left, timeout=10)
    assert agent_phone.answered() == 0 and not [d for _, d in cc.decisions if isinstance(d, Offer)]
    cc.acd.update_queue(dataclasses.replace(closed, calendar=None))  # opened live by a supervisor
    calls("Caller", "2125550176", hold_ms=4000)
    opened = await started_call(link, "2125550176")
    _, offer = await cc.decision(lambda d: isinstance(d, Offer) and d.call_id == opened.call_id)
    assert offer.agent_id == "a1"


async def test_a_busy_callback_customer_is_retried_as_busy(link, center, phones, calls):
    # One attempt, so that its outcome is the callback's; the daemon's policy then picks the retry delay.
    queue = dataclasses.replace(SUPPORT, callback=CallbackPolicy(max_attempts=1))
    cc = await center(queues=(queue,), agents=(agent("a1", phones(), support=80),),
                      outbound_interface=phones(PhonePlan(busy=True)).dial_string("{number}"))
    cc.acd.submit(AgentLogin("a1"))
    calls("Caller", "2125550142", hold_ms=10000, dtmf=("1",))
    call = await started_call(link, "2125550142")
    await cc.decision(lambda d: isinstance(d, CallEnded) and d.call_id == call.call_id and d.outcome == "callback")
    cc.acd.submit(AgentReady("a1"))
    _, finished = await cc.decision(lambda d: isinstance(d, CallbackFinished))
    assert (finished.callback_id, finished.outcome, finished.attempts) == (call.call_id, "busy", 1)


async def test_an_agent_whose_device_is_busy_elsewhere_is_not_offered_a_call(link, center, phones, calls):
    cc = await center(agents=(agent("a1", phones(), support=80),))
    ready(cc.acd, "a1")
    await link.client.action("Setvar", {"Variable": "DEVICE_STATE(Custom:a1)", "Value": "INUSE"})
    await until(lambda: cc.acd.engine.agent_snapshot("a1", cc.acd.now()) and _device_busy(cc, "a1"))
    calls("Caller", "2125550151", hold_ms=12000)
    call = await started_call(link, "2125550151")
    await until(lambda: call.call_id in cc.acd.engine.waiting_calls("support"))
    await asyncio.sleep(1.0)  # time for a wrong offer to show
    assert not [d for _, d in cc.decisions if isinstance(d, Offer)]
    await link.client.action("Setvar", {"Variable": "DEVICE_STATE(Custom:a1)", "Value": "NOT_INUSE"})
    _, offer = await cc.decision(lambda d: isinstance(d, Offer) and d.call_id == call.call_id)
    assert offer.agent_id == "a1"


def _device_busy(cc: CallCenter, agent_id: str) -> bool:
    return cc.acd.engine._agents[agent_id].device_busy


SURVEYED = QueueSettings("support", "support>=50", ring_timeout=4, survey_flow="survey_rating")


async def agent_hangs_up(link, cc: CallCenter, call_id: str) -> None:
    """The agent ends the talk (as from the desktop): their leg is hung up, the caller stays."""
    call = link.model.call(call_id)
    agent_leg = next(channel for channel in call.channels.values() if channel.name != call.data["agi_channel"])
    await cc.runtime.call_control(link.client.system_name).hangup(agent_leg.name)


@pytest.mark.parametrize("digits, hold_ms, scores, partial", [
    (("3", "5"), 4000, {"courtesy": 3, "overall": 5}, False),
    (("2",), 500, {"courtesy": 2}, True),  # the caller hangs up before the second question is answered
], ids=["complete", "caller-leaves-mid-survey"])
async def test_a_survey_after_the_agent_call_stores_its_scores(link, center, phones, calls, digits, hold_ms,
                                                             scores, partial):
    cc = await center(queues=(SURVEYED,), agents=(agent("a1", phones(), support=80),),
                      flows=("to_support_queue.toml", "survey_rating.toml"))
    ready(cc.acd, "a1")
    calls("Caller", "2125550161", hold_ms=hold_ms, dtmf=digits, first_dtmf_after_ms=6000, dtmf_gap_ms=2500)
    call = await started_call(link, "2125550161")
    await cc.decision(lambda d: isinstance(d, AgentStateChanged) and d.state is AgentState.ON_CALL)
    await asyncio.sleep(1.0)
    await agent_hangs_up(link, cc, call.call_id)
    await cc.decision(lambda d: isinstance(d, CallEnded) and d.outcome == "completed")
    await link.recorder.wait_for(lambda e: type(e).__name__ == "CallEnded" and e.call_id == call.call_id, timeout=30)
    row = await cc.interaction(call.call_id.partition(":")[2])
    survey = json.loads(row["data"])["survey"]
    assert survey["scores"] == scores and survey["agent"] == "a1" and survey["partial"] is partial
    assert row["survey_score"] == round(sum(scores.values()) / len(scores)) and row["agents"] == ["a1"]


async def test_announcements_then_the_final_action_after_the_maximum_wait(link, center, phones, calls):
    queue = QueueSettings("support", "support>=50", announce_first_after=1.0, announce_every=2.0,
                          max_wait_seconds=5.0, final_action=Disposition(DispositionKind.MESSAGE_HANGUP, "vm-goodbye"))
    cc = await center(queues=(queue,), agents=(agent("a1", phones(), support=80),))
    cc.acd.submit(AgentLogin("a1"))  # staffed, nobody free
    caller = calls("Caller", "2125550171", hold_ms=30000)
    call = await started_call(link, "2125550171")
    _, announce = await cc.decision(lambda d: isinstance(d, Announce) and d.call_id == call.call_id)
    assert announce.position == 1
    _, final = await cc.decision(lambda d: isinstance(d, FinalAction) and d.call_id == call.call_id)
    assert final.kind is DispositionKind.MESSAGE_HANGUP and final.target == "vm-goodbye"
    # Asterisk hangs up on the caller after the message: sipp ends long before its 30 s.
    await until(lambda: caller.poll() is not None, timeout=15)
    row = await cc.interaction(call.call_id.partition(":")[2])
    assert row["outcome"] == "overflowed" and row["agents"] == [] and 5.0 <= row["wait_seconds"] < 15.0
    announcements = [d for _, d in cc.decisions if isinstance(d, Announce) and d.call_id == call.call_id]
    assert len(announcements) >= 2  # at 1 s, then every 2 s until the final action at 5 s
