"""Supervisors listen, whisper and barge on an agent's call, on the real lab.

A caller is queued and answered by agent a1 (both sipp phones). A supervisor asks the REST API
(POST /api/acd/agents/a1/monitor, with a supervisor's token) to monitor a1: the daemon originates
the supervisor's phone (another sipp phone) into [cti-spy], which runs ChanSpy on the agent's leg.

sipp's phones send no audio, and ChanSpy needs some: audio is what carries a whisper, and a spy
channel that was hung up only goes once the spied-on channel passes a frame (Asterisk issue
#978). So the test talks for the three phones: `Media` sends a 20 ms PCMU packet every 20 ms to
Asterisk's RTP address of a leg, silence or a tone, and keeps what Asterisk sends back (the lab's
endpoint has rtp_symmetric: once it took our packets, Asterisk sends that leg's audio to us).

Each mode shows: the supervisor's phone rang and answered; Asterisk reports ChanSpyStart with the
agent's leg as the spyee; the spy channel runs ChanSpy with the mode's options (CoreShowChannels'
ApplicationData, and CTI_SPY_OPTIONS read with Getvar); the supervisor hears the agent; what the
supervisor says reaches nobody (listen), the agent only (whisper), or the agent and the customer
(barge); once the supervisor hangs up the customer and the agent go on talking. An agent without
a call answers 409 and nobody is rung.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import struct

import pytest
from aiohttp.test_utils import TestClient, TestServer

from acd import AgentLogin, AgentReady, AgentState, AgentStateChanged, CallEnded
from cti.callmodel.events import CallStarted
from cti.http.crm_api import CrmStore
from cti.http.server import build_app
from cti.metrics import Metrics
from cti.supervision import Supervision
from crm_bridge.acd_store import AcdStore
from crm_bridge.api_clients import DatabaseTokens, create_client
from tests.e2e.acd_support import CallCenter, agent
from tests.e2e.conftest import until
from tests.e2e.test_acd_on_lab import SUPPORT

SPY_OPTIONS = {"listen": "", "whisper": "w", "barge": "B"}


# --- audio -------------------------------------------------------------------------------------


def ulaw_decode(byte: int) -> int:
    byte = ~byte & 0xFF
    magnitude = ((((byte & 0x0F) << 3) + 0x84) << ((byte >> 4) & 0x07)) - 0x84
    return -magnitude if byte & 0x80 else magnitude


ULAW = [ulaw_decode(byte) for byte in range(256)]
SILENCE = bytes([0xFF]) * 160  # 20 ms at 8 kHz


def _ulaw_encode(sample: float) -> int:
    return min(range(256), key=lambda byte: abs(ULAW[byte] - sample))


TONE = bytes(_ulaw_encode(8000 * math.sin(2 * math.pi * 1000 * n / 8000)) for n in range(160))  # 1 kHz


def loud(payload: bytes) -> bool:
    return bool(payload) and sum(abs(ULAW[byte]) for byte in payload) / len(payload) > 2000


class Media(asyncio.DatagramProtocol):
    """One leg's phone audio: sends ``payload`` every 20 ms to Asterisk, keeps what comes back."""

    def __init__(self) -> None:
        self.payload = SILENCE
        self.received: list[bytes] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task | None = None

    async def start(self, address: str) -> Media:
        host, _, port = address.rpartition(":")
        self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0), remote_addr=(host, int(port)))
        self._task = asyncio.create_task(self._send())
        return self

    async def _send(self) -> None:
        seq, timestamp, ssrc = random.randrange(1 << 16), random.randrange(1 << 32), random.randrange(1 << 32)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self._transport.sendto(struct.pack("!BBHII", 0x80, 0, seq, timestamp, ssrc) + self.payload)
            seq, timestamp = (seq + 1) & 0xFFFF, (timestamp + 160) & 0xFFFFFFFF
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def datagram_received(self, data: bytes, _address) -> None:
        if len(data) > 12 and data[1] & 0x7F == 0:  # PCMU
            self.received.append(data[12 + 4 * (data[0] & 0x0F):])

    def loud_packets(self) -> int:
        return sum(1 for payload in self.received if loud(payload))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._transport is not None:
            self._transport.close()


async def heard(listeners: dict[str, Media], seconds: float = 0.8) -> dict[str, int]:
    """Loud packets each listener got over ``seconds``, after the audio settled."""
    await asyncio.sleep(0.3)
    for media in listeners.values():
        media.received.clear()
    await asyncio.sleep(seconds)
    return {name: media.loud_packets() for name, media in listeners.items()}


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
async def media():
    started: list[Media] = []

    async def start(address: str) -> Media:
        started.append(await Media().start(address))
        return started[-1]

    yield start
    for one in started:
        await one.close()


@pytest.fixture
async def center(link, lab_config, store, tmp_path, phones):
    """The call center with agent a1 logged in and ready on a sipp phone."""
    agent_phone = phones()
    cc = await CallCenter(link, lab_config, store.pool, tmp_path).start(
        (SUPPORT,), (agent("a1", agent_phone, support=80),))
    cc.agent_phone = agent_phone
    cc.acd.submit(AgentLogin("a1"))
    cc.acd.submit(AgentReady("a1"))
    yield cc
    await cc.close()


@pytest.fixture
async def api(link, center, store):
    """The daemon's HTTP app with the supervision over the lab's ACD, and a supervisor's token."""
    supervision = Supervision.build(center.acd, AcdStore(store.pool), link.model, center.runtime.call_control)
    app = build_app(Metrics(), {}, DatabaseTokens(store.pool), CrmStore.from_pool(store.pool, center.phones),
                    supervision=supervision)
    client = TestClient(TestServer(app))
    await client.start_server()
    client.token = await create_client(store.pool, "supervisor-app", "supervisor")
    yield client
    await client.close()
    await supervision.close()


