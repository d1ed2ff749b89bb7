"""The agent desks with the real ACD service and fakes for Asterisk, sockets and the CRM (desktop_fakes)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from acd import AgentState, CallAbandoned, CallbackRequested, CallCompleted, Offer
from cti.desktop.service import Refused
from cti.queued_call import DialAgent, Hold, Reconnect, Requeue
from tests.unit.desktop_fakes import Center, FakeModel, MemorySessionStore, settle

pytestmark = pytest.mark.unit

A1_LEG, A2_LEG = "PJSIP/trunk-a1leg", "PJSIP/trunk-a2leg"


@pytest.fixture
async def center():
    instance = await Center().start()
    await instance.log_in("a1")
    return instance


def talk_commands(center: Center, call_id: str) -> list:
    return [item for item in center.posted(call_id) if not isinstance(item, Offer)]


async def test_the_offer_pops_once_before_the_answer_with_the_call_data(center):
    call_id = center.queue_call("5551234")
    await settle()
    offers = center.sockets["a1"].of("offer")
    assert len(offers) == 1
    call = offers[0]["call"]
    assert call["call_id"] == call_id and call["state"] == "ringing" and call["kind"] == "inbound"
    assert call["pop"]["customer"]["name"] == "José Müller" and call["pop"]["account"] == "12345"
    assert center.sockets["a1"].of("state")[-1]["state"] == "reserved"

    await center.answered(call_id, "a1", A1_LEG)
    assert center.sockets["a1"].events() == ["connected"]
    assert len(center.sockets["a1"].of("offer")) == 1  # never again for the same call


async def test_a_pop_still_being_built_when_the_caller_hangs_up_is_never_sent(center):
    center.pops.gate = asyncio.Event()
    call_id = center.queue_call("5551234")
    await settle()
    center.acd.submit(CallAbandoned(call_id))  # the caller hangs up while ringing
    center.pops.gate.set()
    await settle()
    assert center.sockets["a1"].of("offer") == []
    assert center.sockets["a1"].events() == ["missed"]


async def test_hold_posts_the_command_before_moving_the_agent_leg_then_resumes(center):
    call_id = center.queue_call("5551234")
    await center.answered(call_id, "a1", A1_LEG)
    center.posted(call_id)  # the offer
    seen_in_inbox = []
    center.ami.on_action = lambda name, headers: seen_in_inbox.extend(center.inboxes[call_id]._queue)
    await center.command("a1", "hold", call_id=call_id)
    assert center.ami.named("Redirect") == [{"Channel": A1_LEG, "Context": "cti-holding", "Exten": "s",
                                             "Priority": "1"}]
    assert seen_in_inbox == [Hold()]  # the session finds it when the agent's leg leaves the bridge
    await center.command("a1", "unhold", call_id=call_id)
    assert talk_commands(center, call_id) == [Hold(), Reconnect(A1_LEG, "a1")]
    center.bridge(call_id, center.customer(call_id), A1_LEG)
    await settle()
    assert center.sockets["a1"].events() == ["connected", "held", "resumed"]


async def test_an_attended_transfer_pops_the_second_desk_and_records_both_agents(center):
    await center.log_in("a2")
    call_id = center.queue_call("5551234")
    await center.answered(call_id, "a1", A1_LEG)
    center.posted(call_id)
    await center.command("a1", "disposition", call_id=call_id, notes="wants a refund")

    await center.command("a1", "consult", call_id=call_id, agent="a2", note="refund over 500")
    assert talk_commands(center, call_id) == [Hold()]
    assert center.ami.named("Setvar") == [{"Channel": A1_LEG, "Variable": "CTI_CONSULT_TARGET",
                                           "Value": "PJSIP/trunk/sip:a2@127.0.0.1:5999"}]
    assert center.ami.named("Redirect")[-1]["Context"] == "cti-consult"
    assert center.acd.engine.agent_state("a2") is AgentState.NOT_READY  # out of routing meanwhile
    await settle()
    pop = center.sockets["a2"].of("offer")[0]["call"]["pop"]
    assert pop["customer"]["name"] == "José Müller" and pop["account"] == "12345"
    assert pop["transfer"] == {"from_agent": "a1", "from_name": "Agent A1", "note": "refund over 500",
                               "attended": True}

    center.dial(call_id, "a2", A2_LEG)
    center.bridge(call_id, A1_LEG, A2_LEG)  # the agents talk; the caller hears music
    await settle()
    assert center.sockets["a1"].events()[-1] == center.sockets["a2"].events()[-1] == "consult_connected"

    center.now += 5
    await center.command("a1", "complete_transfer", call_id=call_id)
    assert talk_commands(center, call_id) == [Reconnect(A2_LEG, "a2")]
    assert not center.ami.named("Hangup")  # not before the caller is bridged with a2
    center.bridge(call_id, center.customer(call_id), A2_LEG)
    await settle()
    assert center.ami.named("Hangup") == [{"Channel": A1_LEG, "Cause": "16"}]
    assert center.sockets["a1"].events()[-1] == "transferred"
    assert center.sockets["a2"].events()[-1] == "connected"

    await center.command("a2", "disposition", call_id=call_id, code="resolved", notes="refund approved")
    record = center.recorder.fields[call_id]
    assert record["disposition_code"] == "resolved"
    assert record["disposition_notes"] == "a1: wants a refund\na2: refund approved"
    assert set(record["data"]["desktops"]) == {"a1", "a2"} and record["hold_seconds"] == pytest.approx(5)


async def test_an_agent_cannot_act_on_another_agents_call(center):
    await center.log_in("a2")
    call_id = center.queue_call("5551234")
    await center.answered(call_id, "a1", A1_LEG)
    with pytest.raises(Refused) as refused:
        await center.command("a2", "hangup", call_id=call_id)
    assert refused.value.code == "not_your_call"
    assert not center.ami.named("Hangup")


async def test_blind_transfer_to_a_queue_posts_requeue_before_hanging_up_the_agent(center):
    call_id = center.queue_call("5551234")
    await center.answered(call_id, "a1", A1_LEG)
    center.posted(call_id)
    seen_in_inbox = []
    center.ami.on_action = lambda name, headers: seen_in_inbox.extend(center.inboxes[call_id]._queue)
    await center.command("a1", "transfer", call_id=call_id, queue="support")
    await settle()
    assert seen_in_inbox == [Requeue("support")]
    assert center.ami.named("Hangup") == [{"Channel": A1_LEG, "Cause": "16"}]
    assert center.sockets["a1"].events()[-1] == "transferred"


async def test_a_blind_transfer_to_a_busy_or_unknown_agent_is_refused(center):
    await center.log_in("a2", ready=False)
    call_id = center.queue_call("5551234")
    await center.answered(call_id, "a1", A1_LEG)
    for agent, code in (("a2", "agent_busy"), ("a9", "unknown_agent")):
        with pytest.raises(Refused) as refused:
            await center.command("a1", "transfer", call_id=call_id, agent=agent)
        assert refused.value.code == code
    assert not [item for item in center.posted(call_id) if isinstance(item, DialAgent)]


async def test_wrap_up_has_the_queue_timer_and_needs_a_disposition_to_end(center):
    call_id = center.queue_call("5551234")
    await center.answered(call_id, "a1", A1_LEG)
    center.hang_up(call_id, A1_LEG)
    center.acd.submit(CallCompleted(call_id))  # the session saw the talk end
    await settle()
    wrapup = center.sockets["a1"].of("wrapup")[-1]["wrapup"]
    assert wrapup["call_id"] == call_id and wrapup["ends_at"] - wrapup["started_at"] == 30
    with pytest.raises(Refused) as refused:
        await center.command("a1", "end_wrapup", call_id=call_id)
    assert refused.value.code == "disposition_required"
    with pytest.raises(Refused):
        await center.desks.logout("a1")
    center.now += 12
    await center.command("a1", "disposition", call_id=call_id, code="resolved", notes="done")
    await center.command("a1", "end_wrapup", call_id=call_id)
    assert center.acd.engine.agent_state("a1") is AgentState.AVAILABLE
    record = center.recorder.fields[call_id]
    assert record["disposition_code"] == "resolved" and record["wrapup_seconds"] == pytest.approx(12)
    await center.desks.logout("a1")
    assert center.acd.engine.agent_state("a1") is AgentState.LOGGED_OUT


async def test_logout_on_a_call_is_refused_with_a_reason(center):
    call_id = center.queue_call("5551234")
    await center.answered(call_id, "a1", A1_LEG)
    with pytest.raises(Refused) as refused:
        await center.desks.logout("a1")
    assert refused.value.code == "on_call" and "hang up" in refused.value.message


async def test_a_second_login_takes_over_and_tells_the_first_desktop(center):
    first = center.sockets["a1"]
    assert (await center.desks.login("a1", "secret-pw")).replaced
    assert first.of("taken_over") and first.closed and first.close_code == 4001
    second = await center.connect("a1")
    assert second.of("hello")[0]["state"]["state"] == "available"  # the agent's state goes on


async def test_an_available_agent_whose_desktop_stays_away_is_set_not_ready():
    center = await Center(away_after_seconds=0.05).start()
    await center.log_in("a1", "a2")
    for agent_id in ("a1", "a2"):
        center.desks.disconnect(agent_id, center.sockets[agent_id])
    back = await center.connect("a2")  # within the grace: nothing changes
    await asyncio.sleep(0.15)
    snapshot = center.acd.engine.agent_snapshot("a1", center.acd.now())
    assert (snapshot.state, snapshot.reason) == (AgentState.NOT_READY, "desktop closed")
    assert center.acd.engine.agent_state("a2") is AgentState.AVAILABLE
    call_id = center.queue_call("5551234")
    assert [offer.agent_id for offer in center.posted(call_id) if isinstance(offer, Offer)] == ["a2"]
    assert back.of("hello")


async def test_stopping_the_daemon_is_no_desktop_going_away():
    center = await Center(away_after_seconds=0.01).start()
    await center.log_in("a1")
    await center.desks.close()  # closes the sockets; their handlers then say so
    center.desks.disconnect("a1", center.sockets["a1"])
    await asyncio.sleep(0.05)
    assert center.acd.engine.agent_state("a1") is AgentState.AVAILABLE


async def test_a_desktop_away_while_its_agent_is_on_a_call_changes_nothing(center):
    call_id = center.queue_call("5551234")
    await center.answered(call_id, "a1", A1_LEG)
    center.desks.settings = replace(center.desks.settings, away_after_seconds=0.01)
    center.desks.disconnect("a1", center.sockets["a1"])
    await asyncio.sleep(0.05)
    assert center.acd.engine.agent_state("a1") is AgentState.ON_CALL


async def test_bad_commands_are_refused_with_a_reason(center):
    cases = [({"type": "fly"}, "unknown_command"), ({"type": "not_ready", "reason": "nap"}, "unknown_reason"),
             ({"type": "hangup"}, "bad_request"), ({"type": "dial", "number": "12; rm"}, "bad_number"),
             ({"type": "hold", "call_id": "pbx:nope"}, "not_your_call")]
    for command, code in cases:
        with pytest.raises(Refused) as refused:
            await center.desks.command("a1", command)
        assert refused.value.code == code, command


async def test_click_to_dial_originates_the_agent_then_the_number_and_restores_the_state(center):
    result = await center.command("a1", "dial", number="+15557654321")
    call_id = result["call_id"]
    originate = center.ami.named("Originate")[0]
    assert originate["Channel"] == "PJSIP/trunk/sip:a1@127.0.0.1:5999" and originate["Context"] == "cti-dial-out"
    assert "CTI_DIAL_OUT=PJSIP/trunk/sip:+15557654321@127.0.0.1:5998" in originate["Variable"]
    assert call_id == f"pbx:{originate['ChannelId']}"
    assert center.acd.engine.agent_snapshot("a1", center.now).reason == "outbound"
    await settle()
    assert center.sockets["a1"].of("offer")[0]["call"]["kind"] == "outbound"

    center.dial(call_id, "a1", A1_LEG)
    center.bridge(call_id, A1_LEG, "PJSIP/trunk-customer")
    center.hang_up(call_id, A1_LEG)
    await settle()
    assert center.recorder.fields[call_id]["direction"] == "out"
    assert center.recorder.fields[call_id]["outcome"] == "completed"
    assert center.sockets["a1"].of("wrapup")[-1]["wrapup"]["ends_at"] is not None
    await center.command("a1", "disposition", call_id=call_id, code="resolved")
    await center.command("a1", "end_wrapup", call_id=call_id)
    assert center.acd.engine.agent_state("a1") is AgentState.AVAILABLE  # as before the call


async def test_a_restarted_daemon_restores_the_desk_and_the_call_in_progress():
    store, model = MemorySessionStore(), FakeModel()
    before = await Center(store=store, model=model).start()
    await before.log_in("a1")
    call_id = before.queue_call("5551234")
    await before.answered(call_id, "a1", A1_LEG)
    model.add(call_id, before.customer(call_id), A1_LEG, agi_channel=before.customer(call_id))

    after = await Center(store=store, model=model).start()  # the same database and Asterisk
    socket = await after.connect("a1")
    hello = socket.of("hello")[0]
    assert hello["call"]["call_id"] == call_id and hello["call"]["state"] == "connected"
    assert hello["call"]["pop"]["customer"]["name"] == "José Müller"
    assert after.acd.engine.agent_snapshot("a1", after.now).reason == "call in progress"
    after.hang_up(call_id, A1_LEG)
    await settle()
    await after.command("a1", "disposition", call_id=call_id, code="resolved")
    await after.command("a1", "end_wrapup", call_id=call_id)
    assert after.acd.engine.agent_state("a1") is AgentState.AVAILABLE  # ready, as before the restart


async def test_a_refused_hold_leaves_the_call_connected_and_the_session_no_music_for_nothing(center):
    call_id = center.queue_call("5551234")
    await center.answered(call_id, "a1", A1_LEG)
    center.posted(call_id)
    center.ami.refuse.add("Redirect")
    with pytest.raises(Refused) as refused:
        await center.command("a1", "hold", call_id=call_id)
    assert refused.value.code == "failed"
    assert talk_commands(center, call_id) == [Hold(), Reconnect(A1_LEG, "a1")]
    assert center.desks.hello(center.desks.desk_of("a1"))["call"]["state"] == "connected"


async def test_a_callback_pops_when_the_acd_dials_it_and_follows_the_customers_new_call():
    center = await Center().start()
    await center.log_in("a1", ready=False)
    call_id = center.queue_call("2125550100")
    center.acd.submit(CallbackRequested(call_id, "2125550100"))
    await center.command("a1", "ready")  # the ACD reserves a1 and dials the customer
    await settle()
    pop = center.sockets["a1"].of("offer")[0]["call"]["pop"]
    assert pop["kind"] == "callback" and pop["ani"] == "2125550100"
    new_call = "pbx:1700000999.5"  # the originated call the customer answered
    center.dial(new_call, "a1", A1_LEG)
    center.bridge(new_call, "PJSIP/trunk-customer", A1_LEG)
    await settle()
    assert center.sockets["a1"].of("call")[-1]["call"]["call_id"] == new_call
    assert center.sockets["a1"].events() == ["connected"]
