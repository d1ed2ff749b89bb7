"""The callback dialer reads a callback's outcome from Asterisk's events, in either order.

No Asterisk here: the Originate is recorded by a fake call control, and the events are the ones
Asterisk 22 sent on the lab for a busy and an unanswered customer (tests/e2e has the real thing).
"""

from __future__ import annotations

import asyncio

import pytest

from acd import CallbackDial, CallbackResult
from cti import acd_dialer
from cti.acd_dialer import AcdDialer
from cti.ami.message import Message
from cti.queued_call import QueueingSettings

pytestmark = pytest.mark.unit


class Originations:
    """Call control that records each Originate's keyword arguments."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def originate(self, channel: str, context: str, exten: str, **options) -> None:
        self.sent.append(options)


class Results:
    def __init__(self) -> None:
        self.submitted: list = []

    def submit(self, event) -> None:
        self.submitted.append(event)


async def dialled() -> tuple[AcdDialer, Results, str]:
    """A callback being dialled; returns the dialer, what it submitted, the channel id it chose."""
    control, results = Originations(), Results()
    dialer = AcdDialer(results, None, lambda system: control,
                       QueueingSettings(outbound_interface="PJSIP/{number}@trunk"), lambda server: server)
    dialer.on_decision(CallbackDial("pbx:1.0", "a1", "2125550142", 1, "support"))
    await asyncio.sleep(0)
    [options] = control.sent
    assert options["channel_id"] == options["action_id"]  # the DialEnd is found by its channel's id
    return dialer, results, options["channel_id"]


def dial_end(channel_id: str, status: str) -> Message:
    return Message([("Event", "DialEnd"), ("DestUniqueid", channel_id), ("DialStatus", status)])


def response(action_id: str, reason: str, result: str = "Failure") -> Message:
    return Message([("Event", "OriginateResponse"), ("ActionID", action_id), ("Response", result),
                    ("Reason", reason), ("Uniqueid", action_id)])


@pytest.mark.parametrize(("status", "outcome"), [("BUSY", "busy"), ("NOANSWER", "no_answer"),
                                                  ("CHANUNAVAIL", "failed")])
async def test_a_failure_with_reason_0_takes_its_outcome_from_the_dial_end_before_it(status, outcome):
    dialer, results, channel_id = await dialled()
    dialer.on_ami_event("pbx", dial_end(channel_id, status))
    dialer.on_ami_event("pbx", response(channel_id, "0"))
    assert results.submitted == [CallbackResult("pbx:1.0", outcome)]


async def test_a_dial_end_just_after_the_response_still_decides_the_outcome():
    dialer, results, channel_id = await dialled()
    dialer.on_ami_event("pbx", response(channel_id, "0"))
    assert results.submitted == []  # waiting for the DialEnd
    dialer.on_ami_event("pbx", dial_end(channel_id, "BUSY"))
    assert results.submitted == [CallbackResult("pbx:1.0", "busy")]


async def test_a_failure_whose_dial_end_never_comes_is_reported_failed_after_the_wait(monkeypatch):
    monkeypatch.setattr(acd_dialer, "DIAL_END_WAIT_S", 0.01)
    dialer, results, channel_id = await dialled()
    dialer.on_ami_event("pbx", response(channel_id, "0"))
    await asyncio.sleep(0.05)
    assert results.submitted == [CallbackResult("pbx:1.0", "failed")]
    dialer.on_ami_event("pbx", dial_end(channel_id, "BUSY"))  # too late: nothing more
    assert len(results.submitted) == 1


@pytest.mark.parametrize(("reason", "result", "outcome"), [("4", "Success", "answered"), ("3", "Failure", "no_answer"),
                                                           ("5", "Failure", "busy")])
async def test_a_reason_asterisk_gives_is_taken_as_it_is(reason, result, outcome):
    dialer, results, channel_id = await dialled()
    dialer.on_ami_event("pbx", dial_end(channel_id, "CHANUNAVAIL"))  # the Reason wins over it
    dialer.on_ami_event("pbx", response(channel_id, reason, result))
    assert results.submitted == [CallbackResult("pbx:1.0", outcome)]


async def test_events_of_other_calls_are_ignored():
    dialer, results, channel_id = await dialled()
    dialer.on_ami_event("pbx", dial_end("asterisk-1.2", "BUSY"))
    dialer.on_ami_event("pbx", response("someone-else", "0"))
    assert results.submitted == []
