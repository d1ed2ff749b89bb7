"""UpdateQueue: a queue's settings replaced live, its waiting calls re-filed under them."""

from __future__ import annotations

import dataclasses

import pytest

from acd.events import (
    AgentLogin,
    AgentReady,
    AgentStateChanged,
    Announce,
    CallArrived,
    CallCompleted,
    CallEnded,
    CancelOffer,
    FinalAction,
    Offer,
    OfferAccepted,
    OfferFailed,
    Overflowed,
    Tick,
    UpdateQueue,
)
from acd.model import AcdError, AgentState, Disposition, DispositionKind, OverflowStep, Strategy
from tests.unit.test_acd_support import Acd, agent, of, queue

pytestmark = pytest.mark.unit

VOICEMAIL = Disposition(DispositionKind.VOICEMAIL, "box-100")


def offered(decisions) -> list[tuple[str, str]]:
    return [(offer.call_id, offer.agent_id) for offer in of(decisions, Offer)]


def english_and_german() -> Acd:
    """A call waits in "sales" (english required); the free agent speaks only german."""
    acd = Acd(queues=[queue("sales", "english>=50")],
              agents=[agent("en", {"english": 80}), agent("de", {"german": 80})])
    acd.at(0, AgentLogin("en"))  # staffed, but never ready
    acd.ready(0, "de")
    acd.at(10, CallArrived("c1", "sales", priority=3))
    return acd


# --- the requirement ------------------------------------------------------------------------


def test_a_waiting_call_is_offered_at_once_to_an_agent_the_new_requirement_admits():
    acd = english_and_german()
    decisions = acd.at(40, UpdateQueue(queue("sales", "english>=50 | german>=50")))
    assert offered(decisions) == [("c1", "de")]
    assert of(decisions, Offer)[0].wait_seconds == 30  # the arrival time is kept


def test_a_narrower_requirement_keeps_agents_it_no_longer_admits_away_from_the_queue():
    acd = Acd(queues=[queue("sales", "sales>=40")], agents=[agent("junior", {"sales": 45}), agent("senior")])
    acd.ready(0, "junior", "senior")
    assert acd.at(5, UpdateQueue(queue("sales", "sales>=50"))) == []
    assert offered(acd.at(6, CallArrived("c1", "sales"))) == [("c1", "senior")]  # junior had idled longer
    assert offered(acd.at(7, CallArrived("c2", "sales"))) == []
    assert acd.engine.queue_snapshot("sales", 7).agents_by_state == {AgentState.RESERVED: 1}


def test_calls_keep_their_order_when_re_filed():
    acd = Acd(queues=[queue("sales", "english")], agents=[agent("en", {"english": 50}), agent("de", {"german": 50})])
    acd.at(0, AgentLogin("en"), AgentLogin("de"))
    for n, priority in ((1, 0), (2, 5), (3, 0)):
        acd.at(n, CallArrived(f"c{n}", "sales", priority=priority))
    acd.at(10, UpdateQueue(queue("sales", "german")))
    assert acd.engine.waiting_calls("sales") == ["c2", "c1", "c3"]
    assert offered(acd.at(11, AgentReady("de"))) == [("c2", "de")]


def test_another_queues_overflow_step_adds_the_new_requirement():
    steps = (OverflowStep(30, add_queues=("support",)),)
    acd = Acd(queues=[queue("sales", "sales", overflow=steps), queue("support", "helpdesk")],
              agents=[agent("seller"), agent("helper", {"helpdesk": 50}), agent("linguist", {"english": 50})])
    acd.at(0, AgentLogin("seller"), AgentLogin("helper"))
    acd.ready(0, "linguist")
    acd.at(0, CallArrived("c1", "sales"))
    assert acd.until(30) == [Overflowed("c1", 0)]  # support's agents may take it: none is free
    assert offered(acd.at(31, UpdateQueue(queue("support", "helpdesk | english")))) == [("c1", "linguist")]


def test_when_nobody_logged_in_meets_the_new_requirement_waiting_calls_get_their_final_action():
    acd = Acd(queues=[queue("sales", final_action=VOICEMAIL)])
    acd.at(0, AgentLogin("a1"))
    acd.at(1, CallArrived("c1", "sales"))
    decisions = acd.at(2, UpdateQueue(queue("sales", "french", final_action=VOICEMAIL)))
    assert decisions == [FinalAction("c1", DispositionKind.VOICEMAIL, "box-100"),
                         CallEnded("c1", "sales", "final_action")]


