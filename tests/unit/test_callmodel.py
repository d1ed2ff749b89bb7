"""CallModel: a real queued call replayed, synthetic sequences, resync after an AMI outage."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from cti.ami.message import Message
from cti.ami.protocol import AmiParser
from tests.unit.test_ami_protocol import captured_events, wire
from cti.callmodel import (
    BusEvent,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallHeld,
    CallModel,
    CallStarted,
    CallState,
    CallTransferred,
    CallUnheld,
    CallUpdated,
    DeviceStateChanged,
    Outcome,
    TransferKind,
)

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "queued-call-ami.jsonl"
TRUNK = "PJSIP/trunk-00000000"
AGENT_LOCAL = "Local/agent1@agents-00000000;1"


def of_type(events: list[BusEvent], event_type: type) -> list:
    return [event for event in events if isinstance(event, event_type)]


class Pbx:
    """A scripted Asterisk: remembers each channel's snapshot headers, stamps events 1 s apart."""

    def __init__(self, model: CallModel, system: str = "pbx1") -> None:
        self.model = model
        self.system = system
        self.now = 1000.0
        self.snapshots: dict[str, dict[str, str]] = {}

    def send(self, event: str, **headers: str) -> list[BusEvent]:
        self.now += 1
        message = Message([("Event", event), ("Timestamp", f"{self.now:.6f}"), *headers.items()])
        return self.model.apply(self.system, message)

    def new_channel(
        self,
        uniqueid: str,
        name: str,
        linkedid: str | None = None,
        *,
        number: str = "5551234",
        caller_name: str = "Alice Caller",
        exten: str = "100",
        state: str = "Ring",
    ) -> list[BusEvent]:
        self.snapshots[uniqueid] = {
            "Channel": name,
            "ChannelStateDesc": state,
            "CallerIDNum": number,
            "CallerIDName": caller_name,
            "Context": "from-trunk",
            "Exten": exten,
            "Uniqueid": uniqueid,
            "Linkedid": linkedid or uniqueid,
        }
        return self.send("Newchannel", **self.snapshots[uniqueid])

    def on(self, uniqueid: str, event: str, **headers: str) -> list[BusEvent]:
        """An event about channel ``uniqueid``, carrying its snapshot (updated by ``headers``)."""
        snapshot = self.snapshots[uniqueid]
        snapshot |= {name: value for name, value in headers.items() if name in snapshot}
        return self.send(event, **(snapshot | headers))

    def prefixed(self, prefix: str, uniqueid: str) -> dict[str, str]:
        return {f"{prefix}{name}": value for name, value in self.snapshots[uniqueid].items()}

    def answered_call(self, linkedid: str = "1.0", agent_id: str = "1.1") -> None:
        self.new_channel(linkedid, TRUNK)
        self.on(linkedid, "Newstate", ChannelStateDesc="Up")
        self.new_channel(agent_id, "PJSIP/agent-00000001", linkedid, exten="agent", state="Down")
        self.on(agent_id, "Newstate", ChannelStateDesc="Up")

    def hangup(
        self, uniqueid: str, cause: str = "16", text: str = "Normal Clearing"
    ) -> list[BusEvent]:
        return self.on(uniqueid, "Hangup", Cause=cause, **{"Cause-txt": text})


@pytest.fixture
def pbx() -> Pbx:
    return Pbx(CallModel())


def replay_reference(model: CallModel) -> list[BusEvent]:
    if not REFERENCE.exists():
        pytest.skip(f"reference capture missing: {REFERENCE} (lives outside the repo, in shared/)")
    events: list[BusEvent] = []
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        fields = json.loads(line)
        fields.pop("_t")  # capture offset, not an AMI header
        events.extend(model.apply(fields["SystemName"], Message.from_mapping(fields)))
    return events


