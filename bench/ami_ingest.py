"""AMI ingest throughput: cti's AmiClient and call model against panoramisk 1.4's Manager.

    .venv/bin/python bench/ami_ingest.py [--events N]

The stream is real: the AMI events of one queued call on Asterisk 22
(shared/reference/queued-call-ami.jsonl), repeated to N events. A fake Asterisk in a child
process (its own core on a 2-core box) sends the banner, answers the login, then writes the
stream over loopback. Our client logs in and feeds every event to the call model
(CallModel.apply), as the daemon's AMI links do (cti/link.py). Panoramisk's Manager hands
every event to a handler registered for the pattern "*" (Manager.register_event) that does
nothing: it is timed parsing and dispatching only. Events/s run from the first event handled
to the last. Both run on uvloop, as in production (``cti run`` starts the daemon with
uvloop.run), in alternating rounds against the same stream; the median of the rounds counts.
Each round also times our client with a no-op handler, and pure parser throughput on the
same bytes is printed too. Our parser hands events over uncut, and a message is cut into its
headers when something first reads one (cti/ami/message.py): the call model reads the events it
handles, and skips the others (VarSet, most of the stream) by name. So the no-op handler and
pure parse figures cut nothing; pure parse is also given with every event cut. The last line
is the summary: ours (parser + call model) / panoramisk (parser, no-op handler), end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import uvloop

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from panoramisk import Manager  # noqa: E402
from panoramisk.ami_protocol import AMIProtocol  # noqa: E402

from cti import logs  # noqa: E402
from cti.ami.client import AmiClient, AmiSettings  # noqa: E402
from cti.ami.message import Message  # noqa: E402
from cti.ami.protocol import AmiParser  # noqa: E402
from cti.callmodel import CallModel  # noqa: E402

CAPTURE = REPO_ROOT.parent / "shared" / "reference" / "queued-call-ami.jsonl"
BANNER = b"Asterisk Call Manager/9.0.0\r\n"
FULLY_BOOTED = (b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 10\r\n"
                b"Status: Fully Booted\r\n\r\n")
SYSTEM_NAME = "asterisk-lab"  # the capture's, in its events and in our CoreSettings reply
EVENTS_PER_WRITE = 100  # writes hold whole events, so replies to actions can go in between
READ_SIZE = 64 * 1024
ROUNDS = 5  # measured, after one round to warm up (the first one pays for memory growth)
DEFAULT_EVENTS = 200_000
BARE, PANORAMISK, MODEL = "ours, no-op handler", "panoramisk", "ours + call model"  # the sides, as printed


def recorded_events(count: int) -> list[bytes]:
    """``count`` events on the wire, the capture repeated."""
    if not CAPTURE.exists():
        sys.exit(f"ami_ingest: the reference capture is missing: {CAPTURE}")
    records = [json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip()]
    wire = ["".join(f"{name}: {value}\r\n" for name, value in record.items() if name != "_t")
            .encode() + b"\r\n" for record in records]
    return [wire[n % len(wire)] for n in range(count)]


# --- the fake Asterisk (child process) ----------------------------------------------------------

def reply_to(request: Message) -> bytes:
    headers = {"challenge": "Challenge: 1234\r\n", "ping": "Ping: Pong\r\n",
               "coresettings": f"SystemName: {SYSTEM_NAME}\r\n",
               "login": "Message: Authentication accepted\r\n"}.get(request["Action"].lower(), "")
    return f"Response: Success\r\nActionID: {request.action_id}\r\n{headers}\r\n".encode()


async def serve_stream(writes: list[bytes], reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
    writer.write(BANNER)
    parser = AmiParser()
    streaming: asyncio.Task | None = None
    while data := await reader.read(READ_SIZE):
        for request in parser.feed(data):
            if not isinstance(request, Message):
                continue
            writer.write(reply_to(request))
            if request["Action"].lower() == "login" and streaming is None:
                writer.write(FULLY_BOOTED)
                streaming = asyncio.create_task(write_all(writes, writer))
    if streaming is not None:
        streaming.cancel()


async def write_all(writes: list[bytes], writer: asyncio.StreamWriter) -> None:
    for data in writes:
        writer.write(data)
        await writer.drain()


async def run_server(count: int) -> None:
    events = recorded_events(count)
    writes = [b"".join(events[n:n + EVENTS_PER_WRITE]) for n in range(0, count, EVENTS_PER_WRITE)]
    server = await asyncio.start_server(lambda r, w: serve_stream(writes, r, w), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.to_thread(sys.stdin.buffer.read)  # serve until the parent closes our stdin


# --- the clients ------------------------------------------------------------------------------

class Stopwatch:
    """Counts handled events; times the first to the last."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.first = 0.0
        self.done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def tick(self) -> None:
        self.count += 1
        if self.count == 1:
            self.first = time.perf_counter()
        if self.count == self.expected:
            self.done.set_result(time.perf_counter())

    async def rate(self) -> float:
        last = await asyncio.wait_for(self.done, 120)
        return (self.expected - 1) / (last - self.first)


class ModelFeed:
    """Feeds each event to a call model, as cti/link.py does, and counts the bus events it
    gives: the same count as the events built header by header give shows the model's work
    was all done."""

    def __init__(self) -> None:
        self.model = CallModel()
        self.bus_events = 0

    def __call__(self, system: str, message: Message) -> None:
        if events := self.model.apply(system, message):
            self.bus_events += len(events)


