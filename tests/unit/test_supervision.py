"""The wallboard on a real AcdEngine (through AcdService) with a fake clock: snapshots, coalesced and
throttled updates, and the fan-out's one frame for every supervisor."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from acd import (AgentLogin, AgentNotReady, AgentReady, CallAbandoned, CallArrived, OfferAccepted, QueueSettings,
                 SetAgentSkills, SetCallPriority)
from acd.config import AcdDefinitions, AgentDefinition
from cti.acd_service import AcdService
from cti.supervision import Fanout, Wallboard
from tests.unit.clock import Clock as HandClock

pytestmark = pytest.mark.unit

EPOCH = 1_700_000_000.0  # the fake wall clock reads EPOCH + engine time


class Clock(HandClock):
    def wall(self) -> float:
        return EPOCH + self.now


DEFINITIONS = AcdDefinitions(
    queues=(QueueSettings("support", "support>=50", service_level_seconds=20),
            QueueSettings("sales", "sales>=50", service_level_seconds=30),
            QueueSettings("billing", "billing>=50")),
    agents=(AgentDefinition("1001", "Alice", "PJSIP/1001", skills={"support": 80}),
            AgentDefinition("1002", "Bob", "PJSIP/1002", skills={"support": 60, "sales": 70}),
            AgentDefinition("1003", "Carol", "PJSIP/1003", skills={"sales": 80}),
            AgentDefinition("1004", "Dan", "PJSIP/1004", skills={"billing": 80})),
)


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def acd(clock: Clock) -> AcdService:
    service = AcdService(DEFINITIONS, clock=clock, wall_clock=clock.wall)
    for agent in DEFINITIONS.agents:
        service.submit(AgentLogin(agent.agent_id))  # not ready until they say so
    yield service
    service.close()


@pytest.fixture
async def board(acd: AcdService, clock: Clock) -> Wallboard:
    wallboard = Wallboard(acd, interval=0.25, refresh_seconds=60)
    clock.now += 1
    wallboard.take_update()  # start from a clean slate: nothing pending
    yield wallboard
    wallboard.close()


def names(update: dict) -> tuple[list[str], list[str]]:
    return [queue["queue"] for queue in update["queues"]], [agent["agent_id"] for agent in update["agents"]]


def queue_of(frame: dict, name: str) -> dict:
    return next(queue for queue in frame["queues"] if queue["queue"] == name)


def agent_of(frame: dict, agent_id: str) -> dict:
    return next(agent for agent in frame["agents"] if agent["agent_id"] == agent_id)


async def test_the_snapshot_holds_every_queue_agent_and_waiting_call(acd, board, clock):
    clock.now += 5
    acd.submit(CallArrived("c1", "support", priority=3))
    clock.now += 7
    snapshot = board.snapshot()

    assert names(snapshot) == (["support", "sales", "billing"], ["1001", "1002", "1003", "1004"])
    assert snapshot["server_time"] == EPOCH + clock.now and snapshot["service_level_target"] == 0.8
    support = queue_of(snapshot, "support")
    (call,) = support["calls"]
    # The wait grows in the browser from `since`, the arrival on the server's epoch clock.
    assert call == {"call_id": "c1", "position": 1, "priority": 3, "since": EPOCH + clock.now - 7, "wait": 7.0,
                    "overflow_level": 0, "callback": False, "state": "waiting"}
    assert support["waiting"] == 1 and support["longest_wait"] == 7.0
    assert support["longest_wait_since"] == call["since"]
    assert support["agents_by_state"] == {"not_ready": 2, "available": 0, "reserved": 0, "on_call": 0, "wrap_up": 0}
    assert support["today"]["offered"] == 1 and support["recent"]["sl_answered"] is None
    alice = agent_of(snapshot, "1001")
    assert (alice["state"], alice["reason"], alice["call"], alice["skills"]) == ("not_ready", "logged in", None,
                                                                              {"support": 80})
    assert alice["queues"] == ["support"] and alice["today"] == {"handled": 0, "aht": None, "occupancy": None}


async def test_changes_between_two_frames_are_coalesced_into_one_update(acd, board, clock):
    acd.submit(AgentReady("1003"))
    acd.submit(AgentNotReady("1003", "lunch"))
    acd.submit(AgentReady("1003"))
    acd.submit(AgentNotReady("1004", "training"))

    update = board.take_update()
    assert names(update) == (["billing", "sales"], ["1003", "1004"])  # support was not touched
    assert agent_of(update, "1003")["state"] == "available"
    assert board.take_update() is None  # nothing new


async def test_updates_are_throttled_to_one_per_interval(acd, board, clock):
    woken = []
    board.on_change = lambda: woken.append(clock.now)
    acd.submit(AgentReady("1001"))
    # The first change after a quiet spell may go at once.
    assert board.next_frame_at() <= clock.now and woken == [clock.now]
    first = board.take_update()
    assert names(first)[1] == ["1001"]

    clock.now += 0.1
    acd.submit(AgentReady("1002"))
    assert board.next_frame_at() == pytest.approx(clock.now + 0.15)
    assert board.take_update() is None  # too soon: held back, not lost
    clock.now += 0.1
    acd.submit(AgentNotReady("1001", "break"))
    assert len(woken) == 2  # one wake-up per frame, not per change
    clock.now += 0.05
    second = board.take_update()
    assert names(second)[1] == ["1001", "1002"] and second["seq"] == first["seq"] + 1


async def test_a_call_queued_without_any_decision_shows_up(acd, board, clock):
    acd.submit(CallArrived("c1", "sales"))  # everybody not ready: the engine decides nothing
    update = board.take_update()
    assert [call["call_id"] for call in queue_of(update, "sales")["calls"]] == ["c1"]


async def test_a_call_leaves_the_list_when_an_agent_takes_it(acd, board, clock):
    acd.submit(CallArrived("c1", "support"))
    board.take_update()
    clock.now += 1
    acd.submit(AgentReady("1001"))  # offered at once: it rings 1001
    ringing = board.take_update()
    assert [(call["call_id"], call["state"]) for call in queue_of(ringing, "support")["calls"]] == [("c1", "offered")]
    assert agent_of(ringing, "1001")["call"] == "c1"

    clock.now += 1
    acd.submit(OfferAccepted("c1", "1001"))
    answered = board.take_update()
    support = queue_of(answered, "support")
    assert support["calls"] == [] and support["waiting"] == 0 and support["recent"]["answered"] == 1
    assert agent_of(answered, "1001")["state"] == "on_call"


async def test_an_event_naming_only_the_call_refreshes_the_queue_it_was_shown_in(acd, board, clock):
    acd.submit(CallArrived("c1", "billing"))
    acd.submit(CallArrived("c2", "billing"))
    board.take_update()
    clock.now += 1
    acd.submit(SetCallPriority("c2", 9))  # no decision, and the event names no queue
    update = board.take_update()
    assert [(call["call_id"], call["priority"]) for call in queue_of(update, "billing")["calls"]] == [("c2", 9),
                                                                                                      ("c1", 0)]
    clock.now += 1
    acd.submit(CallAbandoned("c1"))
    assert [call["call_id"] for call in queue_of(board.take_update(), "billing")["calls"]] == ["c2"]


async def test_a_skill_change_refreshes_the_queues_left_and_joined(acd, board, clock):
    acd.submit(SetAgentSkills("1001", {"billing": 90}))  # leaves support, joins billing
    assert names(board.take_update()) == (["billing", "support"], ["1001"])


async def test_queues_are_refreshed_as_their_windows_slide(acd, board, clock):
    refresh_at = board.next_frame_at()  # nothing changed: the next frame is the refresh
    clock.now = refresh_at - 0.01
    assert board.take_update() is None
    clock.now = refresh_at
    update = board.take_update()
    assert names(update) == (["billing", "sales", "support"], [])


class Client:
    """A supervisor's socket: records frames; ``blocked`` makes its sends hang."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.blocked = asyncio.Event()
        self.blocked.set()

    async def send(self, frame: str) -> None:
        await self.blocked.wait()
        self.frames.append(frame)

    def kinds(self) -> list[str]:
        return [orjson.loads(frame)["type"] for frame in self.frames]