class TestReferenceQueuedCall:
    def test_one_call_with_callers_identity(self) -> None:
        events = replay_reference(CallModel())
        # The queue's Local/agent1 pair carries the trunk's Linkedid: it is the same call.
        (started,) = of_type(events, CallStarted)
        assert started.call_id == "asterisk-lab:asterisk-lab-1795351305.0"
        assert started.ani == "5551234"
        assert started.caller_name == "Alice Caller"
        assert started.dnis == "100"
        assert started.channel == TRUNK

    def test_messages_off_the_wire_give_the_same_events(self) -> None:
        expected = replay_reference(CallModel())
        model, events = CallModel(), []
        for headers in captured_events():
            for message in AmiParser().feed(wire(headers)):
                events.extend(model.apply(message["SystemName"], message))
        assert events == expected

    def test_the_capture_replayed_as_one_stream_repeats_its_events(self) -> None:
        # As bench/ami_ingest.py feeds it: one parser, reads of any size, the capture repeated
        # (same Uniqueids and Linkedid each time: the call ends before it comes again).
        expected = replay_reference(CallModel())
        records = captured_events()
        cycle = b"".join(wire(headers) for headers in records)
        stream, model, parser = cycle * 3, CallModel(), AmiParser()
        messages = [message for start in range(0, len(stream), 4096)
                    for message in parser.feed(stream[start:start + 4096])]
        assert len(messages) == 3 * len(records)
        first, second, third = (
            [event for message in messages[n * len(records):(n + 1) * len(records)]
             for event in model.apply(message["SystemName"], message)] for n in range(3))
        assert first == expected and second == third
        # Only device states differ after the first time: they start from what the last left.
        assert ([e for e in second if not isinstance(e, DeviceStateChanged)]
                == [e for e in first if not isinstance(e, DeviceStateChanged)])
        assert model.malformed_events == 0 and len(model.recent_ended) == 3

    def test_bridged_with_the_agents_local_channel(self) -> None:
        bridged = of_type(replay_reference(CallModel()), CallBridged)
        assert any({TRUNK, AGENT_LOCAL} <= set(event.bridge_channels) for event in bridged)

    def test_ends_with_the_trunks_cause(self) -> None:
        model = CallModel()
        events = replay_reference(model)
        (ended,) = of_type(events, CallEnded)
        assert (ended.cause, ended.cause_txt) == (16, "Normal Clearing")
        assert ended.outcome is Outcome.ANSWERED
        assert ended.started_at < ended.answered_at < ended.timestamp
        assert model.call(ended.call_id) is None
        assert model.recent_ended[-1].call_id == ended.call_id
        assert model.recent_ended[-1].hangup_requested_by == TRUNK
        assert model.malformed_events == 0

    def test_device_states_tracked_and_repeats_suppressed(self) -> None:
        model = CallModel()
        changes = of_type(replay_reference(model), DeviceStateChanged)
        agent = [c.state for c in changes if c.device == "Local/agent1@agents"]
        assert agent == ["INUSE", "NOT_INUSE"]  # the capture repeats each of them
        assert model.devices("asterisk-lab")["PJSIP/trunk"] == "UNAVAILABLE"


