"""The daemon's ACD path assembled in-process on the lab: FastAGI with the IVR, the ACD runtime
(engine, queue sessions, dialer), the interaction recorder, and sipp agent phones.

Agents ring on their own sipp phone (cti.lab.phones) through the lab's trunk endpoint; their
device state is a Custom: device, so a test can make it busy over the AMI like a real phone
in use on another call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from acd.config import AcdDefinitions, AgentDefinition
from acd.model import QueueSettings
from cti.acd_runtime import AcdRuntime
from cti.agi.server import AgiServer
from cti.lab.phones import Phone
from cti.queued_call import QueueingSettings
from cti.recorder import CallRecorder
from cti.sessions import InboundSessions
from crm_bridge.customers import CustomerRepository
from crm_bridge.logger import InteractionLogger
from crm_bridge.phone import PhoneNormalizer
from ivr import load_flows
from tests.e2e.conftest import WAIT

FLOWS = Path(__file__).resolve().parents[1] / "flows"


def agent(agent_id: str, phone: Phone, **skills: int) -> AgentDefinition:
    return AgentDefinition(agent_id, agent_id, phone.dial_string(agent_id), f"Custom:{agent_id}", skills)


class CallCenter:
    def __init__(self, link, lab_config, pool, workdir: Path) -> None:
        self.link = link
        self.lab_config = lab_config
        self.pool = pool
        self.workdir = workdir
        self.phones = PhoneNormalizer("US")
        self.customers = CustomerRepository(pool, self.phones)
        self.decisions: list[tuple[float, object]] = []
        self.runtime: AcdRuntime | None = None

    async def start(self, queues: tuple[QueueSettings, ...], agents: tuple[AgentDefinition, ...],
                    flows: tuple[str, ...] = ("to_support_queue.toml",), outbound_interface: str = "") -> CallCenter:
        flow_set = load_flows(*(FLOWS / name for name in flows))
        self.runtime = AcdRuntime(AcdDefinitions(queues, agents), self.link.model, self.link.bus,
                                  {"lab": self.link}, QueueingSettings(outbound_interface=outbound_interface), flow_set)
        self.acd = self.runtime.acd
        self.acd.listen(lambda decision: self.decisions.append((time.monotonic(), decision)))
        self.log = InteractionLogger(self.pool, self.workdir / "spool.jsonl", self.phones, flush_interval=0.1)
        await self.log.start()
        self.recorder = CallRecorder(self.link.model, self.link.bus, self.log)
        self.agi = AgiServer("127.0.0.1", self.lab_config.agi.port)
        self.agi.route("inbound", InboundSessions(self.link.model, self.link.bus, flow_set,
                                                  self.customers.find_by_account,
                                                  self.runtime.queueing(self.customers.find_by_phone)).handle)
        self.runtime.add_routes(self.agi)
        await self.agi.start()
        return self

    async def close(self) -> None:
        await self.agi.close()
        await self.log.close()
        await self.runtime.close()

    async def decision(self, predicate: Callable[[object], bool], timeout: float = WAIT) -> tuple[float, object]:
        """The first decision (with its time) matching ``predicate``, waiting for it if needed."""
        async with asyncio.timeout(timeout):
            while True:
                for when, decision in self.decisions:
                    if predicate(decision):
                        return when, decision
                await asyncio.sleep(0.02)

    async def interaction(self, linkedid: str, ready: Callable[[dict], bool] = lambda row: True) -> dict:
        """The call's interaction row once written (and once ``ready`` says it is complete enough)."""
        async with asyncio.timeout(WAIT):
            while True:
                row = await self.pool.fetchrow("SELECT * FROM interactions WHERE linkedid = $1", linkedid)
                if row and ready(dict(row)):
                    return dict(row)
                await asyncio.sleep(0.1)

