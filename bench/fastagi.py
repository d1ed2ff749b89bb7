"""FastAGI throughput: cti's AgiServer against panoramisk 1.4's fast_agi.Application.

    .venv/bin/python bench/fastagi.py

200 simulated Asterisk channels connect over loopback, each sending the agi_* block, answering
the handler's 5 commands and waiting for the server to close; then the next call. The channels
run in one child process (its own core on a 2-core box), so the servers do not share a loop
with them, and it drives both servers with the same load: rounds alternate between them, on
uvloop as in production, logging at "warning".

The box is shared: other work takes a varying share of its two cores, so wall-clock sessions/s
swing widely from one second to the next, and may be bound by the clients rather than by the
server. Each round therefore also measures the server process's own CPU time, and the result
line reports sessions per second of server CPU: what one fully busy core sustains, steady under
that noise. Wall-clock sessions/s are printed too. ratio_vs_panoramisk is the median of the
ratios of adjacent rounds; p99_ms is our handler-side command round trip, wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import uvloop
from panoramisk.fast_agi import Application, Request

from cti import logs
from cti.agi.protocol import encode_environment
from cti.agi.server import AgiServer, AgiSession

CONCURRENCY = 200
WARMUP_S = 0.3
MEASURE_S = 2.0
PAIRS = 8
SCRIPT = "bench"

ENVIRONMENT = encode_environment({
    "agi_network": "yes",
    "agi_network_script": SCRIPT,
    "agi_request": f"agi://127.0.0.1/{SCRIPT}",
    "agi_channel": "PJSIP/bench-00000001",
    "agi_language": "en",
    "agi_type": "PJSIP",
    "agi_uniqueid": "1700000000.1",
    "agi_version": "20.5.0",
    "agi_callerid": "+4930123456",
    "agi_calleridname": "Bench Caller",
    "agi_callingpres": "0",
    "agi_dnid": "100",
    "agi_rdnis": "unknown",
    "agi_context": "cti-inbound",
    "agi_extension": "100",
    "agi_priority": "3",
    "agi_enhanced": "0.0",
    "agi_accountcode": "",
    "agi_threadid": "140234",
    "agi_arg_1": "queue-sales",
})

# The same five commands for both servers, as each library spells them.
PANORAMISK_COMMANDS = ['ANSWER', 'STREAM FILE "welcome" "12#"', 'GET VARIABLE "CRM_ID"',
                       'SET VARIABLE "CTI_ROUTE" "sales"', 'VERBOSE "bench" 1']
COMMANDS_PER_SESSION = len(PANORAMISK_COMMANDS)


async def ours_handler(session: AgiSession, round_trips: list[float]) -> None:
    commands = (session.answer, lambda: session.stream_file("welcome", "12#"),
                lambda: session.get_variable("CRM_ID"),
                lambda: session.set_variable("CTI_ROUTE", "sales"),
                lambda: session.verbose("bench"))
    for command in commands:
        start = time.perf_counter()
        await command()
        round_trips.append(time.perf_counter() - start)


async def panoramisk_handler(request: Request, round_trips: list[float]) -> None:
    for command in PANORAMISK_COMMANDS:
        start = time.perf_counter()
        await request.send_command(command)
        round_trips.append(time.perf_counter() - start)


async def start_ours(round_trips: list[float]) -> tuple[int, Callable]:
    server = AgiServer("127.0.0.1", 0, max_sessions=10 * CONCURRENCY)
    server.route(SCRIPT, partial(ours_handler, round_trips=round_trips))
    await server.start()
    return server.port, server.close


async def start_panoramisk(round_trips: list[float]) -> tuple[int, Callable]:
    app = Application()
    # A partial keeps the handler a coroutine function, as panoramisk requires.
    app.add_route(SCRIPT, partial(panoramisk_handler, round_trips=round_trips))
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)

    async def close() -> None:
        server.close()
        await server.wait_closed()

    return server.sockets[0].getsockname()[1], close


class SimulatedChannel(asyncio.Protocol):
    """Asterisk's side of one FastAGI call: environment, a reply per command line."""

    def __init__(self, ended: asyncio.Future[None]) -> None:
        self._ended = ended
        self._pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        transport.write(ENVIRONMENT)

    def data_received(self, data: bytes) -> None:
        *lines, self._pending = (self._pending + data).split(b"\n")
        self._transport.write(b"".join(map(reply_to, lines)))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._ended.done():
            self._ended.set_result(None)


