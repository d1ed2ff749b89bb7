"""Glue between a FastAGI session, the call model and the IVR: what the caller entered is
attached to their call.

An inbound session records the call's DNIS and AGI channel, then runs the IVR flow of its
DNIS (ivr.flows) and attaches the result: menu path, collected values, the customer found
by account. The ACD hand-off plugs in here when it lands; until then a caller whose flow
ends in a queue, voicemail, callback or transfer hears Asterisk's ss-noservice prompt, and
so does every caller when no flows are configured. The call then returns to the dialplan.
"""

from __future__ import annotations

import time

import structlog

from cti.agi.server import AgiSession
from cti.callmodel.bus import EventBus
from cti.callmodel.model import CallModel
from cti.ivr_runner import CustomerLookup, IvrRunner
from ivr import FlowSet, IvrResult, IvrSession, NoFlowForDnis, OutcomeKind

log = structlog.get_logger(__name__)

# Flow endings the daemon cannot carry out until the ACD and the dial-out glue land.
_NOT_YET_CONNECTED = frozenset({OutcomeKind.TO_QUEUE, OutcomeKind.VOICEMAIL, OutcomeKind.CALLBACK,
                                OutcomeKind.EXTERNAL})


class InboundSessions:
    def __init__(self, model: CallModel, bus: EventBus, flows: FlowSet | None = None,
                 lookup_customer: CustomerLookup | None = None) -> None:
        self.model = model
        self.bus = bus
        self.flows = flows
        self.lookup_customer = lookup_customer

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
        if result is None or kind in _NOT_YET_CONNECTED:
            await session.stream_file("ss-noservice")
        elif kind == OutcomeKind.HANGUP:
            await session.hangup()

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
