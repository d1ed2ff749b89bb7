"""Agent idle gap: from an agent becoming ready to the waiting call ringing them, our ACD against
Asterisk's app_queue, on the lab, in the same run.

    .venv/bin/python bench/agent_idle_gap.py [--rounds 15]

Asterisk's app_queue polls: while no member is available, a waiting caller's thread loops in
``wait_our_turn()`` (apps/app_queue.c), which re-runs ``is_our_turn()`` once a second:

    #define RECHECK 1 /*!< Recheck every second to see we we're at the top yet */
    ...
    /* Wait a second before checking again */
    if ((res = ast_waitfordigit(qe->chan, RECHECK * 1000))) {

and unpausing a member (``set_queue_member_pause()``, behind AMI QueuePause) only sets
``mem->paused``, raises device-state and AMI events and writes the queue log: it wakes no waiting
caller. So a freed agent sits idle until that caller's next poll, on average half a second. The
lab's Asterisk 22 shows it in the per-round figures: app_queue's gap is the rest of the second the
caller had been waiting when the agent became ready. Our ACD decides on the AgentReady event
itself, and the caller's FastAGI session dials at once.

Both sides get the same lab, the same sipp caller (answered, held with music on hold) and the same
agent: one sipp phone that rings and never answers, dialled as ``PJSIP/trunk/sip:agent1@...``,
its busy state read from ``Custom:agent1`` (NOT_INUSE), neither ringing a busy agent. Each round:

- ours: agent1 is logged in and not ready in our ACD; a caller dials 100 and waits in our queue.
  t0 just before ``acd.submit(AgentReady)``.
- app_queue: agent1 is a member of queue ``bench`` (config/lab/queues.conf), paused; a caller
  dials 7000 and waits in ``Queue(bench)``. t0 just before sending AMI ``QueuePause Paused=false``.
- t1 on both: our AMI client hands over the ``DialBegin`` whose DialString is agent1's phone.
  app_dial and app_queue both publish it right after ``ast_call()`` on the agent's leg.
- Then the agent is made unavailable again (AgentNotReady / QueuePause) and the caller hung up
  over the AMI; the round ends when Asterisk has no channel left.

The agent becomes ready 1-2 s after the caller started waiting, the same delay for both sides of
a pair. app_queue's gap depends on where that moment falls in its one-second cycle, so one fixed
delay would measure one chosen phase, and random ones leave the p50 to the luck of the draw
(about +-125 ms over 15 rounds). The delays are therefore spread evenly over the second: one in
each 1/rounds slice, in a seeded random order, as agents freed at random moments would be. Rounds
alternate ours and app_queue, and who goes first alternates per pair, so the drift of the shared
2-core box hits both; one unrecorded warm-up round each comes first.

Noise: our gap is a few milliseconds of CPU work (the engine, two AGI round trips, Asterisk's
Dial, the AMI event back), so a busy box inflates it by scheduling delays, and the ratio, app_queue
p50 over ours, moves with it. app_queue's gap is the poll phase plus that same ring path. Our t0
is in-process; a desktop's ready would first cross HTTP, app_queue's t0 includes its AMI action.
Asterisk runs in the lab's chroot, so the bench needs root.
Last line: ``agent_idle_gap ours_p50_ms=<x> app_queue_p50_ms=<y> ratio=<y/x>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

# Python puts this folder first on sys.path, where bench/ivr.py would shadow the ivr package.
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH_DIR]

from acd import AgentLogin, AgentNotReady, AgentReady, AgentState  # noqa: E402 - only once sys.path is fixed
from acd.config import AcdDefinitions, AgentDefinition  # noqa: E402
from acd.model import QueueSettings  # noqa: E402
from cti import config as config_module  # noqa: E402
from cti import logs  # noqa: E402
from cti.acd_runtime import AcdRuntime  # noqa: E402
from cti.agi.server import AgiServer  # noqa: E402
from cti.ami.message import Message  # noqa: E402
from cti.callmodel.bus import EventBus  # noqa: E402
from cti.callmodel.model import CallModel  # noqa: E402
from cti.lab import Lab  # noqa: E402
from cti.lab.phones import Phone, PhonePlan  # noqa: E402
from cti.lab.sipp import CallPlan, start_call  # noqa: E402
from cti.link import AmiLink  # noqa: E402
from cti.queued_call import QueueingSettings  # noqa: E402
from cti.sessions import InboundSessions  # noqa: E402
from ivr import load_flows  # noqa: E402

REPO = BENCH_DIR.parent
# Every call to its DNIS goes straight into the queue "support", no menu.
FLOW = REPO / "tests/flows/to_support_queue.toml"
OURS_DNIS, APP_QUEUE_EXTEN, APP_QUEUE = "100", "7000", "bench"
AGENT = "agent1"
SUPPORT = QueueSettings("support", "support>=50", ring_timeout=15, wrap_up_seconds=0)
READY_AFTER_S = (1.0, 2.0)
WAIT_S = 30.0


class Arrivals:
    """The AMI events the bench waits for, each with the moment our client handed it over."""

    NAMES = frozenset({"dialbegin", "queuecallerjoin", "hangup"})

    def __init__(self, link: AmiLink) -> None:
        self.seen: list[tuple[float, Message]] = []
        self._changed = asyncio.Event()
        link.client.on_event(self._record)

    def _record(self, _server: str, message: Message) -> None:
        if (message.event or "").lower() in self.NAMES:
            self.seen.append((time.perf_counter(), message))
            self._changed.set()

    def clear(self) -> None:
        self.seen.clear()

    async def first(self, predicate: Callable[[Message], bool]) -> tuple[float, Message]:
        async with asyncio.timeout(WAIT_S):
            while True:
                match = next(((when, m) for when, m in self.seen if predicate(m)), None)
                if match:
                    return match
                self._changed.clear()
                await self._changed.wait()


@dataclasses.dataclass
class Bench:
    link: AmiLink
    runtime: AcdRuntime
    phone: Phone
    arrivals: Arrivals
    sip_port: int
    callers: list[subprocess.Popen] = dataclasses.field(default_factory=list)

    @property
    def interface(self) -> str:
        return self.phone.dial_string(AGENT)

    def rings_agent(self, message: Message) -> bool:
        return message.event == "DialBegin" and self.phone.uri(AGENT) in (message.get("DialString") or "")

    def call(self, dialled: str) -> subprocess.Popen:
        # Stays on the line until the bench hangs it up.
        self.callers.append(start_call(CallPlan("5550100", "Bench Caller", dialled, hold_ms=60_000), self.sip_port))
        return self.callers[-1]

    def stop_callers(self) -> None:
        """After a failed round, its caller may still be on the line."""
        for caller in self.callers:
            if caller.poll() is None:
                caller.kill()
            caller.wait()

    async def action(self, name: str, **headers: str):
        return await self.link.client.action(name, headers)

    async def ring_after_ready(self, make_ready: Callable[[], Awaitable[object]]) -> tuple[float, Message]:
        """The gap from make_ready() to the agent's DialBegin, and that DialBegin."""
        self.arrivals.clear()
        started = time.perf_counter()
        await make_ready()
        rung_at, dial = await self.arrivals.first(self.rings_agent)
        return rung_at - started, dial

    async def end_call(self, dial: Message, caller: subprocess.Popen) -> None:
        """Hang up the caller and wait until sipp and every Asterisk channel are gone."""
        await self.action("Hangup", Channel=dial["Channel"])
        await asyncio.wait_for(asyncio.to_thread(caller.wait), WAIT_S)
        async with asyncio.timeout(WAIT_S):
            while (await self.action("CoreShowChannels")).events:
                await asyncio.sleep(0.05)