def encode(kind: str, body: dict) -> str:
    return orjson.dumps({"v": 1, "type": kind, **body}).decode()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_fanout_sends_one_serialised_frame_to_every_supervisor(acd, board, clock):
    fanout = Fanout(board, encode, queue_limit=2)
    fanout.start()
    first, second, slow = Client(), Client(), Client()
    slow.blocked.clear()
    for client in (first, second, slow):
        fanout.subscribe(client.send)
    await settle()
    assert first.kinds() == second.kinds() == ["snapshot"]

    for round_ in range(4):
        clock.now += 1  # past the throttle interval: each change makes its own frame
        acd.submit(AgentReady("1003") if round_ % 2 == 0 else AgentNotReady("1003", "break"))
        await settle()
    assert first.kinds() == ["snapshot"] + ["update"] * 4 and fanout.frames_sent == 4
    assert all(mine is theirs for mine, theirs in zip(first.frames[1:], second.frames[1:]))  # encoded once

    # The slow one fell behind: its backlog was replaced by a fresh snapshot, then it went on.
    slow.blocked.set()
    await settle()
    assert slow.kinds() == ["snapshot", "snapshot", "update"]
    assert agent_of(orjson.loads(slow.frames[-1]), "1003")["state"] == "not_ready"
    await fanout.close()
    assert not fanout.subscribers


async def test_today_figures_add_up_although_the_two_clocks_are_read_apart(clock):
    """The engine's "today" starts at a day start derived from the wall clock and the monotonic
    one; read a microsecond apart they never agree twice, which must not restart the day."""
    jitter = iter([0.0, 3e-6, -2e-6, 5e-6] * 1000)
    acd = AcdService(DEFINITIONS, clock=clock, wall_clock=lambda: clock.wall() + next(jitter))
    acd.submit(AgentLogin("1001"))
    for number in range(3):
        clock.now += 1
        acd.submit(CallArrived(f"c{number}", "support"))
    assert acd.engine.queue_snapshot("support", clock.now).today.offered == 3
    acd.close()
