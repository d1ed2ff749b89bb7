"""Wallboard latency: from an ACD event to the frame that shows it, at 50 supervisor clients.

    .venv/bin/python bench/wallboard.py [--seconds 10] [--supervisors 50] [--agents 1000] [--rate 50]

The daemon's pieces, for real: an AcdService (the engine on the monotonic clock) with 1,000
agents over 10 queues, the aiohttp app with the supervisors' WebSocket, on uvloop, on loopback.
Fifty WebSocket clients run in a child process (its own core on a 2-core box). After every
client has its snapshot, 50 ACD events per second are submitted for ``--seconds``: calls arrive
(each is offered at once to a free agent), rings are answered, talks end, agents go not ready
and ready again. Every event changes an agent's state, so every event has a stamp: the agent's
``since`` in the frames (epoch seconds of the engine's time of the event). An observing client
records, for each agent whose ``since`` changed in a frame, when it received that frame; the
latency is from when the event was due (on its fixed 20 ms schedule) to then, so an event
that the server's busy event loop submitted late counts its lateness too (no coordinated
omission: calls and AMI events would wait for the loop the same way). Every client reads every
frame; one in ten parses them and observes (clients 10, 20, ... 50 in connection order, the
last one served included), so that the child process, which plays fifty browsers on one core,
does not become a bottleneck it would not be in real life. p50/p99 are over the observers'
samples; frames_per_s is the frames one client received per second.

The peer, in the same run on a fresh service and fresh clients: the naive design, a full
snapshot built and serialised for each event and each client (the same views, the same socket
code, no coalescing, no throttling). It may fall behind, so it is given time to send what it
owes after the events stop. Neither side uses permessage-deflate (browsers do; it costs the
naive design more). Last line: ``wallboard p99_ms=<x> frames_per_s=<y>``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import random
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import uvloop
from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from acd import (AgentLogin, AgentNotReady, AgentReady, CallArrived, CallCompleted, Offer,  # noqa: E402
                 OfferAccepted, QueueSettings)
from acd.config import AcdDefinitions, AgentDefinition  # noqa: E402
from cti import logs  # noqa: E402
from cti.acd_service import AcdService  # noqa: E402
from cti.http import ws  # noqa: E402
from cti.http.auth import FirstMatch, StaticTokens, authorize  # noqa: E402
from cti.http.crm_api import CrmStore  # noqa: E402
from cti.http.server import build_app  # noqa: E402
from cti.metrics import Metrics  # noqa: E402
from cti.supervision import Supervision, Wallboard  # noqa: E402
from crm_bridge.principals import Principal  # noqa: E402
from figures import percentile, served_with_clients  # noqa: E402 - bench/ is the script's folder

QUEUES = 10
TOKEN = "bench-supervisor-token"
SEED = 20240801
DRAIN_LIMIT_S = 120.0  # how long the naive peer may take to send what it owes after the events stop
OBSERVE_EVERY = 10  # one client in ten parses frames and measures
SINCE_ROUNDING_S = 0.0005  # frames carry times rounded to the millisecond
OWN_EVENT_S = 0.05  # a change this soon after a submission is that event's (later: a timer's, not late)
NOT_READY_SHARE = 0.1


def definitions(agents: int) -> AcdDefinitions:
    """Each agent serves one queue well and another one a little (two skills)."""
    queues = tuple(QueueSettings(f"q{n}", f"s{n}>=50") for n in range(QUEUES))
    staff = tuple(AgentDefinition(f"{8000 + n}", f"Agent {n}", f"PJSIP/{8000 + n}",
                                  skills={f"s{n % QUEUES}": 80, f"s{(n + 3) % QUEUES}": 55})
                  for n in range(agents))
    return AcdDefinitions(queues, staff)


# --- the traffic ---------------------------------------------------------------------------------


class Traffic:
    """ACD events in a steady mix; each one changes some agent's state."""

    def __init__(self, acd: AcdService, agent_ids: list[str]) -> None:
        self.acd = acd
        self.rng = random.Random(SEED)
        self.agent_ids = agent_ids
        self.offered: dict[str, str] = {}  # call_id -> agent ringing
        self.talking: list[str] = []
        self.not_ready: list[str] = []
        self.calls = 0
        self.submitted = 0
        self.lags: list[tuple[float, float]] = []
        acd.listen(self._on_decision)

    def _on_decision(self, decision) -> None:
        if isinstance(decision, Offer):
            self.offered[decision.call_id] = decision.agent_id

    def start(self) -> None:
        for agent_id in self.agent_ids:
            self.acd.submit(AgentLogin(agent_id))
            if self.rng.random() < NOT_READY_SHARE:
                self.not_ready.append(agent_id)
            else:
                self.acd.submit(AgentReady(agent_id))

    def next_event(self):
        roll = self.rng.random()
        if roll < 0.25 and self.offered:
            call_id, agent_id = next(iter(self.offered.items()))
            del self.offered[call_id]
            self.talking.append(call_id)
            return OfferAccepted(call_id, agent_id)
        if roll < 0.5 and len(self.talking) > 20:
            return CallCompleted(self.talking.pop(0))
        if roll < 0.65 and self.not_ready:
            return AgentReady(self.not_ready.pop(0))
        if roll < 0.8:
            agent_id = self.rng.choice(self.agent_ids)
            if self.acd.engine.agent_state(agent_id) == "available":
                self.not_ready.append(agent_id)
                return AgentNotReady(agent_id, "break")
        self.calls += 1
        return CallArrived(f"call-{self.calls}", f"q{self.rng.randrange(QUEUES)}")

    async def run(self, rate: float, seconds: float) -> float:
        """Submit ``rate`` events per second for ``seconds``; returns the rate achieved. Each event
        is due at a fixed time; ``lags`` keeps (epoch of submission, seconds after it was due)."""
        loop = asyncio.get_running_loop()
        start = due = loop.time()
        while due < start + seconds:
            await asyncio.sleep(max(0.0, due - loop.time()))
            self.lags.append((time.time(), loop.time() - due))  # before: the event's since follows
            self.acd.submit(self.next_event())
            self.submitted += 1
            due += 1 / rate
        return self.submitted / (loop.time() - start)


