"""The FastAGI server against a fake Asterisk speaking the wire protocol over loopback TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from cti.agi.protocol import AgiArgumentError, AgiParser, encode_environment, parse_command_line
from cti.agi.server import AgiCommandError, AgiHangup, AgiServer, AgiSession

pytestmark = pytest.mark.unit

ENV_TIMEOUT = 0.3  # seconds; only the slowloris test waits for it


class FakeAsterisk:
    """Asterisk's side of one FastAGI connection: sends the environment, answers commands."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, script: str = "inbound", **variables: str) -> FakeAsterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        environment = {
            "agi_network": "yes",
            "agi_network_script": script,
            "agi_request": f"agi://127.0.0.1:{port}/{script}",
            "agi_channel": "PJSIP/alice-00000001",
            "agi_uniqueid": "1700000000.1",
            "agi_callerid": "+4930123456",
            "agi_calleridname": "Zoë",
            "agi_dnid": "100",
            "agi_context": "cti-inbound",
            **variables,
        }
        writer.write(encode_environment(environment))
        return cls(reader, writer)

    async def next_command(self) -> list[str]:
        line = await self.reader.readline()
        assert line.endswith(b"\n"), f"the server closed the connection ({line!r})"
        return parse_command_line(line.decode())

    def send(self, *lines: str) -> None:
        self.writer.write("".join(f"{line}\n" for line in lines).encode())

    async def answer(self, expected: list[str], *replies: str) -> None:
        assert await self.next_command() == expected
        self.send(*(replies or ("200 result=0",)))

    async def rest_until_closed(self) -> bytes:
        return await rest_until_closed(self.reader, self.writer)


async def rest_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """What the server still writes before it closes the connection; then our side closes."""
    rest = await reader.read()
    writer.close()
    return rest


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):  # a guard against hanging, not a measurement
        while not condition():
            await asyncio.sleep(0.005)


async def outcome(awaitable: Awaitable[Any]) -> Any:
    """The result, or the exception, for tests to compare after the handler is done."""
    try:
        return await awaitable
    except Exception as error:  # any: the test asserts on it
        return error


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., Awaitable[AgiServer]]]:
    servers: list[AgiServer] = []

    async def make(**options: Any) -> AgiServer:
        server = AgiServer("127.0.0.1", 0, **{"env_timeout": ENV_TIMEOUT, **options})
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


@pytest.fixture
async def server(make_server: Callable[..., Awaitable[AgiServer]]) -> AgiServer:
    return await make_server()


def capture(target: dict[str, Any]) -> Callable[[AgiSession], Awaitable[None]]:
    async def handler(session: AgiSession) -> None:
        target["session"] = session
        target["contextvars"] = structlog.contextvars.get_contextvars()

    return handler


async def test_routes_by_script_path_and_exposes_the_call(server: AgiServer) -> None:
    seen: dict[str, Any] = {}
    server.route("/inbound/", capture(seen))

    asterisk = await FakeAsterisk.connect(server.port, "inbound?flow=main&x=%20y",
                                          agi_arg_1="1000", agi_arg_2="vip")

    assert await asterisk.rest_until_closed() == b""
    session = seen["session"]
    assert (session.path, session.params, session.args) == (
        "inbound", {"flow": "main", "x": " y"}, ["1000", "vip"])
    assert (session.channel, session.uniqueid, session.callerid, session.calleridname,
            session.dnid) == ("PJSIP/alice-00000001", "1700000000.1", "+4930123456", "Zoë", "100")
    assert session.env["agi_context"] == "cti-inbound"
    assert seen["contextvars"] == {"call_id": "1700000000.1"}
    assert server.stats.sessions_started == 1 and server.stats.sessions_active == 0


