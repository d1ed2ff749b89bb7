"""The CTI link to one Asterisk server: AMI events into the call model, resync on every connect.

Every (re)connect may follow an Asterisk restart, so nothing kept from before is trusted: the
server's channels, bridges and device states are rebuilt from CoreShowChannels, BridgeList and
DeviceStateList, and calls that vanished meanwhile are closed as lost_during_outage. A restart
shows as a new boot time (now - FullyBooted's Uptime); then every old call of that server is
closed, even one whose Linkedid happens to be reused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping

import structlog

from cti.ami.client import AmiClient, AmiError, AmiSettings
from cti.ami.message import Message
from cti.callmodel.bus import EventBus
from cti.callmodel.model import CallModel
from cti.config import AmiServerConfig

log = structlog.get_logger(__name__)

# Boot times computed at two connects differ by the delay between Uptime's reading and ours;
# a restart moves it by at least the time Asterisk was down.
RESTART_TOLERANCE_S = 3.0


class AmiLink:
    def __init__(self, name: str, settings: AmiServerConfig, model: CallModel, bus: EventBus) -> None:
        self.name = name
        self.model = model
        self.bus = bus
        self.client = AmiClient(AmiSettings(name=name, **dataclasses.asdict(settings)))
        self.client.on_event(self._apply)
        self.client.on_connect(self._resync)
        self.resyncs = 0
        self.restarts_seen = 0
        # Wall-clock time Asterisk booted, from FullyBooted's Uptime at the last connect.
        self.booted_at: float | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.client.run(), name=f"ami-{self.name}")

    async def close(self) -> None:
        await self.client.close()

    async def check(self) -> tuple[bool, str]:
        """Readiness: logged in and reading."""
        if self.client.connected:
            return True, f"connected to {self.client.system_name}"
        return False, f"not connected to {self.client.settings.host}:{self.client.settings.port}"

    def _apply(self, _server: str, message: Message) -> None:
        events = self.model.apply(self.client.system_name, message)
        if events:
            self.bus.publish(events)

    async def _resync(self, client: AmiClient) -> None:
        restarted = self._note_boot(client.uptime)
        try:
            channels, bridges, devices = await asyncio.gather(
                client.action("CoreShowChannels"), client.action("BridgeList"), client.action("DeviceStateList"))
        except AmiError as error:
            # The link dropped again mid-resync; the next connect resyncs from scratch.
            log.warning("ami.resync_failed", server=self.name, error=str(error))
            return
        events = self.model.resync(client.system_name, _items(channels, "CoreShowChannel"),
                                   _items(bridges, "BridgeListItem"), _items(devices, "DeviceStateChange"),
                                   restarted=restarted)
        self.resyncs += 1
        self.bus.publish(events)
        log.info("ami.resynced", server=self.name, system=client.system_name, restarted=restarted,
                 channels=len(channels.events), bridges=len(bridges.events), events=len(events))

    def _note_boot(self, uptime: int | None) -> bool:
        if uptime is None:
            # No FullyBooted (an old Asterisk, or it timed out): assume the worst.
            return self.booted_at is not None
        booted_at = time.time() - uptime
        restarted = self.booted_at is not None and abs(booted_at - self.booted_at) > RESTART_TOLERANCE_S
        self.booted_at = booted_at
        if restarted:
            self.restarts_seen += 1
            log.warning("ami.asterisk_restarted", server=self.name, uptime=uptime)
        return restarted

    def stats(self) -> dict[str, int]:
        stats = self.client.stats
        parser = stats.parser
        return {
            "connected": int(self.client.connected), "connects": stats.connects,
            "disconnects": stats.disconnects, "events_received": stats.events_received,
            "queue_overflow": stats.queue_overflow, "handler_errors": stats.handler_errors,
            "actions_sent": stats.actions_sent, "action_timeouts": stats.action_timeouts,
            "ping_failures": stats.ping_failures, "parse_malformed": parser.malformed,
            "parse_oversized": parser.oversized, "parse_decode_errors": parser.decode_errors,
            "resyncs": self.resyncs, "restarts_seen": self.restarts_seen,
        }


def _items(reply, event_name: str) -> list[Message]:
    wanted = event_name.lower()
    return [event for event in getattr(reply, "events", []) if (event.event or "").lower() == wanted]


def link_to(links: Mapping[str, AmiLink], system: str) -> AmiLink | None:
    """The link to the Asterisk whose SystemName is ``system`` (the prefix of a call id)."""
    return next((link for link in links.values() if link.client.system_name == system), None)
