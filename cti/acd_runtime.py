"""The ACD wired into the daemon: the engine service, its dialer and the queue sessions, attached to
one call model, its bus and the AMI links. The composition root builds one; e2e tests build the same."""

from __future__ import annotations

from collections.abc import Mapping

from acd.config import AcdDefinitions
from cti.acd_dialer import AcdDialer
from cti.acd_service import AcdService
from cti.agi.server import AgiServer, AgiSession
from cti.callmodel.bus import EventBus
from cti.callmodel.control import CallControl
from cti.callmodel.events import CallBridged, DeviceStateChanged
from cti.callmodel.model import CallModel
from cti.link import AmiLink
from cti.queued_call import QueuedCall, QueueingSettings
from cti.sessions import PhoneLookup, Queueing
from acd import CallArrived


class AcdRuntime:
    def __init__(self, definitions: AcdDefinitions, model: CallModel, bus: EventBus,
                 links: Mapping[str, AmiLink], settings: QueueingSettings) -> None:
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
        await QueuedCall(self.acd, session, self.model, call_id, self.settings).run(arrival)

    def call_control(self, system: str) -> CallControl | None:
        link = next((link for link in self.links.values() if link.client.system_name == system), None)
        return CallControl(link.client) if link else None

    def _system_of(self, link_name: str) -> str | None:
        link = self.links.get(link_name)
        return link.client.system_name if link else None

    async def close(self) -> None:
        self._subscription.unsubscribe()
        self.acd.close()
