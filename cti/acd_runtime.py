"""The ACD wired into the daemon: the engine service, its dialer and the queue sessions, attached to
one call model, its bus and the AMI links. The composition root builds one; e2e tests build the same."""

from __future__ import annotations

import time
from collections.abc import Mapping

from acd import CallArrived
from acd.config import AcdConfigError, AcdDefinitions
from cti.acd_dialer import AcdDialer
from cti.acd_service import AcdService
from cti.agi.server import AgiServer, AgiSession
from cti.callmodel.bus import EventBus
from cti.callmodel.control import CallControl
from cti.callmodel.events import CallBridged, DeviceStateChanged
from cti.callmodel.model import CallModel
from cti.link import AmiLink, link_to
from cti.ivr_runner import IvrRunner
from cti.queued_call import QueuedCall, QueueingSettings, QueueTicket
from cti.sessions import PhoneLookup, Queueing
from ivr import FlowSet, IvrSession


class AcdRuntime:
    def __init__(self, definitions: AcdDefinitions, model: CallModel, bus: EventBus,
                 links: Mapping[str, AmiLink], settings: QueueingSettings, flows: FlowSet | None = None) -> None:
        _check_surveys(definitions, flows)
        self.flows = flows
        self.model = model
        self.links = links
        self.settings = settings
        self.acd = AcdService(definitions)
        self.dialer = AcdDialer(self.acd, model, self.call_control, settings, self._system_of)
        self.acd.listen(self.dialer.on_decision)
        self._subscription = bus.subscribe(self.acd.on_call_event, (CallBridged, DeviceStateChanged))
        for link in links.values():
            link.client.on_event(self.dialer.on_ami_event)

    def queueing(self, find_by_phone: PhoneLookup | None) -> Queueing:
        """How inbound sessions hand calls to this ACD."""
        queues = frozenset(queue.name for queue in self.acd.definitions.queues)
        return Queueing(queues, self.queue_call, find_by_phone)

    def add_routes(self, agi: AgiServer) -> None:
        agi.route("callback", self.dialer.callback_session)

    async def queue_call(self, session: AgiSession, call_id: str, arrival: CallArrived) -> None:
        async def survey(ticket: QueueTicket) -> None:
            await self._survey(session, call_id, ticket)

        await QueuedCall(self.acd, session, self.model, call_id, self.settings, survey).run(arrival)

    async def _survey(self, session: AgiSession, call_id: str, ticket: QueueTicket) -> None:
        """The agent hung up first and the queue has a survey: the caller rates the call. The
        scores go with the call (the recorder stores them), against the last agent."""
        queue = self.acd.definitions.queue(ticket.queue)
        if not queue or not queue.survey_flow or self.flows is None or session.hung_up:
            return
        ivr = IvrSession(self.flows, session.dnid or "", session.caller_number, time.time(), flow=queue.survey_flow)
        try:
            await IvrRunner(session, _no_lookup).run(ivr)
        finally:
            result = ivr.result
            self.model.attach(call_id, survey={
                "flow": queue.survey_flow, "agent": ticket.agents[-1] if ticket.agents else None,
                "scores": dict(result.scores), "partial": result.partial or not result.finished})

    def call_control(self, system: str) -> CallControl | None:
        link = link_to(self.links, system)
        return CallControl(link.client) if link else None

    def _system_of(self, link_name: str) -> str | None:
        link = self.links.get(link_name)
        return link.client.system_name if link else None

    async def close(self) -> None:
        self._subscription.unsubscribe()
        self.acd.close()


async def _no_lookup(_key: str) -> None:
    return None  # a survey looks nothing up


def _check_surveys(definitions: AcdDefinitions, flows: FlowSet | None) -> None:
    """A queue naming a survey flow that does not exist is a configuration error, found at start."""
    known = set(flows.flows) if flows is not None else set()
    missing = [f"queues.{queue.name}.survey_flow: no IVR flow named {queue.survey_flow!r}"
               for queue in definitions.queues if queue.survey_flow and queue.survey_flow not in known]
    if missing:
        raise AcdConfigError("acd", missing)
