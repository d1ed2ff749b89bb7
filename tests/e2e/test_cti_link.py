"""The CTI link on the real lab: AMI client, call model, resync, FastAGI, with sipp calls."""

import asyncio
import dataclasses
import os
import signal
import time

from cti.agi.server import AgiHangup, AgiServer
from cti.callmodel.bus import EventBus
from cti.callmodel.events import CallEnded, CallStarted, Outcome
from cti.callmodel.model import CallModel
from cti.link import RESTART_TOLERANCE_S, AmiLink
from cti.sessions import InboundSessions
from tests.e2e.conftest import WAIT, Recorder, until

def started_from(number: str):
    return lambda event: isinstance(event, CallStarted) and event.ani == number


def ended_call(link, call_id):
    return link.model.call(call_id) or next((c for c in link.model.recent_ended if c.call_id == call_id), None)


async def test_real_call_appears_in_the_call_model_intact(link, calls):
    calls("José Müller", "5551234")
    started = await link.recorder.wait_for(started_from("5551234"))
    assert started.caller_name == "José Müller" and started.dnis == "100"
    assert started.call_id.startswith("asterisk-lab:")  # the real SystemName, learned at login
    ended = await link.recorder.wait_for(lambda e: isinstance(e, CallEnded) and e.call_id == started.call_id)
    assert ended.outcome != Outcome.LOST_DURING_OUTAGE


async def test_fastagi_session_runs_commands_and_sees_the_hangup(lab_config, calls):
    seen = {}
    finished = asyncio.Event()

    async def inbound(session):
        seen["caller"] = (session.callerid, session.calleridname, session.dnid)
        await session.answer()
        seen["channel"] = await session.get_variable("CHANNEL(name)")
        seen["beep"] = (await session.stream_file("beep")).code
        try:
            while True:
                await session.wait_for_digit(500)
        except AgiHangup:
            seen["hangup"] = True
        finally:
            finished.set()

    server = AgiServer("127.0.0.1", lab_config.agi.port)
    server.route("inbound", inbound)
    await server.start()
    try:
        sipp = calls("José Müller", "5557777", hold_ms=2500)
        await asyncio.wait_for(finished.wait(), WAIT)
        assert seen["caller"] == ("5557777", "José Müller", "100")
        assert seen["channel"].startswith("PJSIP/trunk-")
        assert seen["beep"] == 200 and seen["hangup"]
        assert await asyncio.to_thread(sipp.wait, WAIT) == 0
        assert server.stats.handler_errors == 0 and server.stats.protocol_errors == 0
    finally:
        await server.close()


async def test_inbound_session_is_the_same_call_as_the_model_s(link, lab_config, calls):
    server = AgiServer("127.0.0.1", lab_config.agi.port)
    server.route("inbound", InboundSessions(link.model, link.bus).handle)
    await server.start()
    try:
        calls("Ana", "5558888", hold_ms=1500)
        started = await link.recorder.wait_for(started_from("5558888"))
        await until(lambda: ended_call(link, started.call_id).data.get("agi_channel"))
        call = ended_call(link, started.call_id)
        assert call.data["agi_channel"].startswith("PJSIP/trunk-") and call.data["agi_path"] == "inbound"
    finally:
        await server.close()


class CuttableProxy:
    """A loopback TCP proxy in front of the AMI port whose connections the test can cut."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    @staticmethod
    async def _pipe(reader, writer) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        self.server.close()


async def test_killed_tcp_link_reconnects_and_keeps_tracking_the_call(lab, lab_config, calls):
    proxy = CuttableProxy(lab.settings.ami_port)
    server = dataclasses.replace(lab_config.ami_servers()["lab"], port=await proxy.start(), ping_interval=0.5,
                                 ping_timeout=1.0, reconnect_min=0.1, reconnect_max=0.5)
    bus = EventBus()
    recorder = Recorder(bus)
    link = AmiLink("lab", server, CallModel(), bus)
    link.start()
    try:
        await until(lambda: link.resyncs >= 1)
        calls("Long Call", "5559999", hold_ms=8000)
        started = await recorder.wait_for(started_from("5559999"))
        link.model.attach(started.call_id, account="12345")
        proxy.cut()
        await until(lambda: link.resyncs >= 2)
        call = link.model.call(started.call_id)
        assert call is not None and call.ani == "5559999" and call.data["account"] == "12345"
        assert not any(isinstance(e, CallEnded) and e.call_id == started.call_id for e in recorder.events)
        assert link.client.stats.disconnects >= 1 and link.restarts_seen == 0
        ended = await recorder.wait_for(lambda e: isinstance(e, CallEnded) and e.call_id == started.call_id)
        assert ended.outcome != Outcome.LOST_DURING_OUTAGE
    finally:
        await link.close()
        await proxy.close()
        await bus.aclose()


async def test_asterisk_restart_during_a_call_closes_it_as_lost(link, lab, calls):
    calls("Lost Call", "5556666", hold_ms=20000)
    started = await link.recorder.wait_for(started_from("5556666"))
    # Uptime has a one-second grain: a restart is told from a reconnect by a boot time that
    # moved by more than the link's tolerance, so Asterisk must have been up longer than that.
    await asyncio.sleep(max(0.0, link.booted_at + RESTART_TOLERANCE_S + 2 - time.time()))
    # A crash, not a shutdown: Asterisk gets no chance to report the hangup.
    os.kill(int(lab.pidfile.read_text()), signal.SIGKILL)
    await asyncio.to_thread(lab.start)
    ended = await link.recorder.wait_for(lambda e: isinstance(e, CallEnded) and e.call_id == started.call_id)
    assert ended.outcome == Outcome.LOST_DURING_OUTAGE
    assert link.restarts_seen == 1 and link.resyncs >= 2
    assert link.model.call(started.call_id) is None
