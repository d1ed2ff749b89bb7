"""Live statistics, expected wait time and the announcements that carry it."""

from __future__ import annotations

import pytest

from acd.events import (
    AgentLogin,
    AgentNotReady,
    AgentReady,
    Announce,
    CallAbandoned,
    CallArrived,
    CallCompleted,
    OfferAccepted,
)
from acd.ewt import HandleTimeAverage, expected_wait
from acd.model import AgentState
from acd.stats import RECENT, TODAY
from tests.unit.test_acd_support import Acd, agent, of, queue

pytestmark = pytest.mark.unit


# --- expected wait --------------------------------------------------------------------------


def test_expected_wait_is_the_release_time_of_the_agent_that_will_take_the_call():
    # aht 100; busy for 10, 50 and 95 s: free in 90, 50 and 10 (floor: a tenth of aht) seconds
    busy = [10.0, 50.0, 95.0]
    assert [expected_wait(position, 0, busy, 100.0) for position in (1, 2, 3, 4, 5)] == [10, 50, 90, 110, 150]
    assert expected_wait(2, 2, busy, 100.0) == 0  # two idle agents take the first two callers
    assert expected_wait(3, 2, busy, 100.0) == 10
    assert expected_wait(1, 0, [], 100.0) is None  # nobody staffed: unknown, not zero


def test_handle_time_average_follows_recent_calls():
    average = HandleTimeAverage(180.0)
    average.add(100.0, 0.5)
    assert average.seconds == 140.0
    for _ in range(50):
        average.add(60.0, 0.1)
    assert average.seconds == pytest.approx(60.0, abs=1.0)


def test_engine_ewt_follows_staffing_and_handle_times():
    acd = Acd(queues=[queue(initial_aht_seconds=200.0)], agents=[agent("a1"), agent("a2")])
    acd.ready(0, "a1")
    acd.at(0, AgentLogin("a2"))
    acd.at(0, CallArrived("c1", "sales"), OfferAccepted("c1", "a1"))
    assert acd.engine.expected_wait("sales") == 200.0  # one busy agent, just started
    acd.at(50, AgentReady("a2"))
    assert acd.engine.expected_wait("sales") == 0.0  # a2 is free
    acd.at(50, CallArrived("c2", "sales"), OfferAccepted("c2", "a2"))
    assert acd.engine.expected_wait("sales") == 150.0  # a1 has 150 s left on average
    acd.at(100, CallCompleted("c1"), AgentNotReady("a1", "break"))  # handled in 100 s: aht 190
    assert acd.engine.expected_wait("sales") == 190.0 - 50.0


# --- announcements --------------------------------------------------------------------------


def test_position_and_expected_wait_are_announced_first_after_x_then_every_y():
    acd = Acd(queues=[queue(announce_first_after=30, announce_every=60, initial_aht_seconds=120)])
    acd.ready(0, "a1")
    acd.at(0, CallArrived("talking", "sales"), OfferAccepted("talking", "a1"))
    acd.at(0, CallArrived("c1", "sales"))
    acd.at(10, CallArrived("c2", "sales"))
    # one agent, busy since 0 on a call expected to last 120 s; c2 waits for its second release
    assert acd.until(100) == [Announce("c1", 1, 90.0), Announce("c2", 2, 120.0 + 80.0),
                              Announce("c1", 1, 30.0), Announce("c2", 2, 120.0 + 20.0)]
    acd.at(100, CallCompleted("talking"), OfferAccepted("c1", "a1"))  # no more announcements for c1
    [announce] = acd.until(160)
    aht = 120.0 + 0.1 * (100.0 - 120.0)  # the first handled call moved the average
    assert (announce.call_id, announce.position) == ("c2", 1)
    assert announce.expected_wait_seconds == pytest.approx(aht - 60.0)


# --- statistics -----------------------------------------------------------------------------


def window(acd: Acd, name: str = TODAY, now: float | None = None):
    snapshot = acd.engine.queue_snapshot("sales", acd.now if now is None else now)
    return snapshot.today if name == TODAY else snapshot.recent