# --- overflow levels and deadlines ----------------------------------------------------------


def test_the_overflow_level_is_what_the_wait_in_the_queue_reaches_under_the_new_steps():
    acd = Acd(queues=[queue("sales", "sales>=90")], agents=[agent("a1", {"sales": 35}), agent("boss", {"sales": 95})])
    acd.at(0, AgentLogin("boss"))
    acd.ready(0, "a1")
    acd.at(0, CallArrived("c1", "sales"))
    steps = (OverflowStep(10, lower_thresholds={"sales": 60}), OverflowStep(20, lower_thresholds={"sales": 30}),
             OverflowStep(60, add_skills="any"))
    decisions = acd.at(25, UpdateQueue(queue("sales", "sales>=90", overflow=steps)))
    assert decisions[:2] == [Overflowed("c1", 0), Overflowed("c1", 1)]
    assert offered(decisions) == [("c1", "a1")]


def test_later_steps_lower_the_level_and_fire_when_their_time_comes():
    acd = Acd(queues=[queue("sales", "sales>=90", overflow=(OverflowStep(10, lower_thresholds={"sales": 30}),))],
              agents=[agent("a1", {"sales": 35}), agent("boss", {"sales": 95})])
    acd.at(0, AgentLogin("boss"))
    acd.at(0, CallArrived("c1", "sales"))
    assert acd.until(10) == [Overflowed("c1", 0)]
    later = (OverflowStep(50, lower_thresholds={"sales": 30}),)
    assert acd.at(20, UpdateQueue(queue("sales", "sales>=90", overflow=later))) == []
    acd.ready(21, "a1")  # level 0 again: the junior agent may not take it yet
    assert acd.engine.agent_state("a1") is AgentState.AVAILABLE and acd.engine.next_deadline() == 50
    decisions = acd.until(50)
    assert decisions[0] == Overflowed("c1", 0) and offered(decisions) == [("c1", "a1")]


def test_a_max_wait_already_passed_ends_the_wait_at_once():
    acd = Acd(queues=[queue("sales")])
    acd.at(0, AgentLogin("a1"))
    acd.at(0, CallArrived("c1", "sales"))
    decisions = acd.at(100, UpdateQueue(queue("sales", max_wait_seconds=60, final_action=VOICEMAIL)))
    assert decisions == [FinalAction("c1", DispositionKind.VOICEMAIL, "box-100"),
                         CallEnded("c1", "sales", "final_action")]


def test_announcements_switched_on_start_from_the_entry_into_the_queue():
    acd = Acd(queues=[queue("sales")])
    acd.at(0, AgentLogin("a1"))
    acd.at(0, CallArrived("old", "sales"))
    acd.at(50, CallArrived("new", "sales"))
    decisions = acd.at(60, UpdateQueue(queue("sales", announce_first_after=30, announce_every=45)))
    assert [announce.call_id for announce in of(decisions, Announce)] == ["old"]
    assert [announce.call_id for announce in of(acd.until(105), Announce)] == ["new", "old"]  # at 80, then 105


# --- offered and talking calls --------------------------------------------------------------


def test_an_offered_call_stays_with_its_agent_and_the_new_ring_timeout_applies_to_the_next_offer():
    acd = Acd(queues=[queue(ring_timeout=15)], agents=[agent("a1"), agent("a2")])
    acd.ready(0, "a1", "a2")
    acd.at(0, CallArrived("c1", "sales"))
    assert acd.at(5, UpdateQueue(queue(ring_timeout=40))) == []
    assert acd.engine.agent_call("a1") == "c1" and acd.engine.next_deadline() == 15
    decisions = acd.at(10, OfferFailed("c1", "a1", "no_answer"))
    assert [(offer.agent_id, offer.ring_timeout) for offer in of(decisions, Offer)] == [("a2", 40)]


def test_the_new_wrap_up_applies_to_the_next_wrap_up():
    acd = Acd()
    acd.ready(0, "a1")
    acd.at(0, CallArrived("c1", "sales"), OfferAccepted("c1", "a1"))
    acd.at(5, UpdateQueue(queue(wrap_up_seconds=30)))
    acd.at(60, CallCompleted("c1"))
    assert acd.engine.agent_state("a1") is AgentState.WRAP_UP and acd.engine.next_deadline() == 90