# --- helpers -----------------------------------------------------------------------------------


async def monitor(api, mode: str, interface: str):
    return await api.post("/api/acd/agents/a1/monitor", json={"mode": mode, "supervisor_interface": interface},
                          headers={"Authorization": f"Bearer {api.token}"})


async def agent_on_call(link, cc: CallCenter, calls, number: str):
    """A caller queued and answered by a1: the call, the caller's leg and the agent's, once bridged."""
    calls("Caller", number, hold_ms=60000)
    started = await link.recorder.wait_for(lambda e: isinstance(e, CallStarted) and e.ani == number)
    await cc.decision(lambda d: isinstance(d, AgentStateChanged) and d.agent_id == "a1"
                      and d.state is AgentState.ON_CALL)
    call = link.model.call(started.call_id)

    def agent_leg():
        return next((c for c in call.channels.values() if c.name != call.data.get("agi_channel") and c.bridge_id),
                    None)

    await until(lambda: agent_leg() is not None)
    return call, call.data["agi_channel"], agent_leg().name


async def rtp_address(link, channel: str) -> str:
    """Where Asterisk takes the channel's RTP (chan_pjsip's CHANNEL(rtp,src)), as host:port."""
    answer = await link.client.action("Getvar", {"Channel": channel, "Variable": "CHANNEL(rtp,src)"})
    return answer["Value"]


async def core_show_channel(link, name: str) -> dict:
    listing = await link.client.action("CoreShowChannels", {})
    return next(dict(entry) for entry in listing.events if entry.get("Channel") == name)


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(SPY_OPTIONS))
async def test_a_supervisor_monitors_the_agents_call(link, center, api, phones, media, calls, events, mode):
    supervisor_phone = phones()
    call, caller_leg, agent_leg = await agent_on_call(link, center, calls, "2125550181")
    caller = await media(await rtp_address(link, caller_leg))
    agent_audio = await media(await rtp_address(link, agent_leg))

    response = await monitor(api, mode, supervisor_phone.dial_string("sup1"))
    assert response.status == 202, await response.text()
    assert (await response.json())["channel"] == agent_leg

    started = await events.wait_for(lambda m: m.get("Event") == "ChanSpyStart", timeout=10)
    assert started["SpyeeChannel"] == agent_leg
    spy = started["SpyerChannel"]
    assert (supervisor_phone.invites(), supervisor_phone.answered()) == (1, 1), supervisor_phone.log()
    # The mode's options reached ChanSpy (q: quiet, E: end with the agent's leg).
    entry = await core_show_channel(link, spy)
    assert (entry["Context"], entry["Application"], entry["ApplicationData"]) == (
        "cti-spy", "ChanSpy", f"{agent_leg},qE{SPY_OPTIONS[mode]}")
    variable = await link.client.action("Getvar", {"Channel": spy, "Variable": "CTI_SPY_OPTIONS"})
    assert variable.get("Value", "") == SPY_OPTIONS[mode]

    supervisor = await media(await rtp_address(link, spy))
    listeners = {"supervisor": supervisor, "agent": agent_audio, "caller": caller}
    # Every mode: the supervisor hears the agent.
    agent_audio.payload = TONE
    assert (await heard(listeners))["supervisor"] >= 10
    # What the supervisor says: nobody hears it, the agent only, or both.
    agent_audio.payload, supervisor.payload = SILENCE, TONE
    loudness = await heard(listeners)
    assert (loudness["agent"] >= 10, loudness["caller"] >= 10) == {
        "listen": (False, False), "whisper": (True, False), "barge": (True, True)}[mode], loudness

    # The supervisor hangs up: the spy ends, the customer and the agent talk on.
    await center.runtime.call_control(link.client.system_name).hangup(spy)
    await events.wait_for(lambda m: m.get("Event") == "ChanSpyStop" and m.get("SpyerChannel") == spy, timeout=5)
    await events.wait_for(lambda m: m.get("Event") == "Hangup" and m.get("Channel") == spy, timeout=5)
    await until(lambda: supervisor_phone.byes() == 1, timeout=5)
    agent_audio.payload, caller.payload = TONE, TONE
    loudness = await heard({"agent": agent_audio, "caller": caller})
    assert loudness["agent"] >= 10 and loudness["caller"] >= 10, loudness
    assert center.acd.engine.agent_state("a1") is AgentState.ON_CALL
    assert {caller_leg, agent_leg} <= {channel.name for channel in call.channels.values()}
    assert not [d for _, d in center.decisions if isinstance(d, CallEnded)]
    assert (center.agent_phone.byes(), supervisor_phone.invites()) == (0, 1)

    # The customer hangs up: the call completes as usual.
    await center.runtime.call_control(link.client.system_name).hangup(caller_leg)
    await center.decision(lambda d: isinstance(d, CallEnded) and d.outcome == "completed")


async def test_monitoring_an_agent_without_a_call_answers_409_and_rings_nobody(link, center, api, phones, events):
    supervisor_phone = phones()
    await until(lambda: center.acd.engine.agent_state("a1") is AgentState.AVAILABLE)
    response = await monitor(api, "listen", supervisor_phone.dial_string("sup1"))
    assert response.status == 409
    assert await response.json() == {"error": "agent a1 is not talking on a call"}
    await asyncio.sleep(1.0)  # time for a wrong originate to ring
    assert supervisor_phone.invites() == 0
    assert not [m for m in events.events if m.get("Event") in ("Newchannel", "OriginateResponse", "ChanSpyStart")]