def reply_to(command: bytes) -> bytes:
    if command.startswith(b"GET VARIABLE"):
        return b"200 result=1 (4711)\n"
    if command.startswith(b"STREAM FILE"):
        return b"200 result=0 endpos=8000\n"
    return b"200 result=1\n"


async def simulate_calls(port: int, measure_from: float, measure_until: float) -> int:
    loop = asyncio.get_running_loop()
    completed = 0
    while time.perf_counter() < measure_until:
        ended = loop.create_future()
        await loop.create_connection(partial(SimulatedChannel, ended), "127.0.0.1", port)
        await ended
        completed += measure_from <= time.perf_counter() <= measure_until
    return completed


async def announce_measurement() -> None:
    await asyncio.sleep(WARMUP_S)
    print("measuring", flush=True)


async def run_clients() -> None:
    """The child: one round per port read from stdin, "measuring" then a JSON line for each."""
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        start = time.perf_counter()
        measure_from, measure_until = start + WARMUP_S, start + WARMUP_S + MEASURE_S
        _, *counts = await asyncio.gather(announce_measurement(), *(
            simulate_calls(int(line), measure_from, measure_until) for _ in range(CONCURRENCY)))
        print(json.dumps({"sessions": sum(counts), "seconds": MEASURE_S}), flush=True)


@dataclass
class Round:
    sessions_per_s: float  # completed by the clients in the window, per wall-clock second
    sessions_per_cpu_s: float  # served in the window, per second of the server's CPU time
    round_trips: list[float]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(clients: asyncio.subprocess.Process, start_server: Callable) -> Round:
    """One round against one server; this process runs nothing else meanwhile."""
    round_trips: list[float] = []
    port, close = await start_server(round_trips)
    clients.stdin.write(f"{port}\n".encode())
    await clients.stdout.readline()  # "measuring": the warm-up is over
    del round_trips[:]
    cpu_at_start = cpu_seconds()
    result = json.loads(await clients.stdout.readline())
    served = len(round_trips) / COMMANDS_PER_SESSION
    cpu = cpu_seconds() - cpu_at_start
    await close()
    return Round(result["sessions"] / result["seconds"], served / cpu, round_trips)


def p99_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] * 1000


def summary(name: str, rounds: list[Round]) -> str:
    return (f"{name}: {statistics.median(r.sessions_per_s for r in rounds):.0f} sessions/s, "
            f"{statistics.median(r.sessions_per_cpu_s for r in rounds):.0f} per server CPU-second, "
            f"p99 {p99_ms([t for r in rounds for t in r.round_trips]):.2f} ms (medians)")


async def compare() -> None:
    logs.configure("console", "warning")
    clients = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--clients",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    servers = {"ours": start_ours, "panoramisk": start_panoramisk}
    rounds: dict[str, list[Round]] = {name: [] for name in servers}
    for pair in range(1, PAIRS + 1):
        # Who goes first alternates, so that neither always meets a warmer (or busier) box.
        for name, start_server in list(servers.items())[::1 if pair % 2 else -1]:
            result = await measure(clients, start_server)
            rounds[name].append(result)
            print(f"pair {pair} {name}: {result.sessions_per_s:.0f} sessions/s, "
                  f"{result.sessions_per_cpu_s:.0f} per server CPU-second, "
                  f"p99 {p99_ms(result.round_trips):.2f} ms", flush=True)
    clients.stdin.close()
    await clients.wait()
    print(summary("panoramisk", rounds["panoramisk"]))
    print(summary("ours", rounds["ours"]))
    ratio = statistics.median(
        ours.sessions_per_cpu_s / theirs.sessions_per_cpu_s
        for ours, theirs in zip(rounds["ours"], rounds["panoramisk"], strict=True))
    ours_sps = statistics.median(r.sessions_per_cpu_s for r in rounds["ours"])
    ours_p99 = p99_ms([t for r in rounds["ours"] for t in r.round_trips])
    print(f"fastagi ratio_vs_panoramisk={ratio:.2f} ours_sps={ours_sps:.0f} p99_ms={ours_p99:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", action="store_true",
                        help="internal: be the simulated Asterisk channels, driven on stdin")
    options = parser.parse_args()
    uvloop.run(run_clients() if options.clients else compare())


if __name__ == "__main__":
    main()
