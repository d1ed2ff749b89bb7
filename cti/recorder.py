"""Every call the model closes becomes one interaction record in the CRM store.

A call the ACD handled carries its ticket (``data["acd"]``, see cti.queued_call): queue, the
agents who answered, the times of queueing, offer and the agent's answer (not the IVR's), and the ACD's outcome (completed, abandoned with the
position reached, callback requested, voicemail...). For other calls the outcome is read from
what the call model saw: lost during an outage, transferred, bridged with another party
(completed), answered with no one else (handled by the daemon alone: ivr_only), or never
answered (the caller left: abandoned).

What is learnt after the end (an agent's disposition, notes and wrap-up) is added with ``amend``:
the record is written again with the new fields, a newer revision of the same row (the logger
upserts by SystemName + Linkedid). Amendments of a call still live wait for its end.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cti.callmodel.bus import EventBus
from cti.callmodel.events import CallBridged, CallEnded, Outcome
from cti.callmodel.model import Call, CallModel
from crm_bridge.interactions import InteractionOutcome, InteractionRecord
from crm_bridge.logger import InteractionLogger


# Record fields that amendments merge into rather than replace.
_MERGED_FIELDS = frozenset({"data", "ivr_data"})


class CallRecorder:
    def __init__(self, model: CallModel, bus: EventBus, logger: InteractionLogger, *, remembered: int = 4096) -> None:
        self.model = model
        self.logger = logger
        # Calls that shared a bridge with another party: at their end the bridge is gone.
        self._bridged: set[str] = set()
        # The last records written, and amendments of calls not ended yet, by call id (bounded:
        # a wrap-up is minutes, not thousands of calls, after its call).
        self._written: OrderedDict[str, InteractionRecord] = OrderedDict()
        self._pending: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._remembered = remembered
        bus.subscribe(self._on_event, (CallBridged, CallEnded))

    def amend(self, call_id: str, **fields: Any) -> None:
        """Set InteractionRecord ``fields`` of a call (``data`` is merged): written again now if
        the call has ended, else with its record at the end."""
        record = self._written.get(call_id)
        if record is None:
            pending = self._pending.setdefault(call_id, {})
            _merge(pending, fields)
            _trim(self._pending, self._remembered)
            return
        self._write(call_id, _amended(record, fields))

    def _on_event(self, event) -> None:
        if isinstance(event, CallBridged):
            if len(event.bridge_channels) > 1:
                self._bridged.add(event.call_id)
            return
        call = next((c for c in reversed(self.model.recent_ended) if c.call_id == event.call_id), None)
        bridged = event.call_id in self._bridged
        self._bridged.discard(event.call_id)
        if call is not None:
            record = self.record(call, event, bridged)
            self._write(event.call_id, _amended(record, self._pending.pop(event.call_id, {})))

    def _write(self, call_id: str, record: InteractionRecord) -> None:
        self._written[call_id] = record
        self._written.move_to_end(call_id)
        _trim(self._written, self._remembered)
        self.logger.put(record)

    @staticmethod
    def record(call: Call, ended: CallEnded, bridged: bool) -> InteractionRecord:
        ivr = call.data.get("ivr") or {}
        acd = call.data.get("acd") or {}
        return InteractionRecord(
            system_name=call.system, linkedid=call.linkedid, started_at=_utc(ended.started_at),
            direction=call.data.get("direction", "in"), customer_id=call.data.get("customer_id"),
            ani=call.ani or None, caller_name=call.caller_name or None, dnis=call.dnis or None,
            answered_at=_utc(acd["answered_at"] if acd.get("queued_at") else ended.answered_at),
            ended_at=_utc(ended.timestamp),
            outcome=_outcome(call, ended, bridged), hangup_cause=ended.cause,
            ivr_path=tuple(ivr.get("path", ())), ivr_data=dict(ivr.get("values", {})),
            survey_score=_survey_score(call.data.get("survey")),
            **_queue_fields(acd, ended.timestamp),
            data={key: value for key, value in call.data.items() if key != "ivr"} | {"ivr_result": ivr})


def _merge(into: dict[str, Any], fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        into[name] = {**into.get(name, {}), **value} if name in _MERGED_FIELDS else value


def _amended(record: InteractionRecord, fields: Mapping[str, Any]) -> InteractionRecord:
    if not fields:
        return record
    changes = {name: {**getattr(record, name), **value} if name in _MERGED_FIELDS else value
               for name, value in fields.items()}
    return dataclasses.replace(record, **changes)


def _trim(remembered: OrderedDict, size: int) -> None:
    while len(remembered) > size:
        remembered.popitem(last=False)


def _queue_fields(acd: dict, ended_at: float) -> dict:
    """The ACD's part of the record; wait runs from queueing to the answer, to the final action
    or refusal that sent the call on, or to the hangup."""
    if not acd.get("queued_at"):
        return {"queue": acd.get("queue"), "agents": tuple(acd.get("agents", ()))}
    answered, talk_end = acd.get("answered_at"), acd.get("talk_ended_at")
    return {
        "queue": acd["queue"], "priority": acd.get("priority") or 0, "agents": tuple(acd.get("agents", ())),
        "queued_at": _utc(acd["queued_at"]), "offered_at": _utc(acd.get("offered_at")),
        "wait_seconds": max(0.0, (answered or acd.get("left_queue_at") or ended_at) - acd["queued_at"]),
        "ring_seconds": acd.get("ring_seconds") or None,
        "talk_seconds": max(0.0, talk_end - answered) if answered and talk_end else None,
        "abandoned_position": acd.get("abandoned_position"),
    }


def _survey_score(survey: dict | None) -> int | None:
    """The mean of the answered questions, rounded (1-5); each answer stays in data["survey"]."""
    scores = list((survey or {}).get("scores", {}).values())
    return round(sum(scores) / len(scores)) if scores else None


_ACD_OUTCOMES = {outcome.value: outcome for outcome in InteractionOutcome}


def _outcome(call: Call, ended: CallEnded, bridged: bool) -> InteractionOutcome:
    if ended.outcome == Outcome.LOST_DURING_OUTAGE:
        return InteractionOutcome.LOST_DURING_OUTAGE
    if call.transfers:
        return InteractionOutcome.TRANSFERRED
    acd_outcome = (call.data.get("acd") or {}).get("outcome")
    if acd_outcome in _ACD_OUTCOMES:
        return _ACD_OUTCOMES[acd_outcome]
    if bridged:
        return InteractionOutcome.COMPLETED
    if ended.answered_at is not None:
        return InteractionOutcome.IVR_ONLY
    return InteractionOutcome.ABANDONED


def _utc(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None
