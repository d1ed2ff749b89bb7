"""IVR sessions per second through the real FastAGI server, and the latency of node transitions.

    .venv/bin/python bench/ivr.py

The server is cti's AgiServer with an "inbound" route that answers the call, runs the flow below
with ivr.IvrSession and cti.ivr_runner.IvrRunner (customer lookups from an in-memory dict), then
hands the call off with SET VARIABLE CTI_QUEUE, the way the dialplan will learn the queue.

The fake Asterisk channels run in a child process, as Asterisk runs beside cti on its own core:
sharing one event loop with them would bill their work to the server. Each channel speaks FastAGI
over loopback (asyncio streams): the agi_* block, then one reply per command, pressing the keys
of the script "1", "1", "12345#" (menu, sub-menu, account number). A key barges in on STREAM FILE
when the prompt's escape digits allow it, else it answers WAIT FOR DIGIT. CONCURRENCY channels
each place one call after another.

A round is steady state only: the channels start a little apart (calls arrive spread out; all
200 at once would overflow the listen backlog), run LEAD_IN_S, and only the calls that end in the
next WINDOW_S count, so neither the ramp-up nor the last calls draining bias the rate. The bench
runs ROUNDS rounds, alternating with the in-process peer's, and reports medians.

The box is shared: when other work takes one of its two cores, the server and the channels
share the other and the wall-clock rate halves. The result line therefore gives sessions per
second of the server process's CPU time: what one fully busy core sustains, the wall-clock rate
of an idle box (where the server is the bottleneck and busy all the time), steady under that
noise. Wall-clock rates are printed too, with a warning when the server got much less than a
core, as the transition latencies of such a run are inflated by the wait. Each round also counts
connects that took a SYN retransmit (>= 1 s: the server's listen backlog was full).

A node transition is timed by the channel: from its reply that completes an entry (the menu
digit, the account's "#") to the next command the server sends, i.e. the engine's decision,
the lookup when there is one, and the AGI round trip, both loops' scheduling included.

The peer line runs the same handler and IvrRunner in this process against an in-memory channel
answering from the same script: the IVR without the wire, also per CPU-second, so the ratio
is what sockets and the AGI protocol cost the server.

Every session must reach the billing queue with account 12345 attached, as the server's result
and as the hand-off the channel hears; the bench counts those that do not and reports no figure
if there is one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import uvloop

# This file is named ivr.py and Python puts its folder first on sys.path, so "import ivr" (ours,
# and cti.ivr_runner's) would import this bench instead of the IVR package.
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH_DIR]

from cti import logs  # noqa: E402 - only once sys.path is fixed
from cti.agi.protocol import AgiResult, encode_environment, parse_command_line  # noqa: E402
from cti.agi.server import AgiServer, AgiSession  # noqa: E402
from cti.ivr_runner import IvrRunner  # noqa: E402
from ivr import FlowSet, IvrResult, IvrSession, OutcomeKind, load_flows  # noqa: E402

CONCURRENCY = 200
STAGGER_S = 0.0005  # between two channels' first calls: 0.1 s to bring all 200 up
LEAD_IN_S = 0.4  # per round, not measured: the ramp-up, first connections, caches
WINDOW_S = 1.2  # per round, measured: some 7,000 calls when the box is otherwise idle
ROUNDS = 7
PEER_WARMUP_SESSIONS = 500
PEER_SESSIONS_PER_ROUND = 3000
CALL_TIMEOUT_S = 10.0  # a hung session counts as a failure instead of hanging the bench
SYN_RETRANSMIT_S = 1.0  # Linux's initial SYN timeout: a connect this slow had its SYN dropped
ROUTE = "inbound"
DNIS = "100"
ANI = "+4930123456"
SCRIPT = ("1", "1", "12345#")  # main menu, billing menu, account number
ACCOUNT = "12345"
EXPECTED_QUEUE = "billing"
CUSTOMERS = {ACCOUNT: {"name": "Ada Lovelace", "tier": "gold"}}
HAND_OFF = ["SET", "VARIABLE", "CTI_QUEUE", EXPECTED_QUEUE]  # the command ending a good call

FLOW_FILE = Path(__file__).resolve().parents[1] / "tests" / "flows" / "billing_menu.toml"

ENVIRONMENT = encode_environment({
    "agi_network": "yes",
    "agi_network_script": ROUTE,
    "agi_request": f"agi://127.0.0.1/{ROUTE}",
    "agi_channel": "PJSIP/bench-00000001",
    "agi_language": "en",
    "agi_type": "PJSIP",
    "agi_uniqueid": "1700000000.1",
    "agi_version": "20.5.0",
    "agi_callerid": ANI,
    "agi_calleridname": "Bench Caller",
    "agi_dnid": DNIS,
    "agi_context": "cti-inbound",
    "agi_extension": DNIS,
    "agi_priority": "3",
})


# -- the caller, shared by the wire channel and the in-memory one -------------------------------

class ScriptedCaller:
    """Presses the script's keys in order; counts the entries (script groups) it completed."""

    def __init__(self) -> None:
        self._keys = deque((key, position == len(entry) - 1)
                           for entry in SCRIPT for position, key in enumerate(entry))
        self.entries_completed = 0

    @property
    def done(self) -> bool:
        return not self._keys and self.entries_completed == len(SCRIPT)

    def press(self, allowed: str | None) -> str | None:
        """The next key, if ``allowed`` (a prompt's escape digits; None: any key) lets it in."""
        if not self._keys or (allowed is not None and self._keys[0][0] not in allowed):
            return None
        key, ends_entry = self._keys.popleft()
        self.entries_completed += ends_entry
        return key


