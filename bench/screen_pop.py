"""Screen-pop latency: from the ACD's Offer decision to the offer frame received by the agent's desktop,
with 1,000 desktops connected and 20 offers per second.

    .venv/bin/python bench/screen_pop.py [--seconds 30] [--clients 1000] [--rate 20]

The daemon's pieces, for real: an AcdService with 1,000 agents in one queue, the agent desks
(cti.desktop: sessions, the real PopBuilder, per-desk outboxes) and the aiohttp app with the
desktops' WebSocket, on uvloop, on loopback. The pop's lookups (customer by id and by phone,
the last 5 interactions, the DNIS label) answer from memory: what is measured is the desks,
not PostgreSQL (the CRM store's own lookup is bench/crm_lookup.py). Every agent logs in and
goes ready; their 1,000 WebSocket clients run in a child process (its own core on a 2-core
box). Then calls arrive at ``--rate`` per second; each is offered at once to an idle agent
(rings last an hour: an agent is offered one call). The stamp is the call's ``offered_at`` in
the offer frame: the wall-clock time the desks took the Offer decision. A client records
receive time - offered_at for each offer addressed to its agent.

The peer, in the same run on fresh desks and fresh clients: the naive broadcast (aiohttp's
documented pattern: ``for ws in app["websockets"]: await ws.send_str(...)``): every frame goes
to every connected desktop, serialised per socket, and each desktop keeps what is addressed to
its agent. Offers the peer had not delivered when its drain limit ran out count at that limit,
so its figures are lower bounds. Last line: ``screen_pop p50_ms=<x> p99_ms=<y> clients=<n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import uvloop

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from acd import CallArrived, Offer, QueueSettings  # noqa: E402
from acd.config import AcdDefinitions, AgentDefinition  # noqa: E402
from cti import logs  # noqa: E402
from cti.acd_service import AcdService  # noqa: E402
from cti.callmodel.model import CallModel  # noqa: E402
from cti.desktop.pop import PopBuilder  # noqa: E402
from cti.desktop.service import AgentDesks  # noqa: E402
from cti.desktop.sessions import AgentSessions  # noqa: E402
from cti.http.auth import FirstMatch  # noqa: E402
from cti.http.crm_api import CrmStore  # noqa: E402
from cti.http.server import build_app  # noqa: E402
from cti.metrics import Metrics  # noqa: E402
from crm_bridge.interactions import Page  # noqa: E402
from crm_bridge.phone import PhoneNormalizer  # noqa: E402
from figures import percentile, served_with_clients  # noqa: E402 - bench/ is the script's folder

QUEUE = QueueSettings("support", "support>=10", ring_timeout=3600)
PASSWORD = "bench"
DRAIN_LIMIT_S = 30.0
PHONES = PhoneNormalizer("US")


# --- the CRM, from memory ------------------------------------------------------------------------


class MemoryCrm:
    """Customers with a phone each, five past calls each, one DNIS label."""

    phones = PHONES

    def __init__(self, count: int) -> None:
        self.customers = {n: {"id": n, "name": f"Customer {n}", "tier": "gold", "value_score": n % 100,
                              "vip": n % 7 == 0, "churn_risk": n % 11 == 0, "notes": "",
                              "phones": [self.number(n)], "account_numbers": [f"A-{n}"]}
                          for n in range(1, count + 1)}
        self.by_phone = {customer["phones"][0]: customer for customer in self.customers.values()}

    @staticmethod
    def number(n: int) -> str:
        return f"+1212555{n:04d}"

    async def get(self, customer_id: int):
        return self.customers.get(customer_id)

    async def find_by_phone(self, raw_number: str):
        found = self.by_phone.get(PHONES.e164(raw_number) or "")
        return [found] if found else []

    async def page(self, query) -> Page:
        rows = [{"id": n, "linkedid": f"1700000000.{n}", "started_at": "2024-05-01T08:00:00Z", "direction": "in",
                 "queue": "support", "outcome": "completed", "agents": ["a1"], "talk_seconds": 120.0,
                 "disposition_code": "resolved", "disposition_notes": "asked about an invoice"}
                for n in range(query.limit)]
        return Page(rows, None)

    async def service_for(self, dialled: str):
        return "Support hotline"


class MemorySessionStore:
    def __init__(self) -> None:
        self.tokens: dict[bytes, str] = {}

    async def replace(self, agent_id: str, token_sha256: bytes) -> bool:
        self.tokens[token_sha256] = agent_id
        return False

    async def agent_for(self, token_sha256: bytes) -> str | None:
        return self.tokens.get(token_sha256)

    async def remove(self, agent_id: str) -> None:
        pass

    async def save_desk(self, agent_id: str, desk: dict) -> None:
        pass

    async def desk(self, agent_id: str) -> dict:
        return {}


# --- the server side of one phase ----------------------------------------------------------------


def agent_ids(count: int) -> list[str]:
    return [f"{8000 + n}" for n in range(count)]


async def serve_phase(name: str, args: argparse.Namespace, broadcast: bool) -> dict:
    definitions = AcdDefinitions((QUEUE,), tuple(AgentDefinition(agent_id, f"Agent {agent_id}", f"PJSIP/{agent_id}",
                                                                 "", {"support": 50})
                                                 for agent_id in agent_ids(args.clients)))
    acd = AcdService(definitions)
    crm = MemoryCrm(args.clients)
    sessions = AgentSessions(MemorySessionStore(), _any_password, lambda agent_id: True)
    desks = AgentDesks(acd, CallModel(), {}, sessions, PopBuilder(crm, crm, crm), _no_dispositions)
    await desks.start(_NoBus())
    offered: dict[str, str] = {}
    acd.listen(lambda decision: isinstance(decision, Offer) and offered.__setitem__(decision.call_id,
                                                                                   decision.agent_id))
    tokens = []
    for agent_id in agent_ids(args.clients):
        tokens.append((await desks.login(agent_id, PASSWORD)).token)
        await desks.command(agent_id, {"type": "ready"})
    app = build_app(Metrics(), {}, FirstMatch(sessions), CrmStore(None, None), desks=desks)
    try:
        async with served_with_clients(app, __file__, "/api/agent/ws", limit=2**26) as clients:
            clients.stdin.write(orjson.dumps(dict(zip(agent_ids(args.clients), tokens))) + b"\n")
            await clients.stdin.drain()
            if (await clients.stdout.readline()).strip() != b"ready":
                sys.exit(f"screen_pop: the {name} clients did not connect")
            if broadcast:
                _broadcast(desks)
            achieved = await _offer_calls(acd, args.rate, args.seconds)
            await asyncio.sleep(1.0)
            unsent = await _drain(desks)
            clients.stdin.write(orjson.dumps(offered) + b"\n")
            await clients.stdin.drain()
            result = orjson.loads(await clients.stdout.read())
            await clients.wait()
    finally:
        acd.close()
    return result | {"offers": len(offered), "offers_per_s": achieved, "unsent": unsent}


async def _any_password(agent_id: str, secret: str) -> bool:
    return secret == PASSWORD


async def _no_dispositions() -> list:
    return []


class _NoBus:
    def subscribe(self, *_args):
        return type("Subscription", (), {"unsubscribe": lambda self: None})()


def _broadcast(desks: AgentDesks) -> None:
    """The peer: every desk's frames go to every connected desktop."""
    everyone = [socket for desk in desks.logged_in() for socket in desk.sockets]
    for desk in desks.logged_in():
        desk.sockets = everyone


