"""Every call the model closes becomes one interaction record in the CRM store.

A call the ACD handled carries its ticket (``data["acd"]``, see cti.queued_call): queue, agents,
the times of queueing, offer and answer, and the ACD's outcome (completed, abandoned with the
position reached, callback requested, voicemail...). For other calls the outcome is read from
what the call model saw: lost during an outage, transferred, bridged with another party
(completed), answered with no one else (handled by the daemon alone: ivr_only), or never
answered (the caller left: abandoned).
"""

from __future__ import annotations

from datetime import UTC, datetime

from cti.callmodel.bus import EventBus
from cti.callmodel.events import CallBridged, CallEnded, Outcome
from cti.callmodel.model import Call, CallModel
from crm_bridge.interactions import InteractionOutcome, InteractionRecord
from crm_bridge.logger import InteractionLogger


class CallRecorder:
    def __init__(self, model: CallModel, bus: EventBus, logger: InteractionLogger) -> None:
        self.model = model
        self.logger = logger
        # Calls that shared a bridge with another party: at their end the bridge is gone.
        self._bridged: set[str] = set()
        bus.subscribe(self._on_event, (CallBridged, CallEnded))

    def _on_event(self, event) -> None:
        if isinstance(event, CallBridged):
            if len(event.bridge_channels) > 1:
                self._bridged.add(event.call_id)
            return
        call = next((c for c in reversed(self.model.recent_ended) if c.call_id == event.call_id), None)
        bridged = event.call_id in self._bridged
        self._bridged.discard(event.call_id)
        if call is not None:
            self.logger.put(self.record(call, event, bridged))

    @staticmethod
    def record(call: Call, ended: CallEnded, bridged: bool) -> InteractionRecord:
        ivr = call.data.get("ivr") or {}
        acd = call.data.get("acd") or {}
        return InteractionRecord(
            system_name=call.system, linkedid=call.linkedid, started_at=_utc(ended.started_at),
            direction=call.data.get("direction", "in"), customer_id=call.data.get("customer_id"),
            ani=call.ani or None, caller_name=call.caller_name or None, dnis=call.dnis or None,
            answered_at=_utc(acd.get("answered_at") or ended.answered_at), ended_at=_utc(ended.timestamp),
            outcome=_outcome(call, ended, bridged), hangup_cause=ended.cause,
            ivr_path=tuple(ivr.get("path", ())), ivr_data=dict(ivr.get("values", {})),
            **_queue_fields(acd, ended.timestamp),
            data={key: value for key, value in call.data.items() if key != "ivr"} | {"ivr_result": ivr})


def _queue_fields(acd: dict, ended_at: float) -> dict:
    """The ACD's part of the record; wait runs from queueing to the answer, or to the hangup."""
    if not acd.get("queued_at"):
        return {"queue": acd.get("queue"), "agents": tuple(acd.get("agents", ()))}
    answered, talk_end = acd.get("answered_at"), acd.get("talk_ended_at")
    return {
        "queue": acd["queue"], "priority": acd.get("priority") or 0, "agents": tuple(acd.get("agents", ())),
        "queued_at": _utc(acd["queued_at"]), "offered_at": _utc(acd.get("offered_at")),
        "wait_seconds": max(0.0, (answered or ended_at) - acd["queued_at"]),
        "ring_seconds": acd.get("ring_seconds") or None,
        "talk_seconds": max(0.0, talk_end - answered) if answered and talk_end else None,
        "abandoned_position": acd.get("abandoned_position"),
    }


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