async def test_two_routes_each_get_their_calls(server: AgiServer) -> None:
    inbound: dict[str, Any] = {}
    outbound: dict[str, Any] = {}
    server.route("inbound", capture(inbound))
    server.route("campaign/outbound", capture(outbound))

    first = await FakeAsterisk.connect(server.port, "campaign%2Foutbound?id=7")
    second = await FakeAsterisk.connect(server.port, "inbound", agi_uniqueid="2.2")

    assert await first.rest_until_closed() == await second.rest_until_closed() == b""
    assert outbound["session"].params == {"id": "7"}
    assert inbound["session"].uniqueid == "2.2"


def test_a_route_is_taken_once() -> None:
    server = AgiServer()
    server.route("inbound", capture({}))

    with pytest.raises(ValueError, match="already taken"):
        server.route("/inbound", capture({}))


DIALOGUE: list[tuple[list[str], tuple[str, ...]]] = [
    (["ANSWER"], ("200 result=0",)),
    (["STREAM", "FILE", "welcome", "12#"], ("200 result=49 endpos=8000",)),
    (["STREAM", "FILE", "menu", "", "1600"], ("200 result=0 endpos=16000",)),
    (["GET", "DATA", "enter-account", "5000", "4"], ("200 result=1234 (timeout)",)),
    (["GET", "DATA", "enter-pin", "3000", "4"], ("200 result= (timeout)",)),
    (["WAIT", "FOR", "DIGIT", "3000"], ("200 result=0",)),
    (["SAY", "DIGITS", "0815", "#"], ("200 result=35",)),
    (["SAY", "NUMBER", "42", ""], ("200 result=0",)),
    (["EXEC", "Dial", "PJSIP/100,30,tT"], ("200 result=0",)),
    (["EXEC", "Gosub", "survey,s,1"], ("100 result=0 Trying...", "200 result=0 Gosub complete")),
    (["SET", "VARIABLE", "NOTE", 'say "hi" \\o/'], ("200 result=1",)),
    (["GET", "VARIABLE", "NOTE"], ('200 result=1 (say "hi" \\o/)',)),
    (["GET", "VARIABLE", "UNSET"], ("200 result=0",)),
    (["GET", "FULL", "VARIABLE", "${CALLERID(num)}"], ("200 result=1 (+4930123456)",)),
    (["VERBOSE", "hello from cti", "2"], ("200 result=1",)),
    (["CHANNEL", "STATUS"], ("200 result=6",)),
    (["HANGUP"], ("200 result=1",)),
]


async def test_typed_commands_on_the_wire_and_their_results(server: AgiServer) -> None:
    results: dict[str, Any] = {}

    async def ivr(session: AgiSession) -> None:
        results["answer"] = (await session.answer()).result
        results["welcome"] = (await session.stream_file("welcome", "12#")).digit
        menu = await session.stream_file("menu", offset=1600)
        results["menu"] = (menu.digit, menu.endpos)
        results["account"] = await session.get_data("enter-account", 5000, 4)
        results["pin"] = await session.get_data("enter-pin", 3000, 4)
        results["wait"] = (await session.wait_for_digit(3000)).digit
        results["say_digits"] = (await session.say_digits("0815", "#")).digit
        results["say_number"] = (await session.say_number(42)).failed
        results["dial"] = (await session.exec("Dial", "PJSIP/100", "30", "tT")).result
        results["gosub"] = (await session.exec("Gosub", "survey,s,1")).data
        results["set"] = await session.set_variable("NOTE", 'say "hi" \\o/')
        results["note"] = await session.get_variable("NOTE")
        results["unset"] = await session.get_variable("UNSET")
        results["number"] = await session.get_full_variable("${CALLERID(num)}")
        results["verbose"] = await session.verbose("hello from cti", level=2)
        results["status"] = (await session.command("CHANNEL STATUS")).result
        results["hangup"] = (await session.hangup()).result

    server.route("inbound", ivr)
    asterisk = await FakeAsterisk.connect(server.port)
    for expected, replies in DIALOGUE:
        await asterisk.answer(expected, *replies)

    assert await asterisk.rest_until_closed() == b""
    assert results == {
        "answer": "0", "welcome": "1", "menu": (None, 16000), "account": "1234", "pin": "",
        "wait": None, "say_digits": "#", "say_number": False, "dial": "0",
        "gosub": "Gosub complete", "set": None, "note": 'say "hi" \\o/', "unset": None,
        "number": "+4930123456", "verbose": None, "status": "6", "hangup": "1",
    }