async def until(condition: Callable[[], object]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.01)


async def ours(bench: Bench, ready_after: float) -> float:
    acd = bench.runtime.acd
    assert acd.engine.agent_snapshot(AGENT, acd.now()).state is AgentState.NOT_READY
    caller = bench.call(OURS_DNIS)
    await until(lambda: acd.engine.waiting_calls(SUPPORT.name))
    await asyncio.sleep(ready_after)

    async def ready() -> None:
        acd.submit(AgentReady(AGENT))

    gap, dial = await bench.ring_after_ready(ready)
    # Not ready again first: the ACD stops the ring itself (CancelOffer hangs up the agent's leg).
    acd.submit(AgentNotReady(AGENT, "bench"))
    await bench.arrivals.first(lambda m: m.event == "Hangup" and m.get("Channel") == dial["DestChannel"])
    await bench.end_call(dial, caller)
    return gap


async def app_queue(bench: Bench, ready_after: float) -> float:
    bench.arrivals.clear()
    caller = bench.call(APP_QUEUE_EXTEN)
    await bench.arrivals.first(lambda m: m.event == "QueueCallerJoin" and m.get("Queue") == APP_QUEUE)
    await asyncio.sleep(ready_after)

    async def unpause() -> None:
        await bench.action("QueuePause", Queue=APP_QUEUE, Interface=bench.interface, Paused="false")

    gap, dial = await bench.ring_after_ready(unpause)
    await bench.action("QueuePause", Queue=APP_QUEUE, Interface=bench.interface, Paused="true")
    await bench.end_call(dial, caller)
    return gap


SIDES = {"ours": ours, "app_queue": app_queue}


