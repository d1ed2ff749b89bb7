"""CallRecorder.amend: what the desktops learn after a call's end goes into its record, as a newer
version of the same record; amendments of a live call wait for its end."""

from __future__ import annotations

import pytest

from cti.callmodel.bus import EventBus
from cti.callmodel.model import CallModel
from cti.recorder import CallRecorder
from tests.unit.test_callmodel import Pbx

pytestmark = pytest.mark.unit


class Logger:
    def __init__(self) -> None:
        self.records = []

    def put(self, record) -> bool:
        self.records.append(record)
        return True


def recorded_call() -> tuple[Pbx, EventBus, CallRecorder, Logger]:
    model, bus, logger = CallModel(), EventBus(), Logger()
    recorder = CallRecorder(model, bus, logger)
    pbx = Pbx(model)
    return pbx, bus, recorder, logger


def end(pbx: Pbx, bus: EventBus) -> None:
    for uniqueid in ("1.1", "1.0"):
        bus.publish(pbx.hangup(uniqueid))


async def test_an_amendment_after_the_end_writes_the_record_again_with_the_new_fields():
    pbx, bus, recorder, logger = recorded_call()
    pbx.answered_call()
    end(pbx, bus)
    assert len(logger.records) == 1 and logger.records[0].disposition_code is None
    recorder.amend("pbx1:1.0", disposition_code="resolved", wrapup_seconds=12.5, data={"desktops": {"a1": {}}})
    recorder.amend("pbx1:1.0", data={"note": "kept"})
    latest = logger.records[-1]
    assert len(logger.records) == 3 and latest.linkedid == "1.0"
    assert latest.disposition_code == "resolved" and latest.wrapup_seconds == 12.5
    assert latest.data["desktops"] == {"a1": {}} and latest.data["note"] == "kept"  # merged, not replaced
    assert latest.ani == logger.records[0].ani  # the rest of the record unchanged


async def test_amendments_of_a_live_call_are_applied_at_its_end():
    pbx, bus, recorder, logger = recorded_call()
    pbx.answered_call()
    recorder.amend("pbx1:1.0", direction="out", agents=("a1",), dnis="2125550199")
    assert logger.records == []
    end(pbx, bus)
    record = logger.records[0]
    assert (record.direction, record.agents, record.dnis) == ("out", ("a1",), "2125550199")