def key_result(key: str | None) -> int:
    # AGI reports a pressed key as its ASCII code, and no key as 0.
    return ord(key) if key else 0


# -- the server: our FastAGI server and the IVR on it ------------------------------------------

@dataclass
class Tally:
    """Sessions the server saw end as expected, and the others."""

    good: int = 0
    bad: int = 0

    def record(self, result: IvrResult) -> None:
        expected = (result.finished and not result.partial and result.outcome is not None
                    and result.outcome.kind == OutcomeKind.TO_QUEUE
                    and result.outcome.queue == EXPECTED_QUEUE
                    and result.values.get("account") == ACCOUNT
                    and result.customer_account == ACCOUNT)
        if expected:
            self.good += 1
        else:
            self.bad += 1


async def lookup_customer(account: str) -> dict | None:
    return CUSTOMERS.get(account)


async def inbound_call(agi: AgiSession | InMemoryChannel, flows: FlowSet, tally: Tally) -> None:
    """The route's handler; the in-memory channel stands in for the AgiSession in the peer."""
    await agi.answer()
    session = IvrSession(flows, agi.dnid, agi.callerid, time.time())
    result = await IvrRunner(agi, lookup_customer).run(session)
    tally.record(result)
    # A command after the flow, so that the last transition (account -> lookup -> queue) ends
    # on the wire like the others rather than in a close.
    await agi.set_variable("CTI_QUEUE", result.outcome.queue if result.outcome else "")


def load_flow() -> FlowSet:
    return load_flows(FLOW_FILE)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.asynccontextmanager
async def fastagi_server(flows: FlowSet, tally: Tally) -> AsyncIterator[AgiServer]:
    server = AgiServer("127.0.0.1", 0, max_sessions=2 * CONCURRENCY)
    server.route(ROUTE, partial(inbound_call, flows=flows, tally=tally))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def wire_round(channels: asyncio.subprocess.Process) -> dict:
    """The child's report on one round of calls, plus the server's CPU time meanwhile."""
    cpu_at_start = cpu_seconds()
    channels.stdin.write(b"round\n")
    report = json.loads(await channels.stdout.readline())
    report["server_cpu_s"] = cpu_seconds() - cpu_at_start
    return report


# -- the fake Asterisk channels (child process) -------------------------------------------------

def reply_to(command: list[str], caller: ScriptedCaller) -> bytes:
    verb = " ".join(command[:2])
    if verb == "STREAM FILE":  # STREAM FILE "<prompt>" "<escape digits>"
        return b"200 result=%d endpos=1000\n" % key_result(caller.press(command[3]))
    if verb == "WAIT FOR":  # WAIT FOR DIGIT <timeout>
        return b"200 result=%d\n" % key_result(caller.press(None))
    return b"200 result=0\n" if command[0] == "ANSWER" else b"200 result=1\n"


@dataclass
class CallLog:
    """What the channels saw in one round; only calls ending inside ``window`` are measured."""

    window: tuple[float, float]
    calls: int = 0
    failures: int = 0
    measured: int = 0
    syn_retransmits: int = 0
    transitions: list[float] = field(default_factory=list)

    def record(self, went_as_scripted: bool, connect_s: float, transitions: list[float]) -> None:
        self.calls += 1
        self.failures += not went_as_scripted
        self.syn_retransmits += connect_s >= SYN_RETRANSMIT_S
        if self.window[0] <= time.perf_counter() <= self.window[1]:
            self.measured += 1
            self.transitions += transitions