class TestCallLifecycle:
    def test_answer_then_hangup_of_every_channel(self, pbx: Pbx) -> None:
        (started,) = pbx.new_channel("1.0", TRUNK)
        assert started.state is CallState.RINGING
        (answered,) = pbx.on("1.0", "Newstate", ChannelStateDesc="Up")
        assert isinstance(answered, CallAnswered)
        pbx.new_channel("1.1", "PJSIP/agent-00000001", "1.0", state="Down")
        assert pbx.hangup("1.0") == []  # the agent's channel still lives
        (ended,) = pbx.hangup("1.1", cause="17", text="User busy")
        # The originating channel's cause is the call's, even when it is not the last to hang up.
        assert (ended.cause, ended.outcome) == (16, Outcome.ANSWERED)

    def test_never_answered(self, pbx: Pbx) -> None:
        pbx.new_channel("1.0", TRUNK)
        (ended,) = pbx.hangup("1.0", cause="19", text="No answer")
        assert (ended.outcome, ended.cause, ended.answered_at) == (Outcome.UNANSWERED, 19, None)

    def test_channel_never_seen_is_adopted(self, pbx: Pbx) -> None:
        # Connected mid-call: the first event we see about the channel is not its Newchannel.
        pbx.snapshots["9.0"] = {
            "Channel": TRUNK, "Uniqueid": "9.0", "Linkedid": "9.0", "CallerIDNum": "42"
        }
        (started,) = pbx.on("9.0", "Newstate", ChannelStateDesc="Up")
        assert (started.state, started.ani) == (CallState.UP, "42")

    def test_hold_and_unhold(self, pbx: Pbx) -> None:
        pbx.answered_call()
        (held,) = pbx.on("1.0", "Hold", MusicClass="default")
        assert isinstance(held, CallHeld)
        assert (held.channel, held.music_class) == (TRUNK, "default")
        assert pbx.model.call("pbx1:1.0").state is CallState.HELD
        (unheld,) = pbx.on("1.0", "Unhold")
        assert isinstance(unheld, CallUnheld)
        assert pbx.model.call("pbx1:1.0").state is CallState.UP

    def test_caller_id_update_with_utf8_names(self, pbx: Pbx) -> None:
        (started,) = pbx.new_channel("1.0", TRUNK, caller_name="José Müller")
        assert started.caller_name == "José Müller"
        name = "Zoë Ærøskøbing"
        (updated,) = pbx.on("1.0", "NewCallerid", CallerIDNum="5559876", CallerIDName=name)
        assert (updated.reason, updated.ani, updated.caller_name) == ("caller_id", "5559876", name)

    def test_caller_id_of_other_channels_leaves_the_ani(self, pbx: Pbx) -> None:
        pbx.answered_call()
        assert pbx.on("1.1", "NewCallerid", CallerIDNum="100", CallerIDName="Agent") == []
        assert pbx.model.call("pbx1:1.0").ani == "5551234"

    def test_dnis_from_newexten_when_the_channel_has_none(self, pbx: Pbx) -> None:
        (started,) = pbx.new_channel("1.0", TRUNK, exten="s")
        assert started.dnis == ""
        (updated,) = pbx.on("1.0", "Newexten", Exten="800")
        assert (updated.reason, updated.dnis) == ("dnis", "800")
        assert pbx.on("1.0", "Newexten", Exten="900") == []  # only the first one counts

    def test_explicit_dnis_overrides(self, pbx: Pbx) -> None:
        pbx.new_channel("1.0", TRUNK, exten="100")
        (updated,) = pbx.model.set_dnis("pbx1:1.0", "18005550100")
        assert updated.dnis == pbx.model.call("pbx1:1.0").dnis == "18005550100"
        assert pbx.model.set_dnis("pbx1:nope", "1") == []

    def test_attached_data(self, pbx: Pbx) -> None:
        pbx.new_channel("1.0", TRUNK)
        assert pbx.model.attach("pbx1:1.0", menu="billing", account="A-17")
        assert pbx.model.call("pbx1:1.0").data == {"menu": "billing", "account": "A-17"}
        assert not pbx.model.attach("pbx1:unknown", menu="x")

    @pytest.mark.parametrize("timestamp", [None, "", "soon"])
    def test_absent_or_unreadable_timestamp_uses_the_clock(self, timestamp: str | None) -> None:
        model = CallModel(clock=lambda: 4242.0)
        headers = {"Event": "Newchannel", "Channel": TRUNK, "Uniqueid": "1.0", "Linkedid": "1.0"}
        if timestamp is not None:
            headers["Timestamp"] = timestamp
        (started,) = model.apply("pbx1", Message.from_mapping(headers))
        assert started.timestamp == 4242.0
        assert model.malformed_events == 0

    def test_two_systems_with_the_same_linkedid_stay_apart(self) -> None:
        model = CallModel()
        east, west = Pbx(model, "east"), Pbx(model, "west")
        east.new_channel("1.0", TRUNK, number="111")
        west.new_channel("1.0", TRUNK, number="222")
        assert {c.call_id: c.ani for c in model.calls()} == {"east:1.0": "111", "west:1.0": "222"}
        (ended,) = east.hangup("1.0")
        assert ended.call_id == "east:1.0"
        assert [c.call_id for c in model.calls()] == ["west:1.0"]