# --- the peer: a full snapshot per event per client ----------------------------------------------


class NaiveFanout:
    """What a first version would do: every event, every client, the whole board, serialised."""

    def __init__(self, wallboard: Wallboard) -> None:
        self.wallboard = wallboard
        self.sockets: list[web.WebSocketResponse] = []
        self.owed = 0  # events whose snapshot is not sent yet
        self._wake = asyncio.Event()
        wallboard.acd.watch(self._on_event)
        self._task = asyncio.create_task(self._run())

    def _on_event(self, _event) -> None:
        self.owed += 1
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.owed:
                self.owed -= 1
                body = self.wallboard.snapshot()
                for socket in list(self.sockets):
                    await ws.send(socket, "snapshot", **body)  # serialised per client: ws.send encodes

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        await authorize(request, "supervisor")
        socket = await ws.open_socket(request)
        await ws.send(socket, "snapshot", **self.wallboard.snapshot())
        self.sockets.append(socket)
        async for _ in ws.commands(socket):
            pass
        self.sockets.remove(socket)
        return socket

    async def close(self, _app: web.Application) -> None:
        """On the server's shutdown: its own task stops before the server waits for handlers."""
        self._task.cancel()


# --- the server side of one phase ----------------------------------------------------------------


async def serve_phase(name: str, args: argparse.Namespace, naive: bool) -> dict:
    acd = AcdService(definitions(args.agents))
    supervision = Supervision.build(acd, store=None)
    authenticator = FirstMatch(StaticTokens({TOKEN: Principal("bench", "supervisor")}))
    app = build_app(Metrics(), {}, authenticator, CrmStore(None, None), supervision=supervision)
    peer = None
    path = "/api/supervisor/ws"
    if naive:
        peer = NaiveFanout(supervision.wallboard)
        path = "/bench/naive/ws"
        app.router.add_get(path, peer.handler)
        app.on_shutdown.append(peer.close)
    traffic = Traffic(acd, [agent.agent_id for agent in acd.definitions.agents])
    traffic.start()
    try:
        async with served_with_clients(app, __file__, f"{path}?token={TOKEN}",
                                       "--supervisors", str(args.supervisors)) as clients:
            if (await clients.stdout.readline()).strip() != b"ready":
                sys.exit(f"wallboard: the {name} clients did not connect")
            go = time.time()
            achieved = await traffic.run(args.rate, args.seconds)
            stop = time.time()
            owed_at_stop = peer.owed if peer is not None else 0
            drained_in = await _drain(peer, stop)
            await asyncio.sleep(1.0)  # the last frames reach the clients (ours: within one interval)
            clients.stdin.write(f"{go} {stop}\n".encode())
            await clients.stdin.drain()
            result = orjson.loads(await clients.stdout.read())  # its last line: one long JSON object
            await clients.wait()
    finally:
        acd.close()
    latencies = [latency_ms(since, received, traffic.lags) for since, received in result.pop("samples")]
    return result | {"latencies_ms": latencies, "events": traffic.submitted, "events_per_s": achieved,
                     "lag_p99_ms": percentile([lag * 1000 for _, lag in traffic.lags], 0.99),
                     "owed": owed_at_stop, "drained_in": drained_in, "unsent": peer.owed if peer is not None else 0}