@contextlib.asynccontextmanager
async def call_center(config: config_module.Config):
    """Our ACD assembled in-process as in the daemon, and app_queue's member, both on one phone."""
    async with contextlib.AsyncExitStack() as stack:
        # The [bench] AMI user: the daemon's rights plus "agent" for QueueAdd/QueuePause.
        server = dataclasses.replace(config.ami_servers()["lab"], username="bench")
        model, bus = CallModel(), EventBus()
        stack.push_async_callback(bus.aclose)
        link = AmiLink("lab", server, model, bus)
        arrivals = Arrivals(link)
        link.start()
        stack.push_async_callback(link.close)
        await until(lambda: link.resyncs >= 1)
        phone = stack.enter_context(Phone(PhonePlan(answer_after_ms=None)))
        agent = AgentDefinition(AGENT, AGENT, phone.dial_string(AGENT), f"Custom:{AGENT}", {"support": 80})
        runtime = AcdRuntime(AcdDefinitions((SUPPORT,), (agent,)), model, bus, {"lab": link}, QueueingSettings())
        stack.push_async_callback(runtime.close)
        agi = AgiServer("127.0.0.1", config.agi.port)
        agi.route("inbound", InboundSessions(model, bus, load_flows(FLOW), None, runtime.queueing(None)).handle)
        await agi.start()
        stack.push_async_callback(agi.close)
        bench = Bench(link, runtime, phone, arrivals, config.lab.sip_port)
        stack.callback(bench.stop_callers)
        runtime.acd.submit(AgentLogin(AGENT))
        # An idle phone's state. Left UNKNOWN, app_queue (ringinuse=no) would keep the member in its
        # pending_members after the first cancelled ring and never ring it again.
        await bench.action("Setvar", Variable=f"DEVICE_STATE(Custom:{AGENT})", Value="NOT_INUSE")
        await bench.action("QueueAdd", Queue=APP_QUEUE, Interface=bench.interface, MemberName=AGENT,
                           StateInterface=f"Custom:{AGENT}", Paused="true")
        yield bench


def ready_delays(rounds: int, draws: random.Random) -> list[float]:
    """One delay per round, one in each 1/rounds slice of READY_AFTER_S, in random order."""
    low, high = READY_AFTER_S
    delays = [low + (high - low) * (slot + draws.random()) / rounds for slot in range(rounds)]
    draws.shuffle(delays)
    return delays


async def compare(config: config_module.Config, rounds: int, seed: int) -> None:
    draws = random.Random(seed)
    gaps: dict[str, list[float]] = {name: [] for name in SIDES}
    async with call_center(config) as bench:
        for side in SIDES.values():
            await side(bench, draws.uniform(*READY_AFTER_S))  # warm-up, not recorded
        for number, ready_after in enumerate(ready_delays(rounds, draws), 1):
            for name in list(SIDES)[:: 1 if number % 2 else -1]:
                gap = await SIDES[name](bench, ready_after)
                gaps[name].append(gap * 1000)
                print(f"round {number} {name}: {gap * 1000:.1f} ms (ready {ready_after:.2f} s after the caller "
                      "started waiting)", flush=True)
    report(gaps)


def p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[8]


def report(gaps: dict[str, list[float]]) -> None:
    for name, samples in gaps.items():
        print(f"{name}: p50 {statistics.median(samples):.1f} ms, p90 {p90(samples):.1f} ms, "
              f"min {min(samples):.1f} ms, max {max(samples):.1f} ms ({len(samples)} rounds)")
    ours_p50, theirs_p50 = statistics.median(gaps["ours"]), statistics.median(gaps["app_queue"])
    print(f"agent_idle_gap ours_p50_ms={ours_p50:.1f} app_queue_p50_ms={theirs_p50:.1f} "
          f"ratio={theirs_p50 / ours_p50:.1f}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lab_config(base: Path) -> config_module.Config:
    """A lab of the bench's own, as the e2e tests make theirs: its own root, free ports."""
    return config_module.load(None, {
        "CTI_DATA_DIR": str(base), "CTI_LAB__ENABLED": "true",
        "CTI_LAB__SIP_PORT": str(free_port()), "CTI_LAB__AMI_PORT": str(free_port()),
        "CTI_AGI__PORT": str(free_port()), "CTI_HTTP__PORT": str(free_port()),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="measured rounds per side (at least 2)")
    parser.add_argument("--seed", type=int, default=4, help="seed of the order of the ready delays")
    options = parser.parse_args()
    if options.rounds < 2:
        parser.error("--rounds: at least 2, for a p90")
    logs.configure("console", "warning")
    base = Path(tempfile.mkdtemp(prefix="cti-bench-lab-"))
    base.chmod(0o755)
    config = lab_config(base)
    lab = Lab.from_config(config)
    try:
        lab.start()
        uvloop.run(compare(config, options.rounds, options.seed))
    finally:
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
