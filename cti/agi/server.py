"""FastAGI server: one AgiSession per call, routed by the AGI script path.

    server = AgiServer("127.0.0.1", 4573, max_sessions=500)
    server.route("inbound", inbound_call)      # AGI(agi://cti:4573/inbound?flow=main)
    await server.start()

    async def inbound_call(session: AgiSession) -> None:
        await session.answer()
        choice = await session.get_data("main-menu", 5000, 1)

Each connection is an asyncio.Protocol whose data_received() feeds the sans-IO AgiParser, so
there is no read loop to spin when a peer vanishes, and no reader task per call: replies resolve
the session's pending command straight from the event loop's callback.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, cast

import structlog
from structlog.typing import FilteringBoundLogger

from cti.agi.protocol import (
    FAILURE_LINE,
    MAX_BLOCK_BYTES,
    MAX_LINE_BYTES,
    AgiEnvironment,
    AgiParser,
    AgiResult,
    AsyncHangup,
    Event,
    encode_command,
)

log = structlog.get_logger(__name__)

Handler = Callable[["AgiSession"], Awaitable[None]]

TOO_MANY_SESSIONS = "cti: too many AGI sessions"


class AgiError(Exception):
    """Base of the errors an AGI handler sees."""


class AgiHangup(AgiError):
    """The call is gone: Asterisk sent HANGUP or 511, or the AGI connection closed. Every
    later command raises it too, without reaching the wire; cleanup code still runs."""


class AgiCommandError(AgiError):
    """Asterisk refused or failed a command: 510 (unknown), 520 (bad syntax; ``usage`` holds
    Asterisk's usage text), another 5xx, or a failure result where the command has no other
    way to report it (GET DATA's -1)."""

    def __init__(self, verb: str, result: AgiResult) -> None:
        super().__init__(f"AGI {verb} answered: {' | '.join(result.lines)}")
        self.verb = verb
        self.result = result

    @property
    def usage(self) -> str | None:
        return self.result.data


@dataclass
class AgiServerStats:
    sessions_started: int = 0
    sessions_active: int = 0
    rejected: int = 0  # over max_sessions
    protocol_errors: int = 0  # garbage, early disconnects, slow environments
    handler_errors: int = 0
    unknown_routes: int = 0


def _env_field(key: str) -> property:
    return property(lambda session: session.env.get(key, ""),
                    doc=f"``{key}`` from the AGI environment ('' when absent).")


class AgiSession:
    """One call's AGI conversation. The protocol allows one command at a time."""

    channel = _env_field("agi_channel")
    uniqueid = _env_field("agi_uniqueid")
    callerid = _env_field("agi_callerid")
    calleridname = _env_field("agi_calleridname")
    dnid = _env_field("agi_dnid")

    def __init__(self, environment: AgiEnvironment, write: Callable[[bytes], None],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.env = environment.variables
        self.path = environment.path
        self.params = environment.params
        self.args = list(environment.args)
        self._write = write
        self._loop = loop
        self._pending: asyncio.Future[AgiResult] | None = None
        self._hung_up = False
        self._hangup_seen = asyncio.Event()

    @functools.cached_property
    def log(self) -> FilteringBoundLogger:
        """A logger bound to this call: call_id, channel, route. Bound on first use, as most
        calls log nothing and binding is a measurable share of a short session."""
        return log.bind(call_id=self.uniqueid, channel=self.channel, route=self.path)

    @property
    def caller_number(self) -> str:
        """The caller's number; '' when Asterisk has none (it says "unknown")."""
        number = self.callerid or ""
        return "" if number == "unknown" else number

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    async def wait_hangup(self) -> None:
        """Returns once the call has hung up: lets a session wait on other things meanwhile."""
        await self._hangup_seen.wait()

    async def command(self, verb: str, *args: str | int) -> AgiResult:
        """Send ``verb`` with ``args`` (strings quoted, integers bare) and return the 200 reply.
        Raises AgiHangup (call gone, 511) or AgiCommandError (510, 520, other codes)."""
        line = encode_command(verb, *args)
        if self._hung_up:
            raise AgiHangup(f"{verb}: the call has hung up")
        if self._pending is not None:
            raise RuntimeError("AGI runs one command at a time: await the previous one first")
        self._pending = self._loop.create_future()
        self._write(line)
        try:
            result = await self._pending
        finally:
            self._pending = None
        if result.code != 200:
            self._raise_for(verb, result)
        return result

    def _raise_for(self, verb: str, result: AgiResult) -> NoReturn:
        if result.code == 511:
            self._hang_up(f"{verb}: {result.data}")
            raise AgiHangup(f"{verb}: {result.data}")
        raise AgiCommandError(verb, result)

    async def answer(self) -> AgiResult:
        return await self.command("ANSWER")

    async def hangup(self, channel: str | None = None) -> AgiResult:
        return await self.command("HANGUP", *([] if channel is None else [channel]))

    async def stream_file(self, name: str, escape_digits: str = "",
                          offset: int | None = None) -> AgiResult:
        """Play ``name``; ``.digit`` is the escape digit that stopped it, if any."""
        extra = [] if offset is None else [offset]
        return await self.command("STREAM FILE", name, escape_digits, *extra)

    async def get_data(self, file: str, timeout_ms: int, max_digits: int) -> str:
        """Play ``file`` and collect up to ``max_digits`` DTMF digits ('' if none came)."""
        result = await self.command("GET DATA", file, timeout_ms, max_digits)
        if result.failed:  # digits are never negative: -1 is a failed prompt or a hangup
            raise AgiCommandError("GET DATA", result)
        return result.result or ""

    async def wait_for_digit(self, timeout_ms: int) -> AgiResult:
        """``.digit`` is the digit pressed within ``timeout_ms`` (-1: forever), None if none."""
        return await self.command("WAIT FOR DIGIT", timeout_ms)

    async def say_digits(self, digits: str, escape_digits: str = "") -> AgiResult:
        return await self.command("SAY DIGITS", digits, escape_digits)

    async def say_number(self, number: int, escape_digits: str = "") -> AgiResult:
        return await self.command("SAY NUMBER", number, escape_digits)

    async def exec(self, app: str, *args: str) -> AgiResult:
        """Run a dialplan application. res_agi hands the application one data string, so
        ``args`` are joined with commas the way the dialplan would write them."""
        return await self.command("EXEC", app, *([",".join(args)] if args else []))

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        """The channel variable's value, None when it is not set."""
        return _variable_value(await self.command("GET VARIABLE", name))

    async def get_full_variable(self, expression: str) -> str | None:
        """``expression`` (``${CALLERID(num)}``, ``${X}-${Y}``) evaluated on the channel."""
        return _variable_value(await self.command("GET FULL VARIABLE", expression))

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", message, level)

    def _receive(self, event: AgiResult | AsyncHangup) -> bool:
        """Take a reply or a hangup; False for a reply that answers no command."""
        if isinstance(event, AsyncHangup):
            self._hang_up("Asterisk sent HANGUP")
        elif self._pending is not None and not self._pending.done():
            if event.code != 100:  # 100 is provisional ("Trying..."): the final reply follows
                self._pending.set_result(event)
        else:
            # After a hangup the abandoned command's reply is expected; before, it is a peer
            # that does not speak AGI, and one that could flood us.
            return self._hung_up
        return True

    def _hang_up(self, reason: str) -> None:
        self._hung_up = True
        self._hangup_seen.set()
        if self._pending is not None and not self._pending.done():
            self._pending.set_exception(AgiHangup(reason))


def _variable_value(result: AgiResult) -> str | None:
    # "200 result=1 (value)" when set, "200 result=0" when not.
    return result.data if result.result == "1" else None


class _AgiConnection(asyncio.Protocol):
    """Bytes to events for one TCP connection; the AgiServer decides what runs on it."""

    def __init__(self, server: AgiServer) -> None:
        self._server = server
        self._parser = AgiParser(max_line_bytes=server.max_line_bytes,
                                 max_block_bytes=server.max_block_bytes)
        self._transport: asyncio.Transport | None = None
        self._env_deadline: asyncio.TimerHandle | None = None
        self._session: AgiSession | None = None
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self._env_deadline = self._server._loop.call_later(
            self._server.env_timeout, self._environment_timed_out)
        self._server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        for event in self._parser.feed(data):
            if self._closing:
                break  # an event before this one ended the connection: the rest is moot
            self._dispatch(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._env_deadline.cancel()
        if not self._closing:  # the peer left first: was it in the middle of something?
            for event in self._parser.feed_eof():
                self._dispatch(event)
        if self._session is not None:
            self._session._hang_up("the AGI connection closed")
        self._server._connections.discard(self)

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def close(self) -> None:
        """Flush what was written, then close: for Asterisk, the end of the AGI."""
        self._closing = True
        self._transport.close()

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, (AgiResult, AsyncHangup)):
            if not self._session._receive(event):
                self._protocol_error(f"reply without a command: {event.lines[0][:80]!r}")
        elif isinstance(event, AgiEnvironment):
            self._env_deadline.cancel()
            self._session = AgiSession(event, self._transport.write, self._server._loop)
            self._server._session_ready(self, self._session)
        else:  # a ProtocolError
            self._protocol_error(event.reason)

    def _environment_timed_out(self) -> None:
        self._protocol_error(f"no complete AGI environment within {self._server.env_timeout}s")

    def _protocol_error(self, reason: str) -> None:
        self._server.stats.protocol_errors += 1
        self._log().warning("agi protocol error, closing the connection", reason=reason)
        self.close()

    def _log(self) -> FilteringBoundLogger:
        # Bound only when there is something to say: most connections never log here.
        if self._session is not None:
            return self._session.log
        peer = self._transport.get_extra_info("peername")
        return log.bind(peer=f"{peer[0]}:{peer[1]}" if peer else "?")


class AgiServer:
    """Accepts FastAGI connections from Asterisk and runs the handler routed for each call."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4573, *, max_sessions: int = 1000,
                 env_timeout: float = 5.0, max_line_bytes: int = MAX_LINE_BYTES,
                 max_block_bytes: int = MAX_BLOCK_BYTES) -> None:
        self.host = host
        self.port = port
        self.max_sessions = max_sessions
        # Only the agi_* block is timed (slowloris guard): a session itself lasts as long as
        # its call, hours in a queue if need be.
        self.env_timeout = env_timeout
        self.max_line_bytes = max_line_bytes
        self.max_block_bytes = max_block_bytes
        self.stats = AgiServerStats()
        self._routes: dict[str, Handler] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_AgiConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def route(self, path: str, handler: Handler) -> None:
        """Run ``handler(session)`` for AGI(agi://host:port/<path>?...) requests."""
        path = path.strip("/")
        if path in self._routes:
            raise ValueError(f"AGI route {path!r} is already taken")
        self._routes[path] = handler

    async def start(self) -> None:
        # Kept, not looked up per call: in Python 3.11 get_running_loop() costs a getpid()
        # syscall, three of them a session otherwise.
        self._loop = asyncio.get_running_loop()
        # A backlog of asyncio's default 100 drops SYNs when a burst of calls arrives at
        # once (each retried a second later); let the kernel queue as many as we may serve.
        self._server = await self._loop.create_server(
            lambda: _AgiConnection(self), self.host, self.port, backlog=max(100, self.max_sessions))
        self.port = self._server.sockets[0].getsockname()[1]  # the real one when 0 was asked
        log.info("agi server listening", host=self.host, port=self.port)

    async def close(self) -> None:
        """Stop accepting, cancel running handlers and close every connection. For Asterisk
        the AGI ends and each call goes on in its dialplan."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self._connections):
            connection.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        log.info("agi server closed", port=self.port)

    def _session_ready(self, connection: _AgiConnection, session: AgiSession) -> None:
        handler = self._routes.get(session.path)
        if handler is None:
            work = self._refuse_unknown_route(connection, session)
        elif self.stats.sessions_active >= self.max_sessions:
            work = self._reject_overload(connection, session)
        else:
            work = self._run_handler(connection, session, handler)
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, connection: _AgiConnection, session: AgiSession,
                           handler: Handler) -> None:
        # The task has its own context: lines the handler's code logs carry call_id too.
        structlog.contextvars.bind_contextvars(call_id=session.uniqueid)
        self.stats.sessions_started += 1
        self.stats.sessions_active += 1
        try:
            await handler(session)
        except AgiHangup:
            pass  # the caller hung up: how most calls end, nothing to report
        except Exception:
            self.stats.handler_errors += 1
            session.log.exception("agi handler failed")
        finally:
            self.stats.sessions_active -= 1
            connection.close()

    async def _refuse_unknown_route(self, connection: _AgiConnection,
                                    session: AgiSession) -> None:
        # Closing ends the AGI with AGISTATUS=SUCCESS: the dialplan simply goes on.
        self.stats.unknown_routes += 1
        session.log.warning("agi request for an unknown route", routes=sorted(self._routes))
        await self._say_goodbye(connection, session, f"cti: no AGI route for {session.path!r}")

    async def _reject_overload(self, connection: _AgiConnection, session: AgiSession) -> None:
        # Over the limit: a VERBOSE tells whoever reads the Asterisk console why, then the
        # "failure" line ends the AGI with AGISTATUS=FAILURE, so the dialplan's fallback
        # (dialplans/cti.conf plays an apology) runs instead of a silent hangup. Closing
        # without reading the environment would end it as a SUCCESS, or a reset.
        self.stats.rejected += 1
        session.log.warning("agi session rejected", reason=TOO_MANY_SESSIONS,
                            max_sessions=self.max_sessions)
        await self._say_goodbye(connection, session, TOO_MANY_SESSIONS, last_line=FAILURE_LINE)

    async def _say_goodbye(self, connection: _AgiConnection, session: AgiSession, message: str,
                           last_line: bytes = b"") -> None:
        """VERBOSE ``message`` on the Asterisk console, write ``last_line``, close."""
        try:
            async with asyncio.timeout(self.env_timeout):
                await session.verbose(message, level=1)
            if last_line:
                connection.write(last_line)
        except (AgiError, TimeoutError):
            pass  # the peer is gone or mute: closing is all that is left to do
        finally:
            connection.close()
