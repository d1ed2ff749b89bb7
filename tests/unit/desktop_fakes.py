"""Fakes around the agent desks (cti.desktop): the real ACD service and desks, with an AMI client,
sockets, a session store, a pop builder, a call model and a recorder that only record.

A ``Center`` plays the telephony side the way Asterisk and the FastAGI sessions would: a caller
queued with its inbox, the agent's leg dialled (DialBegin), bridges, hangups.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson

from acd import CallArrived
from acd.config import AcdDefinitions, AgentDefinition
from acd.model import QueueSettings
from cti.acd_service import AcdService
from cti.ami.message import Message
from cti.callmodel.events import CallBridged
from cti.desktop.service import AgentDesks, DeskSettings
from cti.desktop.sessions import AgentSessions

SYSTEM = "pbx"
PASSWORD = "secret-pw"
SUPPORT = QueueSettings("support", "support>=10", ring_timeout=15, wrap_up_seconds=30)
DISPOSITIONS = [{"code": "resolved", "label": "Resolved"}, {"code": "escalated", "label": "Escalated"}]


def interface(agent_id: str) -> str:
    return f"PJSIP/trunk/sip:{agent_id}@127.0.0.1:5999"


class FakeSocket:
    def __init__(self) -> None:
        self.closed = False
        self.close_code: int | None = None
        self.frames: list[dict[str, Any]] = []

    async def send_str(self, text: str) -> None:
        self.frames.append(orjson.loads(text))

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        self.closed, self.close_code = True, code

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["type"] == kind]

    def events(self) -> list[str]:
        return [frame["event"] for frame in self.of("call")]


@dataclass
class FakeAmi:
    """The AMI client: records actions, answers Success (or Error for names in ``refuse``)."""

    system_name: str = SYSTEM
    connected: bool = True
    actions: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    handlers: list = field(default_factory=list)
    # Called with each action as it is sent: lets a test look at the state at that moment.
    on_action: Any = None

    async def action(self, name: str, headers: dict[str, str], *, idempotent=None, timeout=None) -> Message:
        self.actions.append((name, headers))
        if self.on_action:
            self.on_action(name, headers)
        response = "Error" if name in self.refuse else "Success"
        return Message([("Response", response), ("Message", "refused by the test")])

    def on_event(self, handler) -> None:
        self.handlers.append(handler)

    def emit(self, event: str, **headers: str) -> None:
        for handler in self.handlers:
            handler("lab", Message([("Event", event), *headers.items()]))

    def named(self, name: str) -> list[dict[str, str]]:
        return [headers for action, headers in self.actions if action == name]


class MemorySessionStore:
    def __init__(self) -> None:
        self.tokens: dict[str, bytes] = {}
        self.desks: dict[str, dict] = {}

    async def replace(self, agent_id: str, token_sha256: bytes) -> bool:
        replaced = agent_id in self.tokens
        self.tokens[agent_id] = token_sha256
        return replaced

    async def agent_for(self, token_sha256: bytes) -> str | None:
        return next((agent for agent, digest in self.tokens.items() if digest == token_sha256), None)

    async def remove(self, agent_id: str) -> None:
        self.tokens.pop(agent_id, None)
        self.desks.pop(agent_id, None)

    async def save_desk(self, agent_id: str, desk: dict) -> None:
        self.desks[agent_id] = orjson.loads(orjson.dumps(desk))  # as JSON would keep it

    async def desk(self, agent_id: str) -> dict:
        return self.desks.get(agent_id, {})


class FakePops:
    """Pops from the call's data alone; ``gate`` (an Event) holds every build until set."""

    def __init__(self) -> None:
        self.gate: asyncio.Event | None = None

    async def build(self, call_id: str, kind: str, data, *, queue=None, wait_seconds=None) -> dict:
        if self.gate is not None:
            await self.gate.wait()
        return {"call_id": call_id, "kind": kind, "ani": data.get("ani", ""), "queue": queue,
                "account": data.get("account", ""), "customer": {"id": 7, "name": "José Müller"},
                "history": [{"disposition_code": "resolved"}]}


class FakeRecorder:
    def __init__(self) -> None:
        self.fields: dict[str, dict[str, Any]] = {}

    def amend(self, call_id: str, **fields: Any) -> None:
        record = self.fields.setdefault(call_id, {})
        for name, value in fields.items():
            record[name] = {**record.get(name, {}), **value} if name == "data" else value


class FakeModel:
    def __init__(self) -> None:
        self.calls: dict[str, SimpleNamespace] = {}

    def call(self, call_id: str):
        return self.calls.get(call_id)

    def add(self, call_id: str, *channels: str, **data: Any) -> None:
        self.calls[call_id] = SimpleNamespace(
            data=data, channels={name: SimpleNamespace(name=name) for name in channels})