def test_a_new_strategy_picks_among_the_free_agents_at_once():
    acd = Acd(agents=[agent("idle", {"sales": 40}), agent("expert", {"sales": 90})])
    acd.ready(0, "idle", "expert")
    acd.at(1, UpdateQueue(queue(strategy=Strategy.MOST_SKILLED)))
    assert offered(acd.at(2, CallArrived("c1", "sales"))) == [("c1", "expert")]



def test_a_queue_that_has_learnt_no_handle_time_takes_a_new_initial_value():
    acd = Acd(queues=[queue(initial_aht_seconds=100)])
    acd.ready(0, "a1")
    acd.at(0, CallArrived("c1", "sales"), OfferAccepted("c1", "a1"))  # talking, not yet handled
    acd.at(10, Tick())
    assert acd.engine.queue_snapshot("sales", 10).expected_wait == 90
    acd.at(10, UpdateQueue(queue(initial_aht_seconds=400)))
    assert acd.engine.queue_snapshot("sales", 10).expected_wait == 390

def test_the_learnt_handle_time_and_the_statistics_are_kept_and_new_thresholds_count_from_now():
    acd = Acd(queues=[queue(initial_aht_seconds=100)])
    acd.ready(0, "a1")
    acd.at(0, CallArrived("c1", "sales"), OfferAccepted("c1", "a1"))
    acd.at(300, CallCompleted("c1"))  # handle time 300: the average goes from 100 to 120
    acd.at(300, CallArrived("c2", "sales"), OfferAccepted("c2", "a1"))
    before = acd.engine.queue_snapshot("sales", 301).today
    acd.at(301, UpdateQueue(queue(initial_aht_seconds=500, service_level_seconds=5)))
    after = acd.engine.queue_snapshot("sales", 301)
    assert after.expected_wait == 119 and after.today == before  # 120 - the 1 s c2 has talked
    acd.at(302, CallArrived("c3", "sales"))
    acd.at(310, CallCompleted("c2"), OfferAccepted("c3", "a1"))  # c3 waited 8 s: over the new 5 s
    today = acd.engine.queue_snapshot("sales", 310).today
    assert (today.answered, today.answered_within_sl) == (3, 2)


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "message"), [
    (queue("nowhere"), "no queue 'nowhere' in the settings"),
    (queue("sales", overflow=(OverflowStep(30, add_queues=("ghost",)),)), "no queue named 'ghost'"),
    (queue("sales", final_action=Disposition(DispositionKind.QUEUE, "support")), "loop: sales -> support -> sales"),
    (queue("sales", "sales>="), "queue 'sales': skills"),
    (queue("sales", ring_timeout=0), "ring_timeout: expected a positive number"),
])
def test_bad_settings_are_refused_and_change_nothing(settings, message):
    acd = Acd(queues=[queue("sales"), queue("support", final_action=Disposition(DispositionKind.QUEUE, "sales"))],
              agents=[agent("a1"), agent("a2", {"support": 50})])
    acd.ready(0, "a1")
    acd.at(0, AgentLogin("a2"))
    acd.at(0, CallArrived("c1", "sales"), CallArrived("c2", "support"))
    with pytest.raises(AcdError, match=message):
        acd.engine.handle(UpdateQueue(settings), 20)
    # The ring of c1 timed out at 15 all the same: its decisions come with the next call, at once.
    assert acd.engine.next_deadline() == 20
    assert acd.engine.handle(Tick(), 20)[:2] == [CancelOffer("c1", "a1"),
                                                AgentStateChanged("a1", AgentState.NOT_READY, "no answer", 20)]
    assert acd.engine.waiting_calls("support") == ["c2"]
    assert acd.engine.waiting_calls("sales") == ["c1"]


def test_settings_given_as_configuration_strings_are_normalized():
    acd = english_and_german()
    changed = dataclasses.replace(queue("sales", "german"), strategy="round_robin",
                                  final_action=Disposition("voicemail", "box"))
    assert offered(acd.at(20, UpdateQueue(changed))) == [("c1", "de")]