class TestBridgesAndTransfers:
    def test_bridge_membership(self, pbx: Pbx) -> None:
        pbx.answered_call()
        pbx.send("BridgeCreate", BridgeUniqueid="b1", BridgeType="basic")
        pbx.on("1.1", "BridgeEnter", BridgeUniqueid="b1")
        (bridged,) = pbx.on("1.0", "BridgeEnter", BridgeUniqueid="b1")
        assert bridged.bridge_channels == ("PJSIP/agent-00000001", TRUNK)
        (unbridged,) = pbx.on("1.0", "BridgeLeave", BridgeUniqueid="b1")
        assert unbridged.bridge_channels == ("PJSIP/agent-00000001",)
        pbx.send("BridgeDestroy", BridgeUniqueid="b1")
        assert pbx.model.bridge("pbx1", "b1") is None
        assert pbx.model.call("pbx1:1.0").bridges == ["b1"]

    def test_blind_transfer(self, pbx: Pbx) -> None:
        pbx.answered_call()
        (transfer,) = pbx.send(
            "BlindTransfer",
            Result="Success",
            **pbx.prefixed("Transferer", "1.1"),
            **pbx.prefixed("Transferee", "1.0"),
            BridgeUniqueid="b1",
            IsExternal="No",
            Context="agents",
            Extension="200",
        )
        assert isinstance(transfer, CallTransferred)
        assert (transfer.kind, transfer.result) == (TransferKind.BLIND, "Success")
        assert transfer.target == "200@agents"
        assert transfer.transferer_channel == "PJSIP/agent-00000001"
        assert transfer.transferee_channel == TRUNK
        assert pbx.model.call("pbx1:1.0").transfers == [transfer]

    def test_attended_transfer_joins_the_consultation_call(self, pbx: Pbx) -> None:
        pbx.answered_call("1.0", "1.1")  # customer <-> agent
        pbx.new_channel("2.0", "PJSIP/agent-00000002", number="100", state="Up")  # agent dials...
        pbx.new_channel("2.1", "PJSIP/supervisor-00000003", "2.0", state="Up")  # ...a supervisor
        events = pbx.send(
            "AttendedTransfer",
            Result="Success",
            **pbx.prefixed("OrigTransferer", "1.1"),
            OrigBridgeUniqueid="b1",
            **pbx.prefixed("SecondTransferer", "2.0"),
            SecondBridgeUniqueid="b2",
            **pbx.prefixed("Transferee", "1.0"),
            **pbx.prefixed("TransferTarget", "2.1"),
            IsExternal="No",
            DestType="Bridge",
            DestBridgeUniqueid="b1",
        )
        by_call = {event.call_id: event for event in of_type(events, CallTransferred)}
        assert set(by_call) == {"pbx1:1.0", "pbx1:2.0"}
        customer = by_call["pbx1:1.0"]
        assert (customer.kind, customer.dest_type) == (TransferKind.ATTENDED, "Bridge")
        assert customer.target == "PJSIP/supervisor-00000003"
        assert customer.related_call_ids == ("pbx1:2.0",)