async def test_hangup_line_fails_the_pending_command_and_cleanup_runs(server: AgiServer) -> None:
    cleanup: list[str] = []

    async def ivr(session: AgiSession) -> None:
        try:
            await session.stream_file("long-announcement")
        finally:
            cleanup.append("ran")

    server.route("inbound", ivr)
    asterisk = await FakeAsterisk.connect(server.port)
    assert await asterisk.next_command() == ["STREAM", "FILE", "long-announcement", ""]
    asterisk.send("HANGUP")

    assert await asterisk.rest_until_closed() == b""
    assert cleanup == ["ran"]
    assert server.stats.handler_errors == 0  # a hangup is how calls end, not a handler bug


async def test_after_a_hangup_commands_raise_without_reaching_the_wire(server: AgiServer) -> None:
    hung_up = asyncio.Event()
    results: dict[str, Any] = {}

    async def ivr(session: AgiSession) -> None:
        results["session"] = session
        await session.answer()
        await hung_up.wait()  # busy elsewhere (a CRM lookup) when the caller hangs up
        results["verbose"] = await outcome(session.verbose("anyone there?"))

    server.route("inbound", ivr)
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.answer(["ANSWER"])
    asterisk.send("HANGUP")
    await until(lambda: results["session"].hung_up)
    hung_up.set()

    assert await asterisk.rest_until_closed() == b""
    assert isinstance(results["verbose"], AgiHangup)


async def test_a_reply_to_no_command_closes_the_connection(server: AgiServer) -> None:
    results: dict[str, Any] = {}
    flood_sent = asyncio.Event()

    async def ivr(session: AgiSession) -> None:
        await flood_sent.wait()
        results["after"] = await outcome(session.answer())

    server.route("inbound", ivr)
    asterisk = await FakeAsterisk.connect(server.port)
    asterisk.send(*["200 result=0"] * 1000)
    await until(lambda: server.stats.protocol_errors == 1)
    flood_sent.set()

    assert await asterisk.rest_until_closed() == b""
    await until(lambda: "after" in results)
    assert isinstance(results["after"], AgiHangup)


async def test_511_is_a_hangup(server: AgiServer) -> None:
    results: dict[str, Any] = {}

    async def ivr(session: AgiSession) -> None:
        results["stream"] = await outcome(session.stream_file("prompt"))
        results["hung_up"] = session.hung_up

    server.route("inbound", ivr)
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.answer(["STREAM", "FILE", "prompt", ""],
                          "511 Command Not Permitted on a dead channel or intercept routine")

    assert await asterisk.rest_until_closed() == b""
    assert isinstance(results["stream"], AgiHangup)
    assert "dead channel" in str(results["stream"])
    assert results["hung_up"] is True


async def test_510_520_and_failed_get_data_raise_command_errors_and_the_call_goes_on(
        server: AgiServer) -> None:
    results: dict[str, Any] = {}

    async def ivr(session: AgiSession) -> None:
        results["unknown"] = await outcome(session.command("FROB NICATE"))
        results["usage"] = await outcome(session.command("WAIT FOR DIGIT"))
        results["get_data"] = await outcome(session.get_data("missing-prompt", 1000, 1))
        results["then"] = (await session.answer()).result

    server.route("inbound", ivr)
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.answer(["FROB", "NICATE"], "510 Invalid or unknown command")
    await asterisk.answer(["WAIT", "FOR", "DIGIT"],
                          "520-Invalid command syntax.  Proper usage follows:",
                          " Usage: WAIT FOR DIGIT <timeout>",
                          "\tWaits up to 'timeout' milliseconds for a DTMF digit.",
                          "520 End of proper usage.")
    await asterisk.answer(["GET", "DATA", "missing-prompt", "1000", "1"], "200 result=-1")
    await asterisk.answer(["ANSWER"])

    assert await asterisk.rest_until_closed() == b""
    unknown, usage, get_data = results["unknown"], results["usage"], results["get_data"]
    assert isinstance(unknown, AgiCommandError) and unknown.result.code == 510
    assert isinstance(usage, AgiCommandError) and usage.result.code == 520
    assert usage.usage == (" Usage: WAIT FOR DIGIT <timeout>\n"
                           "\tWaits up to 'timeout' milliseconds for a DTMF digit.")
    assert isinstance(get_data, AgiCommandError) and get_data.result.failed
    assert results["then"] == "0"


