"""Asyncio AMI client: one self-healing link to one Asterisk server, on asyncio streams.

* The socket reader only parses and routes. Replies resolve their action's future at once,
  so they are never dropped; events go through a bounded queue to the handlers, so a slow
  handler never slows the reader (Asterisk drops a manager session whose reader lags behind
  ``writetimeout``). When the queue is full the event is dropped and counted: the reader
  never waits.
* Pings prove the link alive; an unanswered one closes it, and ``run()`` reconnects with
  exponential backoff and full jitter.
* Nothing is sent twice. An action pending when the link drops fails: AmiConnectionLost when
  it is safe to retry, AmiOutcomeUnknown when it is not (an Originate may or may not have run).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import itertools
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from cti.ami.message import Message
from cti.ami.protocol import (
    MAX_MESSAGE_BYTES,
    AmiParser,
    Banner,
    Headers,
    ParserCounters,
    ProtocolError,
    action,
    header_pairs,
)

log = structlog.get_logger(__name__)

# Actions whose second run would do harm: they are never retried by anyone on our behalf.
NON_IDEMPOTENT_ACTIONS = frozenset(
    {"originate", "redirect", "hangup", "atxfer", "blindtransfer", "bridge"})
# Actions answered by a list of events; any other whose reply says "EventList: start" is too.
LIST_ACTIONS = frozenset({"queuestatus", "coreshowchannels", "devicestatelist", "bridgelist"})
READ_SIZE = 64 * 1024
LOG_INTERVAL = 1.0  # seconds between two log lines about the same recurring trouble

EventHandler = Callable[[str, Message], Awaitable[None] | None]
ConnectHook = Callable[["AmiClient"], Awaitable[None] | None]
DisconnectHook = Callable[["AmiClient", str], Awaitable[None] | None]


class AmiError(Exception):
    """Base of the errors this client raises."""


class AmiNotConnected(AmiError):
    """The action was not sent: there is no logged-in link right now."""


class AmiConnectionLost(AmiError):
    """The link dropped while an idempotent action was pending: the caller may retry."""


class AmiOutcomeUnknown(AmiError):
    """The link dropped while a non-idempotent action was pending: it may or may not have run.
    Deliberately not an AmiConnectionLost, so that no retry-on-connection-loss catches it."""


class AmiTimeout(AmiError):
    """No reply in time. For a non-idempotent action the outcome is unknown as well."""


class AmiLoginError(AmiError):
    """Asterisk refused the login."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error``; ``message`` is that reply."""

    def __init__(self, action_name: str, message: Message) -> None:
        super().__init__(f"{action_name} failed: {message.get('Message', 'no reason given')}")
        self.message = message


@dataclass(frozen=True, slots=True)
class AmiSettings:
    name: str  # ours for this server, e.g. "pbx1": in logs and handed to event handlers
    host: str
    port: int = 5038
    username: str = "cti"
    secret: str = field(default="", repr=False)
    auth: Literal["md5", "plain"] = "md5"
    connect_timeout: float = 5.0
    action_timeout: float = 10.0
    ping_interval: float = 5.0
    ping_timeout: float = 3.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    queue_size: int = 10000
    events: str = "on"  # the Login's Events header: "on", "off" or a class list

    def __post_init__(self) -> None:
        if self.auth not in ("md5", "plain"):
            raise ValueError(f"auth must be 'md5' or 'plain', got {self.auth!r}")


@dataclass(slots=True)
class AmiStats:
    """Counters for the metrics endpoint; they only ever grow."""

    connects: int = 0
    disconnects: int = 0
    events_received: int = 0
    queue_overflow: int = 0
    handler_errors: int = 0
    actions_sent: int = 0
    action_timeouts: int = 0  # of the application's actions; a late Ping is a ping_failure
    ping_failures: int = 0
    # The parser's own counters (messages, malformed, oversized, decode_errors), live.
    parser: ParserCounters = field(default_factory=ParserCounters)


@dataclass(slots=True)
class AmiList:
    """The reply to a list action: its response, the listed events, the closing event."""

    response: Message
    events: list[Message]
    complete: Message