def bus_events_of(count: int) -> int:
    """The bus events the call model gives for the stream, its events built from their headers."""
    feed = ModelFeed()
    for wire in recorded_events(count):
        lines = wire.decode().removesuffix("\r\n\r\n").split("\r\n")
        feed(SYSTEM_NAME, Message(line.split(": ", 1) for line in lines))
    return feed.bus_events


async def ours_rate(port: int, expected: int, feed: ModelFeed | None) -> float:
    watch = Stopwatch(expected)
    client = AmiClient(AmiSettings(name="bench", host="127.0.0.1", port=port, auth="plain",
                                   secret="bench", ping_interval=3600))
    if feed is None:
        client.on_event(lambda _name, _message: watch.tick())
    else:
        def feed_and_tick(name: str, message: Message) -> None:
            feed(client.system_name, message)
            watch.tick()
        client.on_event(feed_and_tick)
    await client.connect()
    try:
        return await watch.rate()
    finally:
        if client.stats.queue_overflow:
            print(f"  ours dropped {client.stats.queue_overflow} events (queue full)")
        await client.close()


async def panoramisk_rate(port: int, expected: int) -> float:
    watch = Stopwatch(expected)
    # Its Login is sent as soon as the TCP connection is up; Pings are pushed out of the run.
    manager = Manager(host="127.0.0.1", port=port, username="bench", secret="bench",
                      ping_delay=3600, ping_interval=3600, reconnect_timeout=3600)
    manager.register_event("*", lambda _manager, _message: watch.tick())
    await manager.connect()
    try:
        return await watch.rate()
    finally:
        manager.close()


# --- pure parsers --------------------------------------------------------------------------------

def ours_parse_rate(stream: bytes, events: int, cut_every_event: bool) -> float:
    """Events come out of our parser uncut (cti/ami/message.py); ``cut_every_event`` also cuts
    each one into its headers, as if every event were read."""
    parser = AmiParser()
    start = time.perf_counter()
    for offset in range(0, len(stream), READ_SIZE):
        for message in parser.feed(stream[offset:offset + READ_SIZE]):
            if cut_every_event and message.__class__ is Message:
                message.names  # noqa: B018 (the read cuts the message)
    return events / (time.perf_counter() - start)


class _NoDispatch:
    """What panoramisk's protocol needs of its Manager to parse and route: nothing more."""

    save_stream = None
    forgetable_actions = ()
    awaiting_actions = ()

    def dispatch(self, message: object) -> None:
        pass


class _NoTransport:
    def close(self) -> None:
        pass


def panoramisk_parse_rate(stream: bytes, events: int) -> float:
    protocol = AMIProtocol()
    protocol.connection_made(_NoTransport())
    protocol.factory = _NoDispatch()
    protocol.encoding = "utf8"
    start = time.perf_counter()
    for offset in range(0, len(stream), READ_SIZE):
        protocol.data_received(stream[offset:offset + READ_SIZE])
    return events / (time.perf_counter() - start)


# --- the comparison -------------------------------------------------------------------------------

async def start_server(count: int) -> tuple[asyncio.subprocess.Process, int]:
    server = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", "--events", str(count),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    port = int(await server.stdout.readline())
    return server, port


async def compare(count: int) -> None:
    logs.configure("console", "warning")
    print("event loop: uvloop for both clients, as in `cti run` (cti/cli.py)")
    rates = await measure_rounds(count)
    stream = BANNER + b"".join(recorded_events(count))
    print(f"pure parse: ours {ours_parse_rate(stream, count, False):.0f} events/s "
          f"({ours_parse_rate(stream, count, True):.0f} with every event cut into headers), "
          f"panoramisk {panoramisk_parse_rate(stream, count):.0f} events/s")
    bare, panoramisk, ours = (statistics.median(rates[side]) for side in (BARE, PANORAMISK, MODEL))
    print(f"no-op handler: ours {bare:.0f} events/s, {bare / panoramisk:.2f} x panoramisk "
          f"(AmiClient alone, no call model)")
    print(f"ami_ingest ratio_vs_panoramisk={ours / panoramisk:.2f} ours_eps={ours:.0f} "
          f"panoramisk_eps={panoramisk:.0f}")


async def measure_rounds(count: int) -> dict[str, list[float]]:
    """events/s of each side, one figure per measured round: ours with a no-op handler,
    panoramisk, ours feeding the call model (the headline, measured right after panoramisk)."""
    expected = count + 1  # FullyBooted, then the stream
    bus_events = bus_events_of(count)
    print(f"call model: {bus_events} bus events expected from the stream")
    server, port = await start_server(count)
    rates: dict[str, list[float]] = {BARE: [], PANORAMISK: [], MODEL: []}  # in the order measured
    try:
        for round_number in range(ROUNDS + 1):
            feed = ModelFeed()
            figures = (await ours_rate(port, expected, None),
                       await panoramisk_rate(port, expected),
                       await ours_rate(port, expected, feed))
            if feed.bus_events != bus_events:
                sys.exit(f"ami_ingest: the call model gave {feed.bus_events} bus events, "
                         f"not {bus_events}")
            label = f"round {round_number}" if round_number else "warm-up"
            print(f"{label}: " + ", ".join(f"{side} {rate:.0f} events/s"
                                           for side, rate in zip(rates, figures)), flush=True)
            if round_number:
                for side, rate in zip(rates, figures):
                    rates[side].append(rate)
    finally:
        server.kill()
        await server.wait()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="stream length")
    parser.add_argument("--serve", action="store_true", help="internal: be the fake Asterisk")
    options = parser.parse_args()
    uvloop.run(run_server(options.events) if options.serve
               else compare(options.events))


if __name__ == "__main__":
    main()