async def test_unsafe_arguments_never_reach_the_wire(server: AgiServer) -> None:
    results: dict[str, Any] = {}

    async def ivr(session: AgiSession) -> None:
        results["injection"] = await outcome(session.set_variable("X", "1\nHANGUP"))
        results["then"] = (await session.answer()).result

    server.route("inbound", ivr)
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.answer(["ANSWER"])

    assert await asterisk.rest_until_closed() == b""
    assert isinstance(results["injection"], AgiArgumentError)
    assert results["then"] == "0"


async def test_one_command_at_a_time(server: AgiServer) -> None:
    results: dict[str, Any] = {}

    async def ivr(session: AgiSession) -> None:
        first = asyncio.ensure_future(session.answer())
        await asyncio.sleep(0)
        results["second"] = await outcome(session.verbose("too early"))
        results["first"] = (await first).result

    server.route("inbound", ivr)
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.answer(["ANSWER"])

    assert await asterisk.rest_until_closed() == b""
    assert isinstance(results["second"], RuntimeError)
    assert results["first"] == "0"


async def test_unknown_route_says_why_and_closes(server: AgiServer) -> None:
    server.route("inbound", capture({}))

    with capture_logs() as logs:
        asterisk = await FakeAsterisk.connect(server.port, "nowhere?x=1")
        await asterisk.answer(["VERBOSE", "cti: no AGI route for 'nowhere'", "1"], "200 result=1")
        assert await asterisk.rest_until_closed() == b""

    assert server.stats.unknown_routes == 1 and server.stats.sessions_started == 0
    warning = next(entry for entry in logs if entry["event"] == "agi request for an unknown route")
    assert (warning["route"], warning["call_id"]) == ("nowhere", "1700000000.1")


async def test_a_peer_mute_to_the_goodbye_is_closed_all_the_same(server: AgiServer) -> None:
    asterisk = await FakeAsterisk.connect(server.port, "nowhere")

    assert await asterisk.next_command() == ["VERBOSE", "cti: no AGI route for 'nowhere'", "1"]
    assert await asterisk.rest_until_closed() == b""  # after env_timeout, unanswered


async def test_sessions_over_the_limit_are_turned_away(make_server: Callable[..., Any]) -> None:
    server = await make_server(max_sessions=1)
    release = asyncio.Event()

    async def inbound(session: AgiSession) -> None:
        await release.wait()
        await session.verbose("first call done")

    server.route("inbound", inbound)
    first = await FakeAsterisk.connect(server.port)
    await until(lambda: server.stats.sessions_active == 1)
    second = await FakeAsterisk.connect(server.port, agi_uniqueid="2.2")

    await second.answer(["VERBOSE", "cti: too many AGI sessions", "1"], "200 result=1")
    assert await second.rest_until_closed() == b"failure\n"
    release.set()
    await first.answer(["VERBOSE", "first call done", "1"], "200 result=1")
    assert await first.rest_until_closed() == b""
    assert (server.stats.rejected, server.stats.sessions_started) == (1, 1)