class TestMalformedEvents:
    @pytest.mark.parametrize(
        "event, headers",
        [
            ("Newchannel", {"Channel": TRUNK, "Uniqueid": "1.0"}),  # no Linkedid
            ("Newstate", {"Uniqueid": "1.0"}),
            ("Hangup", {"Cause": "16"}),
            ("BridgeEnter", {"Uniqueid": "1.0"}),
            ("DeviceStateChange", {"Device": "PJSIP/100"}),
            ("BlindTransfer", {"TransfererChannel": TRUNK}),
        ],
    )
    def test_counted_and_skipped(self, event: str, headers: dict[str, str]) -> None:
        model = CallModel()
        assert model.apply("pbx1", Message([("Event", event), *headers.items()])) == []
        assert model.malformed_events == 1
        assert list(model.calls()) == []

    def test_an_event_header_that_is_not_first_still_counts(self) -> None:
        model = CallModel()
        message = Message([("Timestamp", "1000.0"), ("Event", "Newchannel"), ("Channel", TRUNK),
                           ("Uniqueid", "1.0"), ("Linkedid", "1.0")])
        (started,) = model.apply("pbx1", message)
        assert isinstance(started, CallStarted) and started.call_id == "pbx1:1.0"

    def test_unknown_and_nameless_events_are_ignored(self) -> None:
        model = CallModel()
        assert model.apply("pbx1", Message.from_mapping({"Event": "VarSet", "Variable": "X"})) == []
        assert model.apply("pbx1", Message.from_mapping({"Response": "Success"})) == []
        assert model.malformed_events == 0


def core_show_channel(uniqueid: str, name: str, linkedid: str, **extra: str) -> Message:
    headers = {
        "Event": "CoreShowChannel",
        "Channel": name,
        "ChannelStateDesc": "Up",
        "CallerIDNum": "5551234",
        "CallerIDName": "Alice Caller",
        "Exten": "100",
        "Uniqueid": uniqueid,
        "Linkedid": linkedid,
        "Application": "Queue",
        "Duration": "00:00:10",
        "BridgeId": "",
    }
    return Message.from_mapping(headers | extra)


def bridge_item(bridge_id: str) -> Message:
    return Message.from_mapping(
        {
            "Event": "BridgeListItem",
            "BridgeUniqueid": bridge_id,
            "BridgeType": "basic",
            "BridgeNumChannels": "2",
        }
    )


def device_state(device: str, state: str) -> Message:
    return Message.from_mapping({"Event": "DeviceStateChange", "Device": device, "State": state})