async def _offer_calls(acd: AcdService, rate: float, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    start = next_at = loop.time()
    calls = 0
    while next_at < start + seconds:
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        calls += 1
        customer = calls % 1000 + 1
        acd.submit(CallArrived(f"pbx:call-{calls}", QUEUE.name, data={
            "ani": MemoryCrm.number(customer), "dnis": "100", "customer_id": str(customer),
            "account": f"A-{customer}", "ivr_path": "main > support", "ivr.reason": "invoice"}))
        next_at += 1 / rate
    return calls / (loop.time() - start)


async def _drain(desks: AgentDesks) -> int:
    """Wait (up to DRAIN_LIMIT_S) for the desks' outboxes to empty; returns the frames still queued."""
    deadline = time.monotonic() + DRAIN_LIMIT_S
    while (queued := sum(desk.unsent for desk in desks.logged_in())) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return queued


# --- the clients (child process) -----------------------------------------------------------------


async def _read(socket: aiohttp.ClientWebSocketResponse, agent_id: str, received: list, hello: asyncio.Event) -> None:
    async for message in socket:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        at = time.time()
        frame = orjson.loads(message.data)
        if frame["type"] == "hello":
            hello.set()
        elif frame["type"] == "offer":
            call = frame["call"]
            received.append((agent_id, call["call_id"], at - call["offered_at"]))


async def run_clients(url: str) -> None:
    read_line = asyncio.get_running_loop().run_in_executor
    tokens = orjson.loads(await read_line(None, sys.stdin.readline))
    received: list[tuple[str, str, float]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets, readers, greeted = [], [], []
        for agent_id, token in tokens.items():
            socket = await session.ws_connect(f"{url}?token={token}", max_msg_size=0, heartbeat=None)
            greeted.append(asyncio.Event())
            readers.append(asyncio.create_task(_read(socket, agent_id, received, greeted[-1])))
            sockets.append(socket)
        await asyncio.gather(*(event.wait() for event in greeted))
        print("ready", flush=True)
        offered = orjson.loads(await read_line(None, sys.stdin.readline))
        for socket in sockets:
            await socket.close()
        for reader in readers:
            reader.cancel()
    latencies = [seconds * 1000 for agent_id, call_id, seconds in received if offered.get(call_id) == agent_id]
    frames = len(received)
    print(orjson.dumps({"latencies_ms": latencies, "offer_frames": frames, "clients": len(tokens)}).decode(),
          flush=True)


# --- report --------------------------------------------------------------------------------------


def figures(result: dict) -> tuple[float, float]:
    """p50 and p99 in ms; offers never received count at the drain limit (a lower bound)."""
    missing = max(0, result["offers"] - len(result["latencies_ms"]))
    latencies = result["latencies_ms"] + [DRAIN_LIMIT_S * 1000] * missing
    return percentile(latencies, 0.5), percentile(latencies, 0.99)


def describe(name: str, result: dict, p50: float, p99: float) -> str:
    missing = result["offers"] - len(result["latencies_ms"])
    lost = f", {missing} offers not received within the drain limit (counted at {DRAIN_LIMIT_S:.0f} s)" \
        if missing else ""
    return (f"{name}: {result['offers']} offers ({result['offers_per_s']:.1f}/s), p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
            f"max {max(result['latencies_ms'], default=0):.1f} ms, {result['offer_frames']} offer frames received "
            f"by all clients{lost}")


async def main(args: argparse.Namespace) -> None:
    print(f"screen_pop: {args.clients} desktops connected, {args.rate:g} offers/s for {args.seconds:g} s "
          f"(uvloop, loopback, pops from in-memory CRM lookups)")
    ours = await serve_phase("ours", args, broadcast=False)
    ours_p50, ours_p99 = figures(ours)
    print(describe("ours (each frame to its agent's socket, in the desk's order)", ours, ours_p50, ours_p99))
    peer = await serve_phase("broadcast", args, broadcast=True)
    peer_p50, peer_p99 = figures(peer)
    print(describe("peer (naive broadcast: every frame to every desktop, serialised per socket)", peer,
                   peer_p50, peer_p99))
    print(f"peer comparison (broadcast / ours): p50 {peer_p50:.1f} / {ours_p50:.2f} ms = {peer_p50 / ours_p50:.0f}x, "
          f"p99 {peer_p99:.1f} / {ours_p99:.2f} ms = {peer_p99 / ours_p99:.0f}x")
    print(f"screen_pop p50_ms={ours_p50:.2f} p99_ms={ours_p99:.2f} clients={ours['clients']}")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="offers per second")
    parser.add_argument("--client-of", help=argparse.SUPPRESS)  # the child process: clients of this URL
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_arguments()
    logs.configure("console", "warning")
    if arguments.client_of:
        uvloop.run(run_clients(arguments.client_of))
    else:
        uvloop.run(main(arguments))