async def test_a_failing_handler_is_logged_and_closed_and_others_go_on(server: AgiServer) -> None:
    async def broken(session: AgiSession) -> None:
        await session.answer()
        raise RuntimeError("bug in the IVR")

    async def fine(session: AgiSession) -> None:
        await session.verbose("fine")

    server.route("broken", broken)
    server.route("fine", fine)
    with capture_logs() as logs:
        crash = await FakeAsterisk.connect(server.port, "broken", agi_uniqueid="1.1")
        await crash.answer(["ANSWER"])
        assert await crash.rest_until_closed() == b""
        healthy = await FakeAsterisk.connect(server.port, "fine", agi_uniqueid="2.2")
        await healthy.answer(["VERBOSE", "fine", "1"], "200 result=1")
        assert await healthy.rest_until_closed() == b""

    failure = next(entry for entry in logs if entry["event"] == "agi handler failed")
    assert (failure["route"], failure["channel"], failure["call_id"]) == (
        "broken", "PJSIP/alice-00000001", "1.1")
    assert failure["exc_info"] is True
    assert (server.stats.handler_errors, server.stats.sessions_started,
            server.stats.sessions_active) == (1, 2, 0)


async def raw_connection(port: int,
                         data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def test_garbage_early_disconnect_and_slowloris_are_closed_while_a_call_goes_on(
        server: AgiServer) -> None:
    proceed = asyncio.Event()

    async def inbound(session: AgiSession) -> None:
        await session.answer()
        await proceed.wait()
        await session.verbose("still here")

    server.route("inbound", inbound)
    live = await FakeAsterisk.connect(server.port)
    await live.answer(["ANSWER"])

    garbage = await raw_connection(server.port, b"GET / HTTP/1.1\r\nHost: cti\r\n\r\n")
    assert await rest_until_closed(*garbage) == b""
    _, early = await raw_connection(server.port, b"agi_network: yes\nagi_chan")
    early.close()
    slow = await raw_connection(server.port, b"agi_network: yes\n")
    assert await rest_until_closed(*slow) == b""  # closed by the server after env_timeout
    await until(lambda: server.stats.protocol_errors == 3)

    proceed.set()
    await live.answer(["VERBOSE", "still here", "1"], "200 result=1")
    assert await live.rest_until_closed() == b""
    assert (server.stats.sessions_started, server.stats.handler_errors) == (1, 0)


async def test_early_disconnect_leaves_no_busy_loop(server: AgiServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    feed, feed_eof = AgiParser.feed, AgiParser.feed_eof

    def counted_feed(parser: AgiParser, data: bytes) -> list:
        calls.append("feed")
        return feed(parser, data)

    def counted_feed_eof(parser: AgiParser) -> list:
        calls.append("feed_eof")
        return feed_eof(parser)

    monkeypatch.setattr(AgiParser, "feed", counted_feed)
    monkeypatch.setattr(AgiParser, "feed_eof", counted_feed_eof)
    tasks_before = len(asyncio.all_tasks())

    _, writer = await raw_connection(server.port, b"agi_network: yes\nagi_channel: SIP/1\n")
    writer.close()
    await writer.wait_closed()
    await until(lambda: server.stats.protocol_errors == 1)
    for _ in range(200):  # a spinning reader would keep counting while the loop turns
        await asyncio.sleep(0)

    assert calls == ["feed", "feed_eof"]
    assert len(asyncio.all_tasks()) == tasks_before


async def test_close_stops_accepting_and_cancels_running_sessions(
        make_server: Callable[..., Any]) -> None:
    server = await make_server()
    cleaned_up = asyncio.Event()

    async def inbound(session: AgiSession) -> None:
        try:
            await session.stream_file("hold-music")
        finally:
            cleaned_up.set()

    server.route("inbound", inbound)
    # Connected first, so accepted by the time the call below is running.
    idle = await raw_connection(server.port, b"agi_network: yes\n")
    asterisk = await FakeAsterisk.connect(server.port)
    assert await asterisk.next_command() == ["STREAM", "FILE", "hold-music", ""]

    await server.close()

    assert cleaned_up.is_set()
    assert await asterisk.rest_until_closed() == b""
    assert await rest_until_closed(*idle) == b""
    assert server.stats.sessions_active == 0
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)