class TestResync:
    @pytest.fixture
    def pbx(self) -> Pbx:
        pbx = Pbx(CallModel(clock=lambda: 5000.0))
        pbx.answered_call("1.0", "1.1")  # will survive the outage
        pbx.new_channel("2.0", "PJSIP/trunk-00000002")  # will vanish during it
        pbx.send("DeviceStateChange", Device="PJSIP/agent", State="INUSE")
        pbx.model.attach("pbx1:1.0", menu="billing")
        return pbx

    def resync(self, pbx: Pbx, *, restarted: bool = False) -> list[BusEvent]:
        channels = [
            core_show_channel("1.0", TRUNK, "1.0", BridgeId="b1", Duration="00:02:00"),
            core_show_channel("1.1", "PJSIP/agent-00000001", "1.0", BridgeId="b1"),
            core_show_channel(
                "3.0", "PJSIP/trunk-00000003", "3.0", Duration="00:01:40", CallerIDNum="777"
            ),
        ]
        devices = [
            device_state("PJSIP/agent", "INUSE"), device_state("PJSIP/supervisor", "RINGING")
        ]
        return pbx.model.resync("pbx1", channels, [bridge_item("b1")], devices, restarted=restarted)

    def test_vanished_call_is_lost_during_the_outage(self, pbx: Pbx) -> None:
        (lost,) = of_type(self.resync(pbx), CallEnded)
        assert (lost.call_id, lost.cause) == ("pbx1:2.0", None)
        assert lost.outcome is Outcome.LOST_DURING_OUTAGE
        assert pbx.model.call("pbx1:2.0") is None

    def test_surviving_call_keeps_identity_and_data(self, pbx: Pbx) -> None:
        events = self.resync(pbx)
        call = pbx.model.call("pbx1:1.0")
        assert (call.ani, call.dnis, call.data) == ("5551234", "100", {"menu": "billing"})
        assert call.started_at == 1001.0  # from the events before the outage, not re-estimated
        assert call.bridges == ["b1"]
        assert pbx.model.bridge("pbx1", "b1").channel_names() == (TRUNK, "PJSIP/agent-00000001")
        updates = [e.reason for e in of_type(events, CallUpdated) if e.call_id == "pbx1:1.0"]
        assert updates == ["resync"]
        assert not [e for e in of_type(events, CallStarted) if e.call_id == "pbx1:1.0"]

    def test_call_born_during_the_outage_is_started(self, pbx: Pbx) -> None:
        (started,) = of_type(self.resync(pbx), CallStarted)
        assert (started.call_id, started.ani, started.state) == ("pbx1:3.0", "777", CallState.UP)
        assert pbx.model.call("pbx1:3.0").started_at == 5000.0 - 100  # clock minus Duration

    def test_surviving_call_then_ends_normally(self, pbx: Pbx) -> None:
        self.resync(pbx)
        pbx.hangup("1.1")
        (ended,) = of_type(pbx.hangup("1.0"), CallEnded)
        assert (ended.call_id, ended.outcome) == ("pbx1:1.0", Outcome.ANSWERED)

    def test_device_states_rebuilt(self, pbx: Pbx) -> None:
        (change,) = of_type(self.resync(pbx), DeviceStateChanged)
        assert (change.device, change.previous) == ("PJSIP/supervisor", None)
        assert change.state == "RINGING"
        devices = dict(pbx.model.devices("pbx1"))
        assert devices == {"PJSIP/agent": "INUSE", "PJSIP/supervisor": "RINGING"}

    def test_restart_trusts_nothing_from_before(self, pbx: Pbx) -> None:
        events = self.resync(pbx, restarted=True)
        lost = of_type(events, CallEnded)
        assert {e.call_id for e in lost} == {"pbx1:1.0", "pbx1:2.0"}
        assert {e.outcome for e in lost} == {Outcome.LOST_DURING_OUTAGE}
        assert {e.call_id for e in of_type(events, CallStarted)} == {"pbx1:1.0", "pbx1:3.0"}
        assert pbx.model.call("pbx1:1.0").data == {}
        assert len(of_type(events, DeviceStateChanged)) == 2

    def test_incomplete_items_are_counted(self) -> None:
        model = CallModel(clock=lambda: 0.0)
        broken = Message.from_mapping({"Event": "CoreShowChannel", "Channel": TRUNK})
        model.resync("pbx1", [broken], [Message.from_mapping({})], [device_state("", "INUSE")])
        assert model.malformed_events == 3
        assert list(model.calls()) == []

    def test_hold_state_from_before_is_not_trusted(self, pbx: Pbx) -> None:
        pbx.on("1.0", "Hold")
        self.resync(pbx)
        assert pbx.model.call("pbx1:1.0").state is CallState.UP


class TestBusEvents:
    def test_built_like_the_dataclasses_they_are(self) -> None:
        event = CallTransferred("pbx1", 1.5, "pbx1:1.0", TransferKind.BLIND, "Success",
                                TRUNK, "", "100@default")
        assert (event.dest_type, event.related_call_ids) == ("", ())  # the defaults
        same = CallTransferred(system="pbx1", timestamp=1.5, call_id="pbx1:1.0",
                               kind=TransferKind.BLIND, result="Success",
                               transferer_channel=TRUNK, transferee_channel="",
                               target="100@default", dest_type="", related_call_ids=())
        assert same == event and hash(same) == hash(event)
        assert dataclasses.astuple(event)[-3:] == ("100@default", "", ())
        parameters = inspect.signature(CallUpdated).parameters.values()
        assert [(p.name, p.default, p.annotation) for p in parameters] == [
            (f.name, inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default,
             f.type) for f in dataclasses.fields(CallUpdated)]
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.result = "Fail"  # type: ignore[misc]
        with pytest.raises(TypeError):
            CallUpdated("pbx1", 1.0, "pbx1:1.0")  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            DeviceStateChanged("pbx1", 1.0, "PJSIP/1", "INUSE", None, "x")  # type: ignore[call-arg]