def backoff_delay(failures: int, low: float, high: float,
                  rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform between ``low`` and a ceiling that doubles
    with each failure up to ``high``. The jitter keeps many clients from reconnecting in step."""
    ceiling = min(high, low * 2 ** min(failures, 32))
    return (rng or random).uniform(low, ceiling)


class _LogThrottle:
    """At most one log line per interval; counts the occurrences it held back meanwhile."""

    __slots__ = ("_interval", "_next_at", "_count")

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self._interval = interval
        self._next_at = 0.0
        self._count = 0

    def take(self, occurrences: int = 1) -> int:
        """Count occurrences; return how many a log line now stands for, or 0: stay quiet."""
        self._count += occurrences
        now = time.monotonic()
        if now < self._next_at:
            return 0
        self._next_at = now + self._interval
        count, self._count = self._count, 0
        return count


class _PendingAction:
    """One action waiting for its reply and, for a list action, for its events."""

    __slots__ = ("name", "idempotent", "expects_list", "future", "response", "events")

    def __init__(self, name: str, idempotent: bool, future: asyncio.Future) -> None:
        self.name = name
        self.idempotent = idempotent
        self.expects_list = name.lower() in LIST_ACTIONS
        self.future = future
        self.response: Message | None = None
        self.events: list[Message] = []

    def take(self, message: Message) -> bool:
        """Whether ``message`` was part of this action's reply."""
        if self.future.done():
            return False  # e.g. OriginateResponse after the reply: an event for the handlers
        if self.response is None:
            return self._take_response(message)
        if message.event is None:
            return False
        if message.get("EventList", "").lower() == "complete" or message.event.endswith("Complete"):
            self.future.set_result(AmiList(self.response, self.events, message))
        else:
            self.events.append(message)
        return True

    def _take_response(self, message: Message) -> bool:
        status = message.response
        if status is None:
            return False
        if status == "Error":
            self.future.set_exception(AmiActionError(self.name, message))
        elif self.expects_list or message.get("EventList", "").lower() == "start":
            self.response = message
        else:
            self.future.set_result(message)
        return True

    def fail(self, reason: str) -> None:
        if self.future.done():
            return
        if self.idempotent:
            error: AmiError = AmiConnectionLost(
                f"link lost while {self.name} was pending ({reason})")
        else:
            error = AmiOutcomeUnknown(
                f"link lost while {self.name} was pending; it may or may not have run")
        self.future.set_exception(error)


@dataclass(eq=False)
class _Link:
    """What lives as long as one TCP connection."""

    writer: asyncio.StreamWriter
    # An Event, not a Future: cancelling a task that waits on a Future cancels the Future.
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    lost_reason: str = ""
    pending: dict[str, _PendingAction] = field(default_factory=dict)
    tasks: list[asyncio.Task] = field(default_factory=list)
    booted: asyncio.Event = field(default_factory=asyncio.Event)  # FullyBooted came


class AmiClient:
    """The link to one Asterisk server. Several servers: one client each.

    ``await client.run()`` keeps the link up until ``await client.close()``; ``await
    client.connect()`` makes a single attempt. Register handlers before either.
    """

    def __init__(self, settings: AmiSettings, *,
                 max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.settings = settings
        self._parser = AmiParser(max_message_bytes=max_message_bytes)
        self.stats = AmiStats(parser=self._parser.counters)
        self.connected = False  # logged in, link up
        self.banner: str | None = None
        self.fully_booted: Message | None = None  # this connection's FullyBooted event, once come
        self._system_name: str | None = None
        self._system_name_settled = False
        self._handlers: list[EventHandler] = []
        self._connect_hooks: list[ConnectHook] = []
        self._disconnect_hooks: list[DisconnectHook] = []
        # A deque, not an asyncio.Queue: the reader appends in C and wakes the dispatcher once
        # per read, where a Queue costs a few Python calls on each side of every event.
        self._queue: deque[Message] = deque()
        self._queue_waiter: asyncio.Future[None] | None = None
        self._link: _Link | None = None
        self._dispatcher: asyncio.Task | None = None
        self._hook_tasks: set[asyncio.Task] = set()
        self._run_task: asyncio.Task | None = None
        self._closing = False
        # ActionIDs unique across reconnects and clients: a late reply never meets a new action.
        self._action_id_prefix = secrets.token_hex(4)
        self._action_numbers = itertools.count(1)
        self._overflow_log = _LogThrottle()
        self._protocol_error_log = _LogThrottle()
        self._read_error_log = _LogThrottle()
        self._malformed_on_read_seen = 0

    # --- registration -----------------------------------------------------------------------

    def on_event(self, handler: EventHandler) -> EventHandler:
        """Call ``handler(client_name, message)`` (sync or async) for every event, in order."""
        self._handlers.append(handler)
        return handler

    def on_connect(self, hook: ConnectHook) -> ConnectHook:
        """Call ``hook(client)`` after each login, once FullyBooted came (or did not in time)."""
        self._connect_hooks.append(hook)
        return hook

    def on_disconnect(self, hook: DisconnectHook) -> DisconnectHook:
        """Call ``hook(client, reason)`` each time a logged-in link ends."""
        self._disconnect_hooks.append(hook)
        return hook

    # --- what the application reads ---------------------------------------------------------

    @property
    def system_name(self) -> str:
        """Asterisk's SystemName (it prefixes Uniqueids), else the name from our settings."""
        return self._system_name or self.settings.name

    @property
    def uptime(self) -> int | None:
        """Seconds Asterisk had been up when it sent FullyBooted; a drop means it restarted."""
        value = self.fully_booted.get("Uptime") if self.fully_booted else None
        return int(value) if value and value.isdigit() else None

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the link up until close(): connect, log in, reconnect after any loss."""
        settings = self.settings
        self._closing = False
        self._run_task = asyncio.current_task()
        failures = 0
        try:
            while True:
                link = await self._try_to_open()
                if link is not None:
                    failures = 0
                    await link.lost.wait()
                delay = backoff_delay(failures, settings.reconnect_min, settings.reconnect_max)
                failures += 1
                log.info("ami.reconnect_scheduled", server=settings.name, delay=round(delay, 3))
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if not self._closing:
                raise
        finally:
            self._end_link("client closed")

    async def connect(self) -> None:
        """One attempt: connect, log in, start reading and pinging.

        Raises AmiLoginError when Asterisk refuses the login, AmiTimeout or OSError when the
        server cannot be reached, AmiConnectionLost when it hangs up during the login.
        """
        await self._open_link()

    async def close(self) -> None:
        """Stop run(), drop the link, stop dispatching (queued events are dropped); give the
        disconnect hooks up to the action timeout to finish."""
        self._closing = True
        current = asyncio.current_task()
        # run() first, so that a login it has under way ends as cancelled, not as a failure.
        await _cancel([self._run_task], current)
        self._end_link("client closed")
        hooks = [task for task in self._hook_tasks if task is not current]
        if hooks:
            await asyncio.wait(hooks, timeout=self.settings.action_timeout)
        await _cancel([self._dispatcher, *hooks], current)

    async def _try_to_open(self) -> _Link | None:
        try:
            return await self._open_link()
        except AmiLoginError as error:
            log.error("ami.login_refused", server=self.settings.name, detail=str(error))
        except (OSError, AmiError) as error:
            log.warning("ami.connect_failed", server=self.settings.name, host=self.settings.host,
                        port=self.settings.port, error=str(error) or type(error).__name__)
        return None

    async def _open_link(self) -> _Link:
        if self._link is not None:
            raise RuntimeError(f"AMI client {self.settings.name} is already connected")
        settings = self.settings
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(settings.host, settings.port), settings.connect_timeout)
        except TimeoutError:
            raise AmiTimeout(f"no TCP connection to {settings.host}:{settings.port} within "
                             f"{settings.connect_timeout} s") from None
        link = self._link = _Link(writer)
        self._parser.reset()
        self.banner = self.fully_booted = None
        self._start_dispatcher()
        link.tasks.append(asyncio.create_task(self._read(reader, link)))
        try:
            await self._log_in(link)
            await self._ask_system_name(link)
        except BaseException:
            self._drop(link, "login did not complete")
            raise
        self.connected = True
        self.stats.connects += 1
        log.info("ami.connected", server=settings.name, host=settings.host, port=settings.port,
                 banner=self.banner, system_name=self.system_name)
        link.tasks.append(asyncio.create_task(self._ping_forever(link)))
        link.tasks.append(asyncio.create_task(self._run_connect_hooks(link)))
        return link

    def _end_link(self, reason: str) -> None:
        if self._link is not None:
            self._drop(self._link, reason)

    def _drop(self, link: _Link, reason: str) -> None:
        """End ``link``: close the socket, fail what is pending, tell the hooks. Idempotent."""
        if link.lost.is_set():
            return
        link.lost.set()
        link.lost_reason = reason
        # abort(), not close(): a dead peer would never take the bytes close() waits to flush.
        link.writer.transport.abort()
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()
        for pending in link.pending.values():
            pending.fail(reason)
        link.pending.clear()
        if self._link is link:
            self._link = None
        if self.connected:
            self.connected = False
            self.stats.disconnects += 1
            (log.info if self._closing else log.warning)(
                "ami.disconnected", server=self.settings.name, reason=reason)
            for hook in self._disconnect_hooks:
                self._spawn_hook(hook, self, reason)

    # --- login --------------------------------------------------------------------------------

    async def _log_in(self, link: _Link) -> None:
        settings = self.settings
        if settings.auth == "md5":
            challenge = await self._request(link, "Challenge", {"AuthType": "MD5"})
            # MD5 because the protocol says so; the flag keeps FIPS builds from refusing it.
            digest = hashlib.md5((challenge.get("Challenge", "") + settings.secret).encode(),
                                 usedforsecurity=False)
            credentials = {"AuthType": "MD5", "Key": digest.hexdigest()}
        else:
            credentials = {"Secret": settings.secret}
        try:
            await self._request(link, "Login", {"Username": settings.username, **credentials,
                                                "Events": settings.events})
        except AmiActionError as error:
            reason = error.message.get("Message", "no reason given")
            raise AmiLoginError(f"{settings.name}: login refused for user {settings.username!r} "
                                f"at {settings.host}:{settings.port} ({reason})") from None

    async def _ask_system_name(self, link: _Link) -> None:
        self._system_name_settled = False
        try:
            core_settings = await self._request(link, "CoreSettings")
        except AmiActionError:  # the account may lack the "system" class: learn it from events
            return
        self._system_name = core_settings.get("SystemName") or None
        # No name here means none in the events either: stop looking for one.
        self._system_name_settled = True

    # --- actions ------------------------------------------------------------------------------

    async def action(self, name: str, headers: Headers | None = None, *,
                     timeout: float | None = None, idempotent: bool | None = None) -> Any:
        """Send an action; return its reply: a Message, or an AmiList for a list action.

        Raises AmiNotConnected at once without a link, AmiActionError on ``Response: Error``,
        AmiTimeout, and when the link drops meanwhile AmiConnectionLost, or AmiOutcomeUnknown
        for a non-idempotent action (by name, or ``idempotent=False``). Never re-sends.
        """
        link = self._link
        if link is None or not self.connected:
            raise AmiNotConnected(f"{name} not sent: no AMI link to {self.settings.name}")
        if idempotent is None:
            idempotent = name.lower() not in NON_IDEMPOTENT_ACTIONS
        try:
            return await self._request(link, name, headers, timeout, idempotent)
        except AmiTimeout:
            self.stats.action_timeouts += 1
            raise

    async def _request(self, link: _Link, name: str, headers: Headers | None = None,
                       timeout: float | None = None, idempotent: bool = True) -> Any:
        action_id, headers = self._action_id(link, headers)
        data = action(name, headers, action_id)  # refuses injection before anything is sent
        if link.lost.is_set():  # it dropped during the login: nothing sent, so safe to retry
            raise AmiConnectionLost(f"link lost before {name} was sent ({link.lost_reason})")
        timeout = self.settings.action_timeout if timeout is None else timeout
        pending = link.pending[action_id] = _PendingAction(
            name, idempotent, asyncio.get_running_loop().create_future())
        # No drain(): actions are small, and a peer that stops reading fails its Ping.
        link.writer.write(data)
        self.stats.actions_sent += 1
        try:
            async with asyncio.timeout(timeout):
                return await pending.future
        except TimeoutError:
            raise AmiTimeout(
                f"{name} got no reply from {self.settings.name} within {timeout} s") from None
        finally:
            link.pending.pop(action_id, None)

    def _action_id(self, link: _Link, headers: Headers | None) -> tuple[str, Headers | None]:
        """Ours, unique across reconnects; or the caller's, when it must match later events (an
        async Originate's OriginateResponse carries it), provided no pending action uses it."""
        pairs = list(header_pairs(headers or ()))
        given = [str(value) for key, value in pairs if key.lower() == "actionid"]
        if not given:
            return f"{self._action_id_prefix}-{next(self._action_numbers)}", headers
        if len(given) > 1 or given[0] in link.pending:
            raise ValueError(f"ActionID {given[0]!r}: given twice, or already used by a pending action")
        return given[0], [(key, value) for key, value in pairs if key.lower() != "actionid"]

    async def _ping_forever(self, link: _Link) -> None:
        settings = self.settings
        while True:
            await asyncio.sleep(settings.ping_interval)
            try:
                await self._request(link, "Ping", timeout=settings.ping_timeout)
            except AmiTimeout:
                self.stats.ping_failures += 1
                log.warning("ami.ping_timeout", server=settings.name, timeout=settings.ping_timeout)
                self._drop(link, f"no reply to Ping within {settings.ping_timeout} s")
                return
            except AmiActionError:
                pass  # an answer, even an error, shows the link is alive

    # --- reading ------------------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader, link: _Link) -> None:
        reason = "connection closed by Asterisk"
        try:
            while data := await reader.read(READ_SIZE):
                for item in self._parser.feed(data):
                    if item.__class__ is Message:
                        self._route(link, item)
                    else:
                        self._note(item)
                self._wake_dispatcher()
                # Let the handlers take this read's events before the next read: freed young,
                # they never pile up for the garbage collector to scan and promote.
                await asyncio.sleep(0)
        except OSError as error:
            reason = f"connection error: {error}"
        except Exception:  # a bug of ours must not leave a link nobody reads
            log.exception("ami.reader_failed", server=self.settings.name)
            reason = "reader failed"
        self._drop(link, reason)

    def _route(self, link: _Link, message: Message) -> None:
        if link.pending and self._take_reply(link, message):
            return
        event = message.event  # known without cutting the message (message.py)
        if event is None and message.response is not None:
            log.debug("ami.unexpected_reply", server=self.settings.name,
                      action_id=message.action_id)
            return
        self.stats.events_received += 1
        if event == "FullyBooted":
            self.fully_booted = message
            link.booted.set()
        if not self._system_name_settled:
            self._learn_system_name(message)
        if len(self._queue) < self.settings.queue_size:
            self._queue.append(message)
        else:
            self._count_overflow()

    def _take_reply(self, link: _Link, message: Message) -> bool:
        action_id = message.action_id
        pending = link.pending.get(action_id) if action_id is not None else None
        if pending is None or not pending.take(message):
            return False
        if pending.future.done():
            del link.pending[action_id]
        return True

    def _learn_system_name(self, message: Message) -> None:
        if name := message.get("SystemName"):
            self._system_name = name
            self._system_name_settled = True

    def _count_overflow(self) -> None:
        self.stats.queue_overflow += 1
        if dropped := self._overflow_log.take():
            log.warning("ami.queue_overflow", server=self.settings.name, dropped=dropped,
                        queue_size=self.settings.queue_size)

    def _note(self, item: Banner | ProtocolError) -> None:
        if isinstance(item, Banner):
            self.banner = item.text
        elif count := self._protocol_error_log.take():
            log.warning("ami.protocol_error", server=self.settings.name, kind=item.kind,
                        reason=item.reason, count=count)

    # --- handlers and hooks -------------------------------------------------------------------

    def _start_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch_events())

    def _wake_dispatcher(self) -> None:
        waiter = self._queue_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _dispatch_events(self) -> None:
        name = self.settings.name
        queue = self._queue
        while True:
            if not queue:  # a future per read the reader hands over, none per event
                self._note_malformed_on_read()
                self._queue_waiter = asyncio.get_running_loop().create_future()
                await self._queue_waiter
                continue
            message = queue.popleft()
            for handler in self._handlers:
                try:
                    result = handler(name, message)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except Exception:
                    self.stats.handler_errors += 1
                    log.exception("ami.handler_failed", server=name, ami_event=message.event,
                                  handler=_callable_name(handler))

    def _note_malformed_on_read(self) -> None:
        """Log the bad lines found in events as handlers read them (cti/ami/message.py): the
        parser counted them, but had handed the events over before they were cut."""
        found = self._parser.counters.malformed_on_read
        new, self._malformed_on_read_seen = found - self._malformed_on_read_seen, found
        if new and (count := self._read_error_log.take(new)):
            log.warning("ami.protocol_error", server=self.settings.name, kind="malformed",
                        reason="lines that are no header, found in events as they were read",
                        count=count)

    async def _run_connect_hooks(self, link: _Link) -> None:
        # Asterisk sends FullyBooted right after the login reply once it has booted; while it
        # boots, the hooks wait for it, up to the action timeout.
        try:
            await asyncio.wait_for(link.booted.wait(), self.settings.action_timeout)
        except TimeoutError:
            log.info("ami.not_fully_booted", server=self.settings.name)
        for hook in self._connect_hooks:
            await self._call_hook(hook, self)

    def _spawn_hook(self, hook: Callable, *args: Any) -> None:
        task = asyncio.create_task(self._call_hook(hook, *args))
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)

    async def _call_hook(self, hook: Callable, *args: Any) -> None:
        try:
            result = hook(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("ami.hook_failed", server=self.settings.name, hook=_callable_name(hook))


async def _cancel(tasks: list[asyncio.Task | None], current: asyncio.Task | None) -> None:
    """Cancel ``tasks`` (never the caller's own) and wait until they have ended."""
    doomed = [task for task in tasks if task is not None and task is not current]
    for task in doomed:
        task.cancel()
    await asyncio.gather(*doomed, return_exceptions=True)


def _callable_name(function: Callable) -> str:
    return getattr(function, "__qualname__", None) or repr(function)
