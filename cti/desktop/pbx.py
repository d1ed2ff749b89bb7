"""The Asterisk side of the desks: the CallControl of the server a call is on, its refusals as
``Refused`` (what the agent's desktop is told)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import structlog

from cti.callmodel.control import CallControl
from cti.desktop.desk import Refused
from cti.link import link_to

log = structlog.get_logger(__name__)

Action = Callable[[CallControl], Awaitable[object]]


class Pbx:
    def __init__(self, links: Mapping) -> None:
        self.links = links

    def control(self, call_id: str) -> CallControl:
        """Call ids read ``<SystemName>:<Linkedid>``: the link to that system."""
        system = call_id.partition(":")[0]
        link = link_to(self.links, system)
        if link is None:
            raise Refused("unavailable", f"no AMI link to Asterisk {system!r}")
        return CallControl(link.client)

    def any_control(self) -> tuple[str, CallControl]:
        """A connected server for a new call (click-to-dial), with its system name."""
        link = next((link for link in self.links.values() if link.client.connected), None)
        if link is None:
            raise Refused("unavailable", "no AMI link is up")
        return link.client.system_name, CallControl(link.client)

    async def act(self, call_id: str, action: Action) -> None:
        try:
            await action(self.control(call_id))
        except Refused:
            raise
        except Exception as error:  # CallControlError, a timeout, a link that dropped
            log.warning("desk.action_failed", call_id=call_id, error=str(error))
            raise Refused("failed", f"Asterisk refused: {error}") from None

    async def quietly(self, call_id: str, action: Action) -> None:
        """For clean-ups the agent did not ask for (the leg may be gone already): logged only."""
        try:
            await self.act(call_id, action)
        except Refused:
            pass