def latency_ms(since: float, received: float, lags: list[tuple[float, float]]) -> float:
    """From when the event was due to when a client received the frame showing it. An event the
    server submitted late (its event loop busy) counts its lateness too: real events (calls,
    AMI) would have waited for the loop just the same."""
    index = bisect.bisect_right(lags, (since + SINCE_ROUNDING_S,)) - 1
    lag = lags[index][1] if index >= 0 and since - lags[index][0] <= OWN_EVENT_S else 0.0
    return (received - since + lag) * 1000


async def _drain(peer: NaiveFanout | None, stop: float) -> float:
    """Let the naive peer send what it owes, up to DRAIN_LIMIT_S; returns the seconds it took."""
    while peer is not None and peer.owed and time.time() - stop < DRAIN_LIMIT_S:
        await asyncio.sleep(0.1)
    return time.time() - stop


# --- the clients (child process) -----------------------------------------------------------------


class Recorder:
    """One supervisor: the agents' ``since`` it knows, and a sample per change a frame shows."""

    def __init__(self, observes: bool) -> None:
        self.observes = observes
        self.known: dict[str, float] = {}
        self.samples: list[tuple[float, float]] = []  # (since, received)
        self.frames: list[tuple[float, int]] = []  # (received, bytes)
        self.snapshot = asyncio.Event()

    def frame(self, text: str, received: float) -> None:
        self.frames.append((received, len(text)))
        if not self.observes:
            self.snapshot.set()
            return
        body = orjson.loads(text)
        first = not self.snapshot.is_set()
        for agent in body.get("agents", ()):
            since, agent_id = agent["since"], agent["agent_id"]
            if not first and since != self.known.get(agent_id):
                self.samples.append((since, received))
            self.known[agent_id] = since
        self.snapshot.set()


async def _read(socket: aiohttp.ClientWebSocketResponse, recorder: Recorder) -> None:
    async for message in socket:
        if message.type == aiohttp.WSMsgType.TEXT:
            recorder.frame(message.data, time.time())


