"""Glue between a FastAGI session and the call model: the call's identity and what AGI knows.

The IVR and ACD hand-offs plug in here as they land; until then an inbound session records
the call's DNIS and AGI channel, answers, tells the caller the service is not available
(Asterisk's ss-noservice prompt) and returns the call to the dialplan, which hangs up.
"""

from __future__ import annotations

import structlog

from cti.agi.server import AgiSession
from cti.callmodel.bus import EventBus
from cti.callmodel.model import CallModel

log = structlog.get_logger(__name__)


class InboundSessions:
    def __init__(self, model: CallModel, bus: EventBus) -> None:
        self.model = model
        self.bus = bus

    async def handle(self, session: AgiSession) -> None:
        call_id = await self.identify(session)
        structlog.contextvars.bind_contextvars(call_id=call_id)
        if session.dnid and session.dnid != "unknown":
            self.bus.publish(self.model.set_dnis(call_id, session.dnid))
        self.model.attach(call_id, agi_channel=session.channel, agi_path=session.path, agi_params=dict(session.params))
        log.info("inbound.session", ani=session.callerid, dnis=session.dnid, channel=session.channel)
        await session.verbose(f"cti: call {call_id} recorded; no IVR flow is wired yet")
        await session.answer()
        await session.stream_file("ss-noservice")

    @staticmethod
    async def identify(session: AgiSession) -> str:
        """The call model's id of the session's call: SystemName and Linkedid, asked of Asterisk."""
        system = await session.get_full_variable("${SYSTEMNAME}")
        linkedid = await session.get_full_variable("${CHANNEL(linkedid)}")
        return f"{system}:{linkedid or session.uniqueid}"
