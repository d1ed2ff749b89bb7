"""CallControl: operations mapped to AMI actions (recorded by a fake sender), inputs validated."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cti.ami.message import Message
from cti.callmodel import CallControl, CallControlError

pytestmark = pytest.mark.unit

AGENT = "PJSIP/agent-00000001"
CUSTOMER = "PJSIP/trunk-00000000"
DIAL = ("PJSIP/100", "outbound", "5551234")  # channel, context, exten of an Originate


@dataclass
class SentAction:
    name: str
    headers: dict[str, str]
    idempotent: bool | None
    timeout: float | None


@dataclass
class FakeSender:
    """Records actions instead of talking to Asterisk; answers with ``reply``."""

    reply: Message = field(default_factory=lambda: Message.from_mapping({"Response": "Success"}))
    sent: list[SentAction] = field(default_factory=list)

    async def action(
        self,
        name: str,
        headers: dict[str, str],
        *,
        idempotent: bool | None = None,
        timeout: float | None = None,
    ) -> Message:
        self.sent.append(SentAction(name, dict(headers), idempotent, timeout))
        return self.reply

    @property
    def last(self) -> SentAction:
        return self.sent[-1]


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def control(sender: FakeSender) -> CallControl:
    return CallControl(sender)


async def test_hangup(control: CallControl, sender: FakeSender) -> None:
    await control.hangup(CUSTOMER, cause=17)
    assert sender.last == SentAction("Hangup", {"Channel": CUSTOMER, "Cause": "17"}, True, None)


async def test_redirect_of_two_channels(control: CallControl, sender: FakeSender) -> None:
    await control.redirect("Local/agent1@agents-00000000;1", "ivr", "500", extra_channel=AGENT)
    assert sender.last.name == "Redirect"
    assert sender.last.headers == {
        "Channel": "Local/agent1@agents-00000000;1",
        "Context": "ivr",
        "Exten": "500",
        "Priority": "1",
        "ExtraChannel": AGENT,
        "ExtraContext": "ivr",
        "ExtraExten": "500",
        "ExtraPriority": "1",
    }
    assert sender.last.idempotent is False


async def test_transfers(control: CallControl, sender: FakeSender) -> None:
    await control.blind_transfer(CUSTOMER, "agents", "200")
    await control.attended_transfer(AGENT, "300", "agents")
    assert [(a.name, a.headers) for a in sender.sent] == [
        ("BlindTransfer", {"Channel": CUSTOMER, "Context": "agents", "Exten": "200"}),
        ("Atxfer", {"Channel": AGENT, "Exten": "300", "Context": "agents"}),
    ]


async def test_originate(control: CallControl, sender: FakeSender) -> None:
    await control.originate(
        "PJSIP/100",
        "outbound",
        "5551234",
        caller_id='"Campaign" <5550000>',
        variables={"CAMPAIGN": "spring", "CDR(userfield)": "lead-42"},
        timeout_ms=20_000,
        action_id="orig-1",
        channel_id="cti-0001",
    )
    assert sender.last == SentAction(
        "Originate",
        {
            "Channel": "PJSIP/100",
            "Context": "outbound",
            "Exten": "5551234",
            "Priority": "1",
            "Timeout": "20000",
            "Async": "true",
            "CallerID": '"Campaign" <5550000>',
            "Variable": "CAMPAIGN=spring,CDR(userfield)=lead-42",
            "ActionID": "orig-1",
            "ChannelId": "cti-0001",
        },
        False,
        None,
    )


async def test_synchronous_originate_waits_longer_than_its_ring_timeout(
    control: CallControl, sender: FakeSender
) -> None:
    await control.originate("PJSIP/100", "outbound", "5551234", timeout_ms=20_000, async_=False)
    assert sender.last.headers["Async"] == "false"
    assert sender.last.timeout > 20


async def test_hold_redirects_both_parties_and_unhold_bridges_them(sender: FakeSender) -> None:
    control = CallControl(sender, hold_context="moh-hold", holding_context="agent-wait")
    await control.hold(CUSTOMER, AGENT)
    assert (sender.last.name, sender.last.headers) == (
        "Redirect",
        {
            "Channel": CUSTOMER,
            "Context": "moh-hold",
            "Exten": "s",
            "Priority": "1",
            "ExtraChannel": AGENT,
            "ExtraContext": "agent-wait",
            "ExtraExten": "s",
            "ExtraPriority": "1",
        },
    )
    await control.unhold(CUSTOMER, AGENT)
    assert (sender.last.name, sender.last.headers) == (
        "Bridge",
        {"Channel1": CUSTOMER, "Channel2": AGENT, "Tone": "no"},
    )


async def test_error_response_raises(sender: FakeSender) -> None:
    sender.reply = Message.from_mapping({"Response": "Error", "Message": "No such channel"})
    with pytest.raises(CallControlError, match="Hangup failed: No such channel") as raised:
        await CallControl(sender).hangup(CUSTOMER)
    assert raised.value.response is sender.reply


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.hangup("/^PJSIP/.*$/"), id="hangup-regex"),
        pytest.param(lambda c: c.hangup("PJSIP/1\r\nAction: Originate"), id="crlf-injection"),
        pytest.param(lambda c: c.hangup(""), id="empty-channel"),
        pytest.param(lambda c: c.hangup("trunk-00000000"), id="no-technology"),
        pytest.param(lambda c: c.hangup(CUSTOMER, cause=200), id="cause-out-of-range"),
        pytest.param(lambda c: c.redirect(CUSTOMER, "my context", "100"), id="space-in-context"),
        pytest.param(lambda c: c.redirect(CUSTOMER, "ivr", "100", priority=0), id="priority-zero"),
        pytest.param(lambda c: c.blind_transfer(CUSTOMER, "agents", ""), id="empty-exten"),
        pytest.param(lambda c: c.originate(*DIAL, caller_id="A\nB"), id="lf-caller-id"),
        pytest.param(lambda c: c.originate(*DIAL, variables={"A": "x,y"}), id="comma-value"),
        pytest.param(lambda c: c.originate(*DIAL, variables={"A B": "x"}), id="bad-var-name"),
        pytest.param(lambda c: c.originate(*DIAL, timeout_ms=0), id="zero-timeout"),
    ],
)
async def test_invalid_input_is_refused_before_sending(
    call, control: CallControl, sender: FakeSender
) -> None:
    with pytest.raises(ValueError):
        await call(control)
    assert sender.sent == []


def test_invalid_hold_context_is_refused_at_construction(sender: FakeSender) -> None:
    with pytest.raises(ValueError, match="hold_context"):
        CallControl(sender, hold_context="hold\r\n")