async def run_clients(url: str, count: int) -> None:
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(url, max_msg_size=0, heartbeat=None) for _ in range(count)]
        recorders = [Recorder(observes=number % OBSERVE_EVERY == 0) for number in range(1, count + 1)]
        readers = [asyncio.create_task(_read(socket, recorder)) for socket, recorder in zip(sockets, recorders)]
        await asyncio.gather(*(recorder.snapshot.wait() for recorder in recorders))
        print("ready", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        go, stop = map(float, line.split())
        for socket in sockets:
            await socket.close()
        for reader in readers:
            reader.cancel()
    samples = [(since, received) for recorder in recorders for since, received in recorder.samples
               if go <= since <= stop]
    in_window = [(received, size) for recorder in recorders for received, size in recorder.frames
                 if go <= received <= stop]
    print(orjson.dumps({"samples": samples, "frames": len(in_window),
                        "bytes": sum(size for _, size in in_window), "window": stop - go, "clients": count,
                        "observers": sum(recorder.observes for recorder in recorders)}).decode(), flush=True)


# --- report --------------------------------------------------------------------------------------


def figures(result: dict) -> tuple[float, float, float]:
    """p50 and p99 (ms) and frames per second per client."""
    latencies = result["latencies_ms"]
    per_client = result["frames"] / result["clients"] / result["window"]
    return percentile(latencies, 0.5), percentile(latencies, 0.99), per_client


def describe(name: str, result: dict, p50: float, p99: float, frames_per_s: float) -> str:
    kib_per_s = result["bytes"] / result["clients"] / result["window"] / 1024
    backlog = ""
    if result["owed"]:
        backlog = (f"; snapshots still owed when the events stopped: {result['owed']}, sent in "
                   f"{result['drained_in']:.1f} s")
    if result["unsent"]:
        backlog += f", {result['unsent']} never sent (figures are lower bounds)"
    return (f"{name}: {result['events']} events ({result['events_per_s']:.1f}/s), {len(result['latencies_ms'])} "
            f"samples at {result['observers']} observers, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"submission lag p99 {result['lag_p99_ms']:.1f} ms, "
            f"max {max(result['latencies_ms'], default=0):.1f} ms, {frames_per_s:.1f} frames/s and "
            f"{kib_per_s:.0f} KiB/s per client{backlog}")


async def main(args: argparse.Namespace) -> None:
    print(f"wallboard: {args.agents} agents, {QUEUES} queues, {args.supervisors} supervisors, {args.rate:g} events/s "
          f"for {args.seconds:g} s (uvloop, loopback, no permessage-deflate)")
    ours = await serve_phase("ours", args, naive=False)
    ours_p50, ours_p99, ours_fps = figures(ours)
    print(describe("ours (changes since the last frame, at most one frame per 250 ms)", ours, ours_p50, ours_p99,
                   ours_fps))
    peer = await serve_phase("naive", args, naive=True)
    peer_p50, peer_p99, peer_fps = figures(peer)
    print(describe("peer (naive: full snapshot serialised per event per client)", peer, peer_p50, peer_p99, peer_fps))
    print(f"peer comparison (naive / ours): p50 {peer_p50:.1f} / {ours_p50:.1f} ms = {peer_p50 / ours_p50:.2f}x, "
          f"p99 {peer_p99:.1f} / {ours_p99:.1f} ms = {peer_p99 / ours_p99:.1f}x; events/s the event loop kept up "
          f"{peer['events_per_s']:.1f} / {ours['events_per_s']:.1f} of {args.rate:g}; "
          f"frames/s per client {peer_fps:.1f} / {ours_fps:.1f}")
    print(f"wallboard p99_ms={ours_p99:.1f} frames_per_s={ours_fps:.1f}")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--supervisors", type=int, default=50)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="ACD events per second")
    parser.add_argument("--client-of", help=argparse.SUPPRESS)  # the child process: clients of this URL
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_arguments()
    logs.configure("console", "warning")
    if arguments.client_of:
        uvloop.run(run_clients(arguments.client_of, arguments.supervisors))
    else:
        uvloop.run(main(arguments))