def answer_after(acd: Acd, call_id: str, arrive: float, wait: float, talk: float) -> None:
    acd.at(arrive, CallArrived(call_id, "sales"))
    acd.at(arrive + wait, AgentReady("a1"), OfferAccepted(call_id, "a1"))
    acd.at(arrive + wait + talk, CallCompleted(call_id))


def test_service_level_in_both_variants_short_abandons_apart():
    acd = Acd(queues=[queue(service_level_seconds=20, short_abandon_seconds=5, wrap_up_seconds=10)])
    acd.at(0, AgentLogin("a1"))
    answer_after(acd, "fast", 0, wait=10, talk=50)
    acd.at(70, AgentNotReady("a1", "x"))
    answer_after(acd, "slow", 100, wait=30, talk=90)
    acd.at(230, AgentNotReady("a1", "x"))
    acd.at(300, CallArrived("misdial", "sales"), CallArrived("gave-up", "sales"))
    acd.at(303, CallAbandoned("misdial"))
    acd.at(325, CallAbandoned("gave-up"))
    figures = window(acd, now=400)
    assert (figures.offered, figures.answered, figures.answered_within_sl) == (4, 2, 1)
    assert (figures.abandoned, figures.short_abandoned) == (1, 1)
    assert figures.sl_answered == 1 / 2
    assert figures.sl_offered == 1 / 3  # answered within 20 s / (answered + abandoned after 5 s)
    assert figures.abandon_rate == 1 / 3
    assert figures.asa == 20.0
    assert figures.aht == ((50 + 10) + (90 + 10)) / 2
    assert figures.occupancy == 1.0  # a1 was made ready only when a call was there to answer


def test_occupancy_is_handle_time_over_handle_plus_idle_time():
    acd = Acd(queues=[queue(wrap_up_seconds=20)])
    acd.ready(0, "a1")
    acd.at(100, CallArrived("c1", "sales"), OfferAccepted("c1", "a1"))
    acd.at(180, CallCompleted("c1"))  # then 20 s wrap-up, available again at 200
    acd.at(300, AgentNotReady("a1", "lunch"))
    agent_today = acd.engine.agent_snapshot("a1", 1000).today
    assert agent_today.occupancy == 100 / 300
    assert (agent_today.handled, agent_today.aht) == (1, 100.0)
    assert agent_today.seconds_by_state[AgentState.NOT_READY] == 700
    assert window(acd, now=1000).occupancy == 100 / 300


def test_the_sliding_window_forgets_and_today_restarts_at_the_injected_day_start():
    day = 86400.0
    acd = Acd(day_start=lambda now: now // day * day)
    acd.ready(0, "a1")
    acd.at(100, CallArrived("c1", "sales"), OfferAccepted("c1", "a1"), CallCompleted("c1"))
    assert window(acd, RECENT, now=900).answered == 1
    assert window(acd, RECENT, now=1001).answered == 0  # 15 min after the answer at 100
    assert window(acd, TODAY, now=day - 1).answered == 1
    assert window(acd, TODAY, now=day + 1).answered == 0
    assert acd.engine.agent_snapshot("a1", day + 100).today.seconds_by_state == {AgentState.AVAILABLE: 100}


def test_queue_snapshot_has_waiting_calls_longest_wait_and_agents_by_state():
    acd = Acd(agents=[agent("a1"), agent("a2"), agent("a3")])
    acd.at(0, AgentLogin("a1"), AgentLogin("a2"))
    acd.at(10, CallArrived("c1", "sales"))
    acd.at(25, CallArrived("c2", "sales"))
    snapshot = acd.engine.queue_snapshot("sales", 40)
    assert (snapshot.waiting, snapshot.longest_wait) == (2, 30)
    assert snapshot.agents_by_state == {"not_ready": 2}
    assert of(acd.at(41, AgentReady("a1")), Announce) == []
    assert acd.engine.queue_snapshot("sales", 41).agents_by_state == {"reserved": 1, "not_ready": 1}