async def place_call(port: int, log: CallLog) -> None:
    """One call, from connect to the server's close."""
    dialled_at = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connect_s = time.perf_counter() - dialled_at
    writer.write(ENVIRONMENT)
    caller, handed_off, transitions = ScriptedCaller(), False, []
    entry_answered_at = None
    try:
        while line := await reader.readline():  # b"" once the server closed: the AGI is over
            if entry_answered_at is not None:
                transitions.append(time.perf_counter() - entry_answered_at)
                entry_answered_at = None
            command = parse_command_line(line.decode())
            handed_off |= command == HAND_OFF
            entries_before = caller.entries_completed
            writer.write(reply_to(command, caller))
            if caller.entries_completed > entries_before:
                entry_answered_at = time.perf_counter()
    finally:
        writer.close()
    went_as_scripted = handed_off and caller.done and len(transitions) == len(SCRIPT)
    log.record(went_as_scripted, connect_s, transitions)


async def channel(port: int, index: int, log: CallLog) -> None:
    """One fake channel: a call after another until the window closes."""
    await asyncio.sleep(index * STAGGER_S)
    while time.perf_counter() < log.window[1]:
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                await place_call(port, log)
        except (OSError, TimeoutError):
            log.record(False, 0.0, [])


async def calls_round(port: int) -> dict:
    start = time.perf_counter()
    log = CallLog(window=(start + LEAD_IN_S, start + LEAD_IN_S + WINDOW_S))
    cpu_at_start = cpu_seconds()
    await asyncio.gather(*(channel(port, index, log) for index in range(CONCURRENCY)))
    busy = (cpu_seconds() - cpu_at_start) / (time.perf_counter() - start)
    # Percentiles, not the samples: tens of thousands of floats overflow the pipe reader's limit.
    return {"calls": log.calls, "failures": log.failures, "measured": log.measured,
            "syn_retransmits": log.syn_retransmits, "channels_cpu_share": busy,
            "p50_ms": percentile_ms(log.transitions, 50),
            "p99_ms": percentile_ms(log.transitions, 99)}


async def run_channels(port: int) -> None:
    """The child: a round of calls for each line read on stdin, then a JSON line on it."""
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        print(json.dumps(await calls_round(port)), flush=True)


def percentile_ms(samples: list[float], percent: int) -> float:
    if len(samples) < 2:  # nothing measured (every call failed): let the failure count speak
        return float("nan")
    return statistics.quantiles(samples, n=100)[percent - 1] * 1000


# -- the in-process peer: same handler and runner, no wire --------------------------------------

class InMemoryChannel:
    """The AgiSession methods the handler uses, answered at once from the script."""

    dnid = DNIS
    callerid = ANI

    def __init__(self) -> None:
        self.caller = ScriptedCaller()
        self.queue = ""

    async def answer(self) -> AgiResult:
        return AgiResult(200, "0", None, None, ())

    async def stream_file(self, name: str, escape_digits: str = "") -> AgiResult:
        return AgiResult(200, str(key_result(self.caller.press(escape_digits))), None, 1000, ())

    async def wait_for_digit(self, timeout_ms: int) -> AgiResult:
        return AgiResult(200, str(key_result(self.caller.press(None))), None, None, ())

    async def set_variable(self, name: str, value: str) -> None:
        self.queue = value


async def run_in_process(flows: FlowSet, sessions: int, tally: Tally) -> tuple[float, int]:
    """Sessions per CPU-second, and failures. One at a time: none ever waits, so concurrency
    would only reorder the same work."""
    failures = 0
    cpu_at_start = cpu_seconds()
    for _ in range(sessions):
        in_memory = InMemoryChannel()
        await inbound_call(in_memory, flows, tally)
        failures += not (in_memory.caller.done and in_memory.queue == EXPECTED_QUEUE)
    return sessions / (cpu_seconds() - cpu_at_start), failures


# -- the report ----------------------------------------------------------------------------------

@dataclass
class Round:
    sessions_per_s: float  # calls ended in the window, per wall-clock second
    sessions_per_cpu_s: float  # all the round's calls, per second of the server's CPU time
    channels_cpu_share: float  # of one core: near 1, the fake channels bound the wall clock
    syn_retransmits: int
    p50_ms: float
    p99_ms: float
    peer_sessions_per_cpu_s: float
    calls: int  # the round's calls, measured or not: what the server must have seen
    channel_failures: int
    peer_failures: int

    @property
    def wire_vs_in_process(self) -> float:
        return self.sessions_per_cpu_s / self.peer_sessions_per_cpu_s

    @property
    def server_core_share(self) -> float:
        """Near 1 on an idle box, where the server is the bottleneck; less: it had to wait."""
        return self.sessions_per_s / self.sessions_per_cpu_s


