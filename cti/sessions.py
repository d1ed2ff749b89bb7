"""Glue between a FastAGI session, the call model and the IVR: what the caller entered is
attached to their call.

An inbound session records the call's DNIS and AGI channel, then runs the IVR flow of its
DNIS (ivr.flows) and attaches the result: menu path, collected values, the customer found
by account. A flow that ends in a queue the ACD runs hands the call to it (cti.queued_call),
with the customer's tier for its priority: the customer the IVR identified by account, else
the one the caller's number belongs to. Flow endings the daemon cannot carry out (no ACD, a
queue it does not run, voicemail, transfer) play Asterisk's ss-noservice prompt, and so does
every call when no flows are configured. The call then returns to the dialplan.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from acd import CallArrived
from cti.agi.server import AgiSession
from cti.callmodel.bus import EventBus
from cti.callmodel.model import CallModel
from cti.ivr_runner import CustomerLookup, IvrRunner
from ivr import FlowSet, IvrResult, IvrSession, NoFlowForDnis, OutcomeKind

log = structlog.get_logger(__name__)

# Flow endings played as "no service": what the IVR hands on but the daemon does not yet do.
_NOT_CARRIED_OUT = frozenset({OutcomeKind.TO_QUEUE, OutcomeKind.VOICEMAIL, OutcomeKind.CALLBACK,
                              OutcomeKind.EXTERNAL})
# The caller's number -> the customers it belongs to (the CRM store's find_by_phone).
PhoneLookup = Callable[[str], Awaitable[list[dict]]]


@dataclass
class Queueing:
    """How inbound sessions reach the ACD: ``start(session, call_id, arrival)`` runs the wait."""

    queues: frozenset[str]
    start: Callable[[AgiSession, str, CallArrived], Awaitable[object]]
    find_by_phone: PhoneLookup | None = None


class InboundSessions:
    def __init__(self, model: CallModel, bus: EventBus, flows: FlowSet | None = None,
                 lookup_customer: CustomerLookup | None = None, queueing: Queueing | None = None) -> None:
        self.model = model
        self.bus = bus
        self.flows = flows
        self.lookup_customer = lookup_customer
        self.queueing = queueing

    async def handle(self, session: AgiSession) -> None:
        call_id = await self.identify(session)
        structlog.contextvars.bind_contextvars(call_id=call_id)
        if session.dnid and session.dnid != "unknown":
            self.bus.publish(self.model.set_dnis(call_id, session.dnid))
        self.model.attach(call_id, agi_channel=session.channel, agi_path=session.path, agi_params=dict(session.params))
        log.info("inbound.session", ani=session.callerid, dnis=session.dnid, channel=session.channel)
        await session.answer()
        result = await self._run_flow(session, call_id)
        kind = result.outcome.kind if result and result.outcome else None
        if kind == OutcomeKind.TO_QUEUE and self.queueing and result.outcome.queue in self.queueing.queues:
            await self.queueing.start(session, call_id, await self._arrival(session, call_id, result))
        elif result is None or kind in _NOT_CARRIED_OUT:
            await session.stream_file("ss-noservice")
        elif kind == OutcomeKind.HANGUP:
            await session.hangup()

    async def _arrival(self, session: AgiSession, call_id: str, result: IvrResult) -> CallArrived:
        """The ACD's view of the call: queue, priority or tier, and the data the agent's pop shows."""
        customer = result.customer or await self._customer_by_phone(session.caller_number)
        explicit = result.outcome.priority or None
        data = {"ani": session.callerid or "", "caller_name": session.calleridname or "",
                "dnis": session.dnid or "", "ivr_path": " > ".join(result.path),
                "account": result.customer_account,
                "customer_id": str(customer["id"]) if customer and customer.get("id") is not None else ""}
        data |= {f"ivr.{key}": str(value) for key, value in result.values.items()}
        if customer and customer.get("id") is not None:
            self.model.attach(call_id, customer_id=customer["id"])
        return CallArrived(call_id, result.outcome.queue, explicit, customer.get("tier") if customer else None,
                           session.caller_number, data)

    async def _customer_by_phone(self, number: str | None) -> dict | None:
        if not number or self.queueing.find_by_phone is None:
            return None
        matches = await self.queueing.find_by_phone(number)
        return matches[0] if len(matches) == 1 else None  # a shared number names nobody for sure

    async def _run_flow(self, session: AgiSession, call_id: str) -> IvrResult | None:
        if self.flows is None:
            return None
        try:
            ivr = IvrSession(self.flows, session.dnid, session.callerid, time.time())
        except NoFlowForDnis:
            log.warning("inbound.no_flow", dnis=session.dnid)
            return None
        try:
            return await IvrRunner(session, self._lookup).run(ivr)
        finally:
            # Attached even when the caller hung up mid-flow: a partial result says how far they got.
            self.model.attach(call_id, ivr=ivr.result.as_dict())

    async def _lookup(self, account: str) -> dict | None:
        return await self.lookup_customer(account) if self.lookup_customer else None

    @staticmethod
    async def identify(session: AgiSession) -> str:
        """The call model's id of the session's call: SystemName and Linkedid, asked of Asterisk."""
        system = await session.get_full_variable("${SYSTEMNAME}")
        linkedid = await session.get_full_variable("${CHANNEL(linkedid)}")
        return f"{system}:{linkedid or session.uniqueid}"