class Center:
    """The desks with two agents by default, an ACD with the support queue, and the fakes."""

    def __init__(self, agents: tuple[str, ...] = ("a1", "a2"), queues=(SUPPORT,), store=None, model=None,
                 away_after_seconds: float = 60.0) -> None:
        definitions = AcdDefinitions(tuple(queues), tuple(
            AgentDefinition(agent_id, f"Agent {agent_id.upper()}", interface(agent_id), "", {"support": 50})
            for agent_id in agents))
        self.now = 1000.0
        self.acd = AcdService(definitions, clock=lambda: self.now, wall_clock=lambda: self.now + 1.7e9)
        self.ami = FakeAmi()
        self.model = model or FakeModel()
        self.store = store or MemorySessionStore()
        self.pops = FakePops()
        self.recorder = FakeRecorder()
        self.sessions = AgentSessions(self.store, self._verify,
                                      lambda agent_id: definitions.agent(agent_id) is not None)
        self.desks = AgentDesks(self.acd, self.model, {"lab": SimpleNamespace(client=self.ami)}, self.sessions,
                                self.pops, self._dispositions, recorder=self.recorder,
                                settings=DeskSettings(outbound_interface="PJSIP/trunk/sip:{number}@127.0.0.1:5998",
                                                      outbound_wrap_up_seconds=20,
                                                      away_after_seconds=away_after_seconds),
                                clock=lambda: self.now + 1.7e9)
        self.inboxes: dict[str, asyncio.Queue] = {}
        self.sockets: dict[str, FakeSocket] = {}
        self._bridges = 0

    async def start(self) -> Center:
        await self.desks.start(SimpleNamespace(subscribe=lambda *_: SimpleNamespace(unsubscribe=lambda: None)))
        return self

    @staticmethod
    async def _verify(agent_id: str, secret: str) -> bool:
        return secret == PASSWORD

    @staticmethod
    async def _dispositions() -> list[dict[str, str]]:
        return DISPOSITIONS

    async def log_in(self, *agent_ids: str, ready: bool = True) -> None:
        for agent_id in agent_ids:
            assert await self.desks.login(agent_id, PASSWORD)
            self.sockets[agent_id] = await self.connect(agent_id)
            if ready:
                await self.command(agent_id, "ready")

    async def connect(self, agent_id: str) -> FakeSocket:
        socket = FakeSocket()
        await self.desks.connect(agent_id, socket)
        return socket

    async def command(self, agent_id: str, kind: str, **fields: Any) -> dict:
        return await self.desks.command(agent_id, {"type": kind, **fields})

    # --- the telephony side ---

    def queue_call(self, number: str, queue: str = "support") -> str:
        """A caller held by its FastAGI session, queued (the IVR's data on it)."""
        call_id = f"{SYSTEM}:{number}.1"
        self.model.add(call_id, f"PJSIP/trunk-{number}", agi_channel=f"PJSIP/trunk-{number}")
        self.inboxes[call_id] = self.acd.hold(call_id)
        self.acd.submit(CallArrived(call_id, queue, caller_number=number,
                                    data={"ani": number, "account": "12345", "caller_name": "José Müller"}))
        return call_id

    def customer(self, call_id: str) -> str:
        return self.model.call(call_id).data["agi_channel"]

    def dial(self, call_id: str, agent_id: str, leg: str) -> None:
        self.ami.emit("DialBegin", DestChannel=leg, DestLinkedid=call_id.partition(":")[2],
                      DialString=interface(agent_id).partition("/")[2])

    def bridge(self, call_id: str, *channels: str) -> None:
        self._bridges += 1
        event = CallBridged(SYSTEM, self.now, call_id, f"bridge-{self._bridges}", channels[-1], channels)
        self.acd.on_call_event(event)
        self.desks.on_call_event(event)

    def hang_up(self, call_id: str, channel: str) -> None:
        self.ami.emit("Hangup", Channel=channel, Linkedid=call_id.partition(":")[2])

    async def answered(self, call_id: str, agent_id: str, leg: str) -> None:
        """The agent's phone rang and was answered: the leg is bridged with the caller."""
        self.dial(call_id, agent_id, leg)
        self.bridge(call_id, self.customer(call_id), leg)
        await settle()

    def posted(self, call_id: str) -> list:
        inbox = self.inboxes[call_id]
        return [inbox.get_nowait() for _ in range(inbox.qsize())]


async def settle() -> None:
    """Let the desks' writers and savers run."""
    for _ in range(5):
        await asyncio.sleep(0)