async def measure_round(channels: asyncio.subprocess.Process, flows: FlowSet,
                        peer_tally: Tally) -> Round:
    # One after the other, never together: the peer never yields, so it would stall the server.
    wire = await wire_round(channels)
    peer_sessions_per_cpu_s, peer_failures = await run_in_process(
        flows, PEER_SESSIONS_PER_ROUND, peer_tally)
    return Round(wire["measured"] / WINDOW_S, wire["calls"] / wire["server_cpu_s"],
                 wire["channels_cpu_share"], wire["syn_retransmits"], wire["p50_ms"],
                 wire["p99_ms"], peer_sessions_per_cpu_s, wire["calls"], wire["failures"],
                 peer_failures)


def describe(round_: Round) -> str:
    return (f"{round_.sessions_per_s:.0f} sessions/s wall clock, "
            f"{round_.sessions_per_cpu_s:.0f} per server CPU-second, channels "
            f"{round_.channels_cpu_share:.0%} of a core, {round_.syn_retransmits} SYN retransmits, "
            f"node transitions p50 {round_.p50_ms:.2f} ms p99 {round_.p99_ms:.2f} ms; "
            f"in-process {round_.peer_sessions_per_cpu_s:.0f} per CPU-second")


def median_of(rounds: list[Round], name: str) -> float:
    return statistics.median(getattr(round_, name) for round_ in rounds)


async def bench() -> None:
    logs.configure("console", "warning")  # as in production: the happy path logs nothing
    flows = load_flow()
    wire_tally, peer_tally = Tally(), Tally()
    _, peer_warmup_failures = await run_in_process(flows, PEER_WARMUP_SESSIONS, peer_tally)
    async with fastagi_server(flows, wire_tally) as server:
        channels = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--channels", str(server.port),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        rounds = []
        for number in range(1, ROUNDS + 1):
            rounds.append(await measure_round(channels, flows, peer_tally))
            print(f"round {number}: {describe(rounds[-1])}", flush=True)
        channels.stdin.close()
        await channels.wait()
    per_cpu_s, p99_ms = median_of(rounds, "sessions_per_cpu_s"), median_of(rounds, "p99_ms")
    print(f"fastagi, medians of {ROUNDS} rounds of {WINDOW_S} s over {CONCURRENCY} channels: "
          f"{per_cpu_s:.0f} sessions per server CPU-second "
          f"({median_of(rounds, 'sessions_per_s'):.0f}/s wall clock); node transitions "
          f"p50 {median_of(rounds, 'p50_ms'):.2f} ms, p99 {p99_ms:.2f} ms")
    print(f"in-process peer (same handler and IvrRunner, no sockets): "
          f"{median_of(rounds, 'peer_sessions_per_cpu_s'):.0f} sessions per CPU-second; "
          f"fastagi/in-process = {median_of(rounds, 'wire_vs_in_process'):.3f}")
    if (core_share := median_of(rounds, "server_core_share")) < 0.8:
        print(f"warning: the server got {core_share:.0%} of a core (other work on the box): the "
              f"wall-clock rate and the transition latencies are inflated by the wait")
    check_every_session(rounds, wire_tally, peer_tally,
                        server.stats.handler_errors, peer_warmup_failures)
    print(f"ivr sessions_per_s={per_cpu_s:.0f} p99_ms={p99_ms:.2f}")


def check_every_session(rounds: list[Round], wire_tally: Tally, peer_tally: Tally,
                        handler_errors: int, peer_warmup_failures: int) -> None:
    """A figure measured on failing sessions is worthless: no result line unless all went right."""
    wire_total = sum(r.calls for r in rounds)
    peer_total = PEER_WARMUP_SESSIONS + ROUNDS * PEER_SESSIONS_PER_ROUND
    problems = {
        "channels that missed the billing hand-off": sum(r.channel_failures for r in rounds),
        "server sessions not ending in billing with the account": wire_tally.bad,
        "server sessions missing": wire_total - wire_tally.good - wire_tally.bad,
        "handler errors": handler_errors,
        "in-process sessions not ending in billing with the account": peer_tally.bad,
        "in-process channels that missed the hand-off": (peer_warmup_failures
                                                         + sum(r.peer_failures for r in rounds)),
        "in-process sessions missing": peer_total - peer_tally.good - peer_tally.bad,
    }
    print(f"checked: {wire_tally.good}/{wire_total} fastagi and {peer_tally.good}/{peer_total} "
          f"in-process sessions reached {EXPECTED_QUEUE} with account {ACCOUNT}; failures: "
          + ", ".join(f"{name} {count}" for name, count in problems.items()))
    if any(problems.values()):
        sys.exit("ivr bench: some sessions failed, no figure reported")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, metavar="PORT",
                        help="internal: be the fake Asterisk channels calling PORT")
    options = parser.parse_args()
    uvloop.run(run_channels(options.channels) if options.channels else bench())


if __name__ == "__main__":
    main()
