"""Lab phones (sipp UAS) dialled by the real Asterisk through AMI Originate.

OriginateResponse Reason is Asterisk's control frame: 4 answered, 3 rang without an answer.
"""

import itertools

from cti.lab.phones import Phone, PhonePlan
from tests.e2e.conftest import Recorder, until

CHANNEL_IDS = itertools.count(1)


def event(name: str, uniqueid: str):
    return lambda message: message.get("Event") == name and message.get("Uniqueid") == uniqueid


async def originate(link, events: Recorder, phone: Phone, timeout_ms: int):
    """Ring the phone; once answered, Asterisk waits 1 s and hangs up. Returns the
    OriginateResponse and the channel's Hangup."""
    channel_id = f"phone-test-{next(CHANNEL_IDS)}"
    await link.client.action("Originate", {
        "Channel": phone.dial_string("agent1"), "Application": "Wait", "Data": "1",
        "Timeout": str(timeout_ms), "Async": "true", "ChannelId": channel_id})
    response = await events.wait_for(event("OriginateResponse", channel_id), timeout=10)
    return response, await events.wait_for(event("Hangup", channel_id), timeout=10)


async def test_answering_phone_answers_and_takes_the_bye(link, events, phones):
    phone = phones(PhonePlan(answer_after_ms=300))
    response, _ = await originate(link, events, phone, timeout_ms=5000)
    assert (response["Response"], response["Reason"]) == ("Success", "4")
    await until(lambda: phone.byes() == 1, timeout=5)
    assert (phone.invites(), phone.answered()) == (1, 1), phone.log()
    assert phone.running


async def test_unanswered_phone_is_cancelled_and_serves_the_next_call(link, events, phones):
    phone = phones(PhonePlan(answer_after_ms=None))
    for _ in range(2):
        response, hangup = await originate(link, events, phone, timeout_ms=1000)
        assert (response["Response"], response["Reason"]) == ("Failure", "3")
        assert hangup["Cause"] == "19"  # no answer
    await until(lambda: phone.log().count("SIP/2.0 487 Request Terminated") == 2, timeout=5)
    assert phone.running
    assert (phone.invites(), phone.answered()) == (2, 0), phone.log()


async def test_cancel_before_the_answer_leaves_the_phone_answering(link, events, phones):
    phone = phones(PhonePlan(answer_after_ms=1500))
    cancelled, _ = await originate(link, events, phone, timeout_ms=500)
    answered, _ = await originate(link, events, phone, timeout_ms=5000)
    assert cancelled["Reason"] == "3" and answered["Reason"] == "4"
    await until(lambda: phone.byes() == 1, timeout=5)
    assert (phone.invites(), phone.answered()) == (2, 1), phone.log()


async def test_busy_phone_refuses_with_user_busy(link, events, phones):
    phone = phones(PhonePlan(busy=True))
    response, hangup = await originate(link, events, phone, timeout_ms=5000)
    # Asterisk 22 reports a PJSIP 486 as Reason 0 (failure), not 5 (busy): the busy signal is
    # the channel's hangup cause.
    assert (response["Response"], response["Reason"]) == ("Failure", "0")
    assert hangup["Cause"] == "17"  # user busy
    assert (phone.invites(), phone.answered()) == (1, 0), phone.log()
    assert phone.running
