"""The asyncio AMI client against a fake Asterisk speaking real AMI bytes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
import uvloop
from structlog.testing import capture_logs

from cti.ami.client import (
    READ_SIZE,
    AmiActionError,
    AmiClient,
    AmiConnectionLost,
    AmiList,
    AmiLoginError,
    AmiNotConnected,
    AmiOutcomeUnknown,
    AmiSettings,
    AmiTimeout,
    backoff_delay,
)
from cti.ami.message import Message
from cti.ami.protocol import AmiParser

pytestmark = pytest.mark.unit

SECRET = "s3cret-do-not-log"
CHALLENGE = "840415273"


def wire(*headers: tuple[str, str]) -> bytes:
    return b"".join(f"{name}: {value}\r\n".encode() for name, value in headers) + b"\r\n"


def reply(request: Message, status: str = "Success", *headers: tuple[str, str]) -> bytes:
    return wire(("Response", status), ("ActionID", request.action_id), *headers)


def event(name: str, *headers: tuple[str, str]) -> bytes:
    return wire(("Event", name), ("Privilege", "call,all"), *headers)


def newchannels(count: int) -> bytes:
    return b"".join(event("Newchannel", ("Channel", f"PJSIP/{n}")) for n in range(count))


class FakeConnection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def drop(self) -> None:
        self.writer.transport.abort()


Script = Callable[[FakeConnection, Message], Awaitable[None] | None]
NewClient = Callable[..., AmiClient]


class FakeAsterisk:
    """Answers Challenge, Login (plain and MD5), CoreSettings and Ping as Asterisk 22 does;
    other actions get a plain Success unless a test scripts them."""

    def __init__(self, system_name: str = "pbx-test") -> None:
        self.system_name = system_name
        self.actions: list[Message] = []  # every action received, over all connections
        self.connections: list[FakeConnection] = []
        self.scripts: dict[str, Script] = {}
        self.silent = False  # a hung Asterisk: reads everything, answers nothing

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()
        for connection in self.connections:
            connection.drop()

    def received(self, name: str) -> list[Message]:
        return [m for m in self.actions if m["Action"].lower() == name.lower()]

    def drop_all(self) -> None:
        for connection in self.connections:
            connection.drop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = FakeConnection(writer)
        self.connections.append(connection)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        parser = AmiParser()
        try:
            while data := await reader.read(65536):
                for request in parser.feed(data):
                    if isinstance(request, Message):
                        self.actions.append(request)
                        await self._answer(connection, request)
        except ConnectionError:
            pass

    async def _answer(self, connection: FakeConnection, request: Message) -> None:
        if self.silent:
            return
        name = request["Action"].lower()
        script = self.scripts.get(name) or getattr(self, f"_{name}", None)
        if script is None:
            connection.send(reply(request))
            return
        result = script(connection, request)
        if result is not None:
            await result

    def _challenge(self, connection: FakeConnection, request: Message) -> None:
        connection.send(reply(request, "Success", ("Challenge", CHALLENGE)))

    def _login(self, connection: FakeConnection, request: Message) -> None:
        expected_key = hashlib.md5((CHALLENGE + SECRET).encode()).hexdigest()
        accepted = request.get("Username") == "cti" and (
            request.get("Secret") == SECRET if request.get("AuthType") is None
            else request.get("Key") == expected_key)
        if not accepted:
            connection.send(reply(request, "Error", ("Message", "Authentication failed")))
            return
        connection.send(reply(request, "Success", ("Message", "Authentication accepted")))
        connection.send(wire(("Event", "FullyBooted"), ("Privilege", "system,all"),
                             ("Uptime", "1234"), ("LastReload", "1234"),
                             ("Status", "Fully Booted")))

    def _coresettings(self, connection: FakeConnection, request: Message) -> None:
        connection.send(reply(request, "Success", ("AMIversion", "9.0.0"),
                              ("AsteriskVersion", "22.10.1"),
                              ("SystemName", self.system_name)))

    def _ping(self, connection: FakeConnection, request: Message) -> None:
        connection.send(reply(request, "Success", ("Ping", "Pong"), ("Timestamp", "1.5")))


def make_settings(port: int, **overrides: object) -> AmiSettings:
    values = dict(name="pbx1", host="127.0.0.1", port=port, username="cti", secret=SECRET,
                  auth="plain", connect_timeout=2.0, action_timeout=2.0, ping_interval=0.2,
                  ping_timeout=0.2, reconnect_min=0.01, reconnect_max=0.05, queue_size=100)
    return AmiSettings(**(values | overrides))


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``; the guard only keeps a broken test from hanging."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.fixture
async def server() -> FakeAsterisk:
    fake = FakeAsterisk()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def clients() -> list[AmiClient]:
    """Clients a test made; closed at its end whatever happened."""
    made: list[AmiClient] = []
    yield made
    for client in made:
        await client.close()


@pytest.fixture
def new_client(server: FakeAsterisk, clients: list[AmiClient]) -> NewClient:
    def build(**overrides: object) -> AmiClient:
        client = AmiClient(make_settings(server.port, **overrides))
        clients.append(client)
        return client
    return build


async def running(client: AmiClient) -> asyncio.Task:
    task = asyncio.create_task(client.run())
    await until(lambda: client.connected)
    return task


# --- login -------------------------------------------------------------------------------------

@pytest.mark.parametrize("auth", ["plain", "md5"])
async def test_login_learns_about_the_server(new_client: NewClient, auth: str) -> None:
    client = new_client(auth=auth)
    await client.connect()
    assert client.connected and client.banner == "Asterisk Call Manager/9.0.0"
    assert client.system_name == "pbx-test"
    pong = await client.action("Ping")
    assert pong["Ping"] == "Pong"
    await until(lambda: client.fully_booted is not None)
    assert client.uptime == 1234


async def test_md5_login_never_puts_the_secret_on_the_wire(
        server: FakeAsterisk, new_client: NewClient) -> None:
    await new_client(auth="md5").connect()
    [login] = server.received("Login")
    assert login["AuthType"] == "MD5" and "Secret" not in login
    assert server.received("Challenge")[0]["AuthType"] == "MD5"


@pytest.mark.parametrize("auth", ["plain", "md5"])
async def test_refused_login_says_so_without_the_secret(new_client: NewClient, auth: str) -> None:
    client = new_client(auth=auth, secret="wrong-secret")
    with pytest.raises(AmiLoginError, match="login refused") as refused:
        await client.connect()
    assert "wrong-secret" not in str(refused.value)
    assert not client.connected
    with pytest.raises(AmiNotConnected):
        await client.action("Ping")


async def test_run_logs_a_refused_login_without_the_secret_and_retries(
        server: FakeAsterisk, new_client: NewClient) -> None:
    client = new_client(secret="wrong-secret")
    with capture_logs() as logs:
        task = asyncio.create_task(client.run())
        await until(lambda: len(server.received("Login")) >= 2)
        await client.close()
    assert task.done() and not task.cancelled()
    assert any(entry["event"] == "ami.login_refused" for entry in logs)
    assert "wrong-secret" not in repr(logs) and "wrong-secret" not in repr(client.settings)


# --- actions -----------------------------------------------------------------------------------

async def test_replies_find_their_action_out_of_order(
        server: FakeAsterisk, new_client: NewClient) -> None:
    held: list[tuple[FakeConnection, Message]] = []

    def answer_both_in_reverse(connection: FakeConnection, request: Message) -> None:
        held.append((connection, request))
        if len(held) == 2:
            for conn, waiting in reversed(held):
                conn.send(reply(waiting, "Success", ("Value", waiting["Variable"])))

    server.scripts["getvar"] = answer_both_in_reverse
    client = new_client()
    await client.connect()
    first, second = await asyncio.gather(client.action("Getvar", {"Variable": "FIRST"}),
                                         client.action("Getvar", {"Variable": "SECOND"}))
    assert (first["Value"], second["Value"]) == ("FIRST", "SECOND")
    assert first.action_id != second.action_id


async def test_error_response_raises_with_the_reply(
        server: FakeAsterisk, new_client: NewClient) -> None:
    server.scripts["redirect"] = lambda conn, request: conn.send(
        reply(request, "Error", ("Message", "Channel specified does not exist")))
    client = new_client()
    await client.connect()
    with pytest.raises(AmiActionError, match="does not exist") as failed:
        await client.action("Redirect", {"Channel": "PJSIP/gone-0001", "Exten": "100"})
    assert failed.value.message.response == "Error"


def list_reply(request: Message, item_event: str, count: int) -> bytes:
    items = b"".join(event(item_event, ("ActionID", request.action_id), ("Channel", f"PJSIP/{n}"))
                     for n in range(count))
    return (reply(request, "Success", ("EventList", "start"), ("Message", "Channels will follow"))
            + items[:len(items) // 2] + event("Newexten", ("Channel", "PJSIP/unrelated"))
            + items[len(items) // 2:]
            + event(f"{item_event}sComplete", ("ActionID", request.action_id),
                    ("EventList", "Complete"), ("ListItems", str(count))))


@pytest.mark.parametrize("name", ["CoreShowChannels", "PJSIPShowEndpoints"])  # known, and generic
async def test_list_action_returns_the_whole_list(
        server: FakeAsterisk, new_client: NewClient, name: str) -> None:
    server.scripts[name.lower()] = lambda conn, request: conn.send(list_reply(request, "Item", 4))
    client = new_client()
    others: list[str] = []
    client.on_event(lambda _, message: others.append(message.event))
    await client.connect()
    result = await client.action(name)
    assert isinstance(result, AmiList)
    assert [m["Channel"] for m in result.events] == [f"PJSIP/{n}" for n in range(4)]
    assert result.complete["ListItems"] == "4"
    await until(lambda: "Newexten" in others)  # the unrelated event went to the handlers
    assert "Item" not in others


async def test_unanswered_action_times_out_and_its_late_reply_is_ignored(
        server: FakeAsterisk, new_client: NewClient) -> None:
    late: list[Message] = []
    server.scripts["getvar"] = lambda conn, request: late.append(request)
    client = new_client()
    seen: list[Message] = []
    client.on_event(lambda _, message: seen.append(message))
    await client.connect()
    with pytest.raises(AmiTimeout):
        await client.action("Getvar", {"Variable": "X"}, timeout=0.05)
    server.connections[0].send(reply(late[0], "Success", ("Value", "late")))
    await client.action("Ping")  # sent after the late reply: the reader has passed it
    assert client.stats.action_timeouts == 1
    assert [m.event for m in seen] == ["FullyBooted"]  # the late reply went nowhere


@pytest.mark.parametrize("shape", ["output headers", "legacy follows"])
async def test_command_output_in_both_shapes(
        server: FakeAsterisk, new_client: NewClient, shape: str) -> None:
    def answer(connection: FakeConnection, request: Message) -> None:
        if shape == "output headers":  # Asterisk 14.2 and later
            connection.send(reply(request, "Success", ("Message", "Command output follows"),
                                  ("Output", "Uptime: 5s"), ("Output", ""), ("Output", "done")))
        else:  # Asterisk 12 to 14.1: raw lines, a blank one among them, then the end marker
            connection.send(f"Response: Follows\r\nPrivilege: Command\r\n"
                            f"ActionID: {request.action_id}\r\n"
                            "Uptime: 5s\n\ndone\n--END COMMAND--\r\n\r\n".encode())

    server.scripts["command"] = answer
    client = new_client()
    await client.connect()
    result = await client.action("Command", {"Command": "core show uptime"})
    assert result.output == ["Uptime: 5s", "", "done"]


async def test_injection_is_refused_before_anything_is_sent(
        server: FakeAsterisk, new_client: NewClient) -> None:
    client = new_client()
    await client.connect()
    with pytest.raises(ValueError):
        await client.action("Originate", {"Channel": "PJSIP/100\r\nAction: Hangup"})
    await client.action("Ping")
    assert server.received("Originate") == [] and server.received("Hangup") == []


async def test_actions_fail_fast_without_a_link(new_client: NewClient) -> None:
    with pytest.raises(AmiNotConnected, match="Originate not sent"):
        await new_client().action("Originate", {"Channel": "PJSIP/100"})


# --- liveness and reconnection ------------------------------------------------------------------

async def test_a_silent_server_is_declared_dead(
        server: FakeAsterisk, new_client: NewClient) -> None:
    client = new_client(ping_interval=0.05, ping_timeout=0.1)
    reasons: list[str] = []
    client.on_disconnect(lambda _, reason: reasons.append(reason))
    await client.connect()
    server.silent = True
    await until(lambda: reasons)
    assert "Ping" in reasons[0] and client.stats.ping_failures == 1
    assert not client.connected and client.stats.disconnects == 1


async def test_run_reconnects_after_the_link_drops(
        server: FakeAsterisk, new_client: NewClient) -> None:
    client = new_client()
    logins: list[int | None] = []
    client.on_connect(lambda c: logins.append(c.uptime))
    await running(client)
    await until(lambda: len(logins) == 1)
    server.drop_all()
    await until(lambda: len(logins) == 2)
    assert logins == [1234, 1234]
    assert (client.stats.connects, client.stats.disconnects) == (2, 1)
    assert len(server.received("Login")) == 2


async def test_run_keeps_trying_while_the_server_is_down(clients: list[AmiClient]) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()  # nothing listens on the port any more
    client = AmiClient(make_settings(port))
    clients.append(client)
    with capture_logs() as logs:
        task = asyncio.create_task(client.run())
        await until(lambda: sum(e["event"] == "ami.connect_failed" for e in logs) >= 3)
    assert not task.done() and not client.connected


def test_backoff_doubles_up_to_its_ceiling_with_full_jitter() -> None:
    class Highest(random.Random):
        def uniform(self, low: float, high: float) -> float:
            return high

    ceilings = [backoff_delay(n, 0.5, 30.0, Highest()) for n in range(9)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff_delay(10_000, 0.5, 30.0, Highest()) == 30.0
    jittered = [backoff_delay(5, 0.5, 30.0, random.Random(seed)) for seed in range(50)]
    assert all(0.5 <= delay <= 16.0 for delay in jittered) and len(set(jittered)) > 1


async def test_originate_pending_at_a_drop_is_unknown_and_never_resent(
        server: FakeAsterisk, new_client: NewClient) -> None:
    server.scripts["originate"] = lambda conn, request: conn.drop()
    client = new_client()
    await running(client)
    with pytest.raises(AmiOutcomeUnknown) as unknown:
        await client.action("Originate", {"Channel": "PJSIP/100", "Exten": "200"})
    assert str(unknown.value) == "link lost while Originate was pending; it may or may not have run"
    await until(lambda: client.stats.connects == 2)
    await client.action("Ping")  # the new link works, and carried nothing from the old one
    assert len(server.received("Originate")) == 1


@pytest.mark.parametrize(("name", "idempotent", "error"), [
    ("Getvar", None, AmiConnectionLost),
    ("UserEvent", False, AmiOutcomeUnknown),
])
async def test_what_a_drop_does_to_other_pending_actions(server: FakeAsterisk, new_client,
                                                         name: str, idempotent: bool | None,
                                                         error: type) -> None:
    server.scripts[name.lower()] = lambda conn, request: conn.drop()
    client = new_client()
    await client.connect()
    with pytest.raises(error):
        await client.action(name, {"Variable": "X"}, idempotent=idempotent)
    assert len(server.received(name)) == 1


async def test_close_stops_run_cleanly(new_client: NewClient) -> None:
    client = new_client()
    reasons: list[str] = []

    async def note_disconnect(_: AmiClient, reason: str) -> None:
        await asyncio.sleep(0)
        reasons.append(reason)

    client.on_disconnect(note_disconnect)
    task = await running(client)
    await client.close()
    assert task.done() and task.exception() is None
    assert not client.connected and reasons == ["client closed"]
    with pytest.raises(AmiNotConnected):
        await client.action("Ping")


# --- events --------------------------------------------------------------------------------------

async def test_a_failing_handler_is_isolated(server: FakeAsterisk, new_client: NewClient) -> None:
    client = new_client()
    received: list[str] = []

    def broken(_: str, message: Message) -> None:
        if message.get("Channel") == "PJSIP/1":
            raise RuntimeError("handler bug")

    async def recorder(name: str, message: Message) -> None:
        if message.event == "Newchannel":
            received.append(f"{name}:{message['Channel']}")

    client.on_event(broken)
    client.on_event(recorder)
    await client.connect()
    with capture_logs() as logs:
        server.connections[0].send(newchannels(3))
        await until(lambda: len(received) == 3)
    assert received == ["pbx1:PJSIP/0", "pbx1:PJSIP/1", "pbx1:PJSIP/2"]
    assert client.stats.handler_errors == 1 and client.connected
    [failure] = [entry for entry in logs if entry["event"] == "ami.handler_failed"]
    assert failure["ami_event"] == "Newchannel"
    await client.action("Ping")


async def test_queue_overflow_is_counted_while_the_reader_goes_on(
        server: FakeAsterisk, new_client: NewClient) -> None:
    client = new_client(queue_size=5)
    release = asyncio.Event()
    entered: list[str] = []
    handled: list[str] = []

    async def stuck(_: str, message: Message) -> None:
        entered.append(message.event)
        await release.wait()
        handled.append(message.get("Channel", message.event))

    client.on_event(stuck)
    await client.connect()
    await until(lambda: entered == ["FullyBooted"])  # the handler is stuck on the first event
    server.connections[0].send(newchannels(50))
    await until(lambda: client.stats.events_received == 51)
    assert (await client.action("Ping"))["Ping"] == "Pong"  # replies bypass the full queue
    release.set()
    await until(lambda: len(handled) == 51 - client.stats.queue_overflow)
    assert client.stats.queue_overflow == 45  # 1 in the handler, 5 queued
    assert handled[-5:] == [f"PJSIP/{n}" for n in range(5)]


async def test_each_read_is_handled_before_the_next_is_parsed(
        server: FakeAsterisk, new_client: NewClient) -> None:
    # Events handled in step with reading never pile up, so the garbage collector never scans them.
    client = new_client(queue_size=100_000)
    backlog: list[int] = []  # events routed but not yet handled, seen by each handler call
    client.on_event(lambda _, __: backlog.append(client.stats.events_received - len(backlog)))
    await client.connect()
    one = event("Newchannel", ("Channel", "PJSIP/0"))
    server.connections[0].send(one * 5000)  # several reads' worth, sent at once
    await until(lambda: len(backlog) == 5001)
    assert max(backlog) <= READ_SIZE // len(one) + 2  # one read's events, and a split one


async def test_utf8_split_across_tcp_writes(server: FakeAsterisk, new_client: NewClient) -> None:
    client = new_client()
    names: list[str] = []
    client.on_event(lambda _, message: names.append(message.get("CallerIDName")))
    await client.connect()
    data = event("Newchannel", ("CallerIDName", "José Müller"))
    cuts = [data.index("é".encode()) + 1, data.index("ü".encode()) + 1]  # inside each character
    for start, end in pairwise([0, *cuts, len(data)]):
        server.connections[0].send(data[start:end])
        await asyncio.sleep(0.02)  # separate TCP segments, so separate reads
    await until(lambda: "José Müller" in names)
    assert client.stats.parser.decode_errors == 0


async def test_system_name_from_events_when_coresettings_is_refused(
        server: FakeAsterisk, new_client: NewClient) -> None:
    server.scripts["coresettings"] = lambda conn, request: conn.send(
        reply(request, "Error", ("Message", "Permission denied")))
    client = new_client()
    await client.connect()
    assert client.system_name == "pbx1"  # our name for it until Asterisk tells its own
    server.connections[0].send(event("Newchannel", ("SystemName", "pbx-events")))
    await until(lambda: client.system_name == "pbx-events")


async def test_parse_errors_reach_the_stats(server: FakeAsterisk, new_client: NewClient) -> None:
    client = new_client()
    await client.connect()
    server.connections[0].send(b"Event: Newchannel\r\ngarbage line\r\nName: Jos\xe9\r\n\r\n")
    await until(lambda: client.stats.events_received == 2)
    assert (client.stats.parser.malformed, client.stats.parser.decode_errors) == (1, 1)


async def test_a_bad_line_found_as_a_handler_reads_an_event_is_logged(
        server: FakeAsterisk, new_client: NewClient) -> None:
    client = new_client()
    causes: list[str | None] = []
    client.on_event(lambda _, message: causes.append(message.get("Cause")))
    await client.connect()
    with capture_logs() as logs:
        server.connections[0].send(b"Event: Hangup\r\nnot a header\r\nCause: 16\r\n\r\n")
        await until(lambda: any(entry["event"] == "ami.protocol_error" for entry in logs))
    [entry] = [entry for entry in logs if entry["event"] == "ami.protocol_error"]
    assert entry["kind"] == "malformed" and entry["count"] == 1
    assert causes[-1] == "16" and client.stats.parser.malformed == 1 and client.connected


def test_runs_on_uvloop() -> None:
    async def scenario() -> tuple[str, str, int]:
        fake = FakeAsterisk()
        await fake.start()
        client = AmiClient(make_settings(fake.port, auth="md5"))
        try:
            await client.connect()
            pong = await client.action("Ping")
            fake.scripts["originate"] = lambda conn, request: conn.drop()
            with pytest.raises(AmiOutcomeUnknown):
                await client.action("Originate", {"Channel": "PJSIP/100"})
            loop_module = type(asyncio.get_running_loop()).__module__
            return loop_module, pong["Ping"], client.stats.disconnects
        finally:
            await client.close()
            await fake.stop()

    with ThreadPoolExecutor(1) as pool:  # a loop of its own, away from the test session's
        assert pool.submit(uvloop.run, scenario()).result(timeout=30) == ("uvloop", "Pong", 1)


async def test_a_callers_action_id_is_sent_as_given_and_a_duplicate_is_refused(
        server: FakeAsterisk, new_client: NewClient) -> None:
    """An async Originate's OriginateResponse carries the ActionID: the caller must be able to choose it."""
    held: list[tuple[FakeConnection, Message]] = []
    server.scripts["originate"] = lambda connection, request: held.append((connection, request))
    client = new_client()
    await client.connect()
    pending = asyncio.ensure_future(client.action("Originate", {"Channel": "PJSIP/1", "ActionID": "cb-7"}))
    await until(lambda: bool(held))
    assert held[0][1].action_id == "cb-7" and len(held[0][1].get_all("ActionID")) == 1
    with pytest.raises(ValueError, match="cb-7"):
        await client.action("Originate", [("Channel", "PJSIP/2"), ("ActionID", "cb-7")])
    held[0][0].send(reply(held[0][1], "Success"))
    assert (await pending).action_id == "cb-7"
