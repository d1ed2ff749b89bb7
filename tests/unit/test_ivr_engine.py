import itertools
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.actions import (CallbackRequest, CollectDigits, Finish, Hangup, Lookup, Play, SayDigits, SayNumber, ToQueue,
                         Transfer, Voicemail)
from ivr.engine import IvrSession
from ivr.flow import FlowSet, NoFlowForDnis, load_flows
from ivr.inputs import CallerHangup, Digits, LookupResult, Timeout
from ivr.nodes import LOOKUP_KINDS
from ivr.result import Outcome, OutcomeKind

pytestmark = pytest.mark.unit

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=timezone.utc)  # a Friday, 11:00 in New York
EXAMPLE_FLOWS = Path(__file__).resolve().parents[2] / "config" / "flows"
ENTRY = '[flow]\ndnis = ["100"]\ndefault = true\n'
MENU = ENTRY + """
[nodes.menu]
kind = "menu"
prompts = ["custom/menu"]
options = { "1" = "sales", "2" = "support", "9" = "menu" }
invalid_prompts = [["custom/invalid-1"], ["custom/invalid-2"]]
timeout_prompts = [["custom/silence-1"], ["custom/silence-2"]]

[nodes.sales]
kind = "queue"
queue = "sales"
skills = ["sales", "en"]
priority = 3

[nodes.support]
kind = "queue"
queue = "support"
"""


def flows(tmp_path: Path, **texts: str) -> FlowSet:
    for name, text in texts.items():
        (tmp_path / f"{name}.toml").write_text(text)
    return load_flows(tmp_path)


def call(flow_set: FlowSet, *inputs, dnis="100", now=NOW, **options):
    """The session after ``inputs``, and every action it asked for."""
    session = IvrSession(flow_set, dnis, "5551234", now, **options)
    actions = session.start()
    for event in inputs:
        actions += session.feed(event, now)
    return session, actions


def asked(actions) -> list[tuple[str, ...]]:
    return [action.prompts for action in actions if isinstance(action, CollectDigits)]


# -- play, menu, retries --------------------------------------------------------------------

def test_play_then_hangup(tmp_path):
    flow_set = flows(tmp_path, main=ENTRY + """
[nodes.hello]
kind = "play"
prompts = ["hello", "custom/welcome"]
barge_in = true
next = "bye"
[nodes.bye]
kind = "hangup"
prompts = ["vm-goodbye"]
""")
    session, actions = call(flow_set)
    assert actions == [Play(("hello", "custom/welcome"), escape_digits="0123456789*#"), Play(("vm-goodbye",)),
                       Hangup(), Finish(session.result)]
    assert session.finished and session.result.outcome == Outcome(OutcomeKind.HANGUP)
    assert session.result.path == ["main:hello", "main:bye"]


def test_menu_choice_routes_to_queue_with_skills_and_priority(tmp_path):
    session, actions = call(flows(tmp_path, main=MENU), Digits("1"))
    assert actions[0] == CollectDigits(("custom/menu",), 1, 1, "", 5000, True)
    assert actions[-2:] == [ToQueue("sales", ("sales", "en"), 3), Finish(session.result)]
    assert session.result.outcome == Outcome(OutcomeKind.TO_QUEUE, queue="sales", skills=("sales", "en"), priority=3)
    assert session.result.choices == [("main:menu", "1")]


def test_each_retry_plays_its_own_prompt_before_the_question(tmp_path):
    session, actions = call(flows(tmp_path, main=MENU), Digits("7"), Timeout(), Digits("2"))
    assert asked(actions) == [("custom/menu",), ("custom/invalid-1", "custom/menu"),
                              ("custom/silence-2", "custom/menu")]
    assert session.result.outcome.queue == "support"


def test_last_retry_prompt_repeats_when_retries_outnumber_prompts(tmp_path):
    text = MENU.replace('kind = "menu"', 'kind = "menu"\nretries = 4')
    _, actions = call(flows(tmp_path, main=text), Timeout(), Timeout(), Timeout())
    assert asked(actions)[1:] == [("custom/silence-1", "custom/menu"), ("custom/silence-2", "custom/menu"),
                                  ("custom/silence-2", "custom/menu")]


def test_exhausted_retries_go_to_the_operator_queue_by_default(tmp_path):
    session, actions = call(flows(tmp_path, main=MENU), Digits("5"), Timeout(), Digits("#"))
    assert actions[-3:] == [Play(("one-moment-please",)), ToQueue("operator", (), 0), Finish(session.result)]
    assert session.result.notes == ["invalid answer at main:menu after 3 tries"]


def test_operator_queue_is_configurable_per_flow(tmp_path):
    text = MENU.replace("default = true", 'default = true\noperator_queue = "reception"')
    session, _ = call(flows(tmp_path, main=text), Timeout(), Timeout(), Timeout())
    assert session.result.outcome.queue == "reception"


def test_fallback_node_takes_over_after_retries(tmp_path):
    text = MENU.replace('kind = "menu"', 'kind = "menu"\nretries = 0\nfallback = "support"')
    session, _ = call(flows(tmp_path, main=text), Timeout())
    assert session.result.outcome.queue == "support"
    assert session.result.notes == ["timeout answer at main:menu after 1 try"]


def test_menu_default_catches_any_other_digit(tmp_path):
    text = MENU.replace('kind = "menu"', 'kind = "menu"\ndefault = "support"')
    session, _ = call(flows(tmp_path, main=text), Digits("*"))
    assert session.result.outcome.queue == "support"
    assert session.result.choices == [("main:menu", "*")]


def test_empty_digits_count_as_a_timeout(tmp_path):
    _, actions = call(flows(tmp_path, main=MENU), Digits(""))
    assert asked(actions)[1] == ("custom/silence-1", "custom/menu")


def test_input_of_the_wrong_kind_counts_as_a_timeout(tmp_path):
    _, actions = call(flows(tmp_path, main=MENU), LookupResult("balance", True, {}))
    assert asked(actions)[1] == ("custom/silence-1", "custom/menu")


def test_flow_defaults_apply_to_questions(tmp_path):
    text = ENTRY + """
[defaults]
timeout_ms = 7000
retries = 0
fallback = "out"
[nodes.ask]
kind = "menu"
prompts = ["custom/menu"]
options = { "1" = "out" }
[nodes.out]
kind = "hangup"
"""
    session, actions = call(flows(tmp_path, main=text), Timeout())
    assert actions[0].timeout_ms == 7000
    assert session.result.outcome.kind == OutcomeKind.HANGUP


# -- collect, confirm, lookups --------------------------------------------------------------

COLLECT = ENTRY + """
[nodes.account]
kind = "collect"
prompts = ["custom/enter-account"]
store = "account"
min_len = 4
max_len = 6
pattern = "[0-9]+"
{extra}
next = "done"
[nodes.done]
kind = "hangup"
"""


def test_collect_strips_the_terminator_and_stores_the_entry(tmp_path):
    session, actions = call(flows(tmp_path, main=COLLECT.format(extra="")), Digits("12345#"))
    assert actions[0] == CollectDigits(("custom/enter-account",), 4, 6, "#", 5000, True)
    assert session.result.values == {"account": "12345"}


@pytest.mark.parametrize("entry", ["123#", "1234567#", "12*4#"])
def test_collect_rejects_bad_length_or_pattern(tmp_path, entry):
    session, actions = call(flows(tmp_path, main=COLLECT.format(extra="")), Digits(entry))
    assert asked(actions)[1] == ("pm-invalid-option", "please-try-again", "custom/enter-account")
    assert not session.finished


def test_collect_luhn_check(tmp_path):
    flow_set = flows(tmp_path, main=COLLECT.format(extra="luhn = true").replace("max_len = 6", "max_len = 16"))
    assert call(flow_set, Digits("79927398713"))[0].result.values == {"account": "79927398713"}
    assert not call(flow_set, Digits("79927398710"))[0].result.values


def test_collect_verified_by_crm_identifies_the_customer(tmp_path):
    flow_set = flows(tmp_path, main=COLLECT.format(extra='lookup = "customer_by_account"'))
    session, actions = call(flow_set, Digits("12345#"), LookupResult("customer_by_account", True, {"tier": "gold"}))
    assert Lookup("customer_by_account", "12345") in actions
    assert session.result.customer == {"tier": "gold"} and session.result.customer_account == "12345"
    assert session.result.values == {"account": "12345"}


def test_collect_not_found_by_crm_asks_again(tmp_path):
    flow_set = flows(tmp_path, main=COLLECT.format(extra='lookup = "validate_account"'))
    session, actions = call(flow_set, Digits("99999#"), LookupResult("validate_account", False))
    assert asked(actions)[1][0] == "pm-invalid-option"
    assert session.result.values == {}


def test_collect_falls_back_when_the_crm_does_not_answer(tmp_path):
    flow_set = flows(tmp_path, main=COLLECT.format(extra='lookup = "validate_account"'))
    session, _ = call(flow_set, Digits("12345#"), Timeout())
    assert session.result.outcome.queue == "operator"
    assert session.result.notes[0] == "lookup validate_account at main:account got no answer (Timeout)"


CONFIRM = COLLECT.format(extra="").replace('next = "done"', 'next = "check"') + """
[nodes.check]
kind = "confirm"
value = "account"
yes = "done"
no = "account"
"""


def test_confirm_reads_the_entry_back(tmp_path):
    session, actions = call(flows(tmp_path, main=CONFIRM), Digits("12345#"), Digits("1"))
    assert actions[1:4] == [Play(("you-entered",)), SayDigits("12345"),
                            CollectDigits(("if-correct-press", "digits/1"), 1, 1, "", 5000, True)]
    assert session.result.outcome.kind == OutcomeKind.HANGUP


def test_confirm_two_re_enters(tmp_path):
    session, actions = call(flows(tmp_path, main=CONFIRM), Digits("12345#"), Digits("2"), Digits("5555#"), Digits("1"))
    assert session.result.values == {"account": "5555"}
    assert session.result.path == ["main:account", "main:check", "main:account", "main:check", "main:done"]


def test_confirm_retry_plays_the_retry_prompt_before_the_read_back(tmp_path):
    _, actions = call(flows(tmp_path, main=CONFIRM), Digits("12345#"), Digits("7"))
    assert actions[-3:-1] == [Play(("pm-invalid-option", "please-try-again", "you-entered")), SayDigits("12345")]


LOOKUP = ENTRY + """
[nodes.who]
kind = "set"
values = { account = "12345" }
next = "balance"
[nodes.balance]
kind = "lookup"
lookup = "balance"
key = "account"
next = "say"
not_found = "agent"
[nodes.say]
kind = "say"
as = "money"
value = "balance"
prompts = ["custom/your-balance-is"]
after = ["custom/thanks"]
next = "bye"
[nodes.bye]
kind = "hangup"
outcome = "self_service_completed"
[nodes.agent]
kind = "queue"
queue = "billing"
"""


def test_balance_self_service(tmp_path):
    session, actions = call(flows(tmp_path, main=LOOKUP), LookupResult("balance", True, {"balance": 1234}))
    assert actions[0] == Lookup("balance", "12345")
    assert actions[1:8] == [Play(("custom/your-balance-is",)), SayNumber(12), Play(("digits/dollars",)),
                            Play(("vm-and",)), SayNumber(34), Play(("cents",)), Play(("custom/thanks",))]
    assert session.result.values == {"account": "12345", "balance": 1234}
    assert session.result.outcome.kind == OutcomeKind.SELF_SERVICE_COMPLETED


@pytest.mark.parametrize("answer", [LookupResult("balance", False), Timeout(), LookupResult("status", True, {})])
def test_lookup_not_found_or_unanswered_takes_not_found(tmp_path, answer):
    session, _ = call(flows(tmp_path, main=LOOKUP), answer)
    assert session.result.outcome.queue == "billing"


def test_value_that_cannot_be_said_is_skipped_with_a_note(tmp_path):
    session, actions = call(flows(tmp_path, main=LOOKUP), LookupResult("balance", True, {"balance": "n/a"}))
    assert not any(isinstance(action, SayNumber | Play) for action in actions)
    assert session.result.notes == ["main:say skipped: balance='n/a' cannot be said as money"]


@pytest.mark.parametrize(("say_as", "value", "spoken"), [
    ("number", "42", [SayNumber(42)]),
    ("digits", "0042", [SayDigits("0042")]),
    ("date", "2025-03-14", [Play(("digits/day-5", "digits/mon-2", "digits/h-14")), SayNumber(2025)]),
])
def test_say_as_number_digits_date(tmp_path, say_as, value, spoken):
    text = ENTRY + f"""
[nodes.v]
kind = "set"
values = {{ x = "{value}" }}
next = "say"
[nodes.say]
kind = "say"
as = "{say_as}"
value = "x"
next = "bye"
[nodes.bye]
kind = "hangup"
"""
    _, actions = call(flows(tmp_path, main=text))
    assert actions[:len(spoken)] == spoken


# -- conditions -----------------------------------------------------------------------------

CONDITION = ENTRY + """
[calendars.office]
timezone = "America/New_York"
holidays = ["12-25"]
[calendars.office.hours]
mon-fri = "08:00-18:00"

[nodes.route]
kind = "condition"
branches = [
    { holiday = "office", goto = "holiday" },
    { open = "office", tier = ["gold"], goto = "vip" },
    { dnis = ["200"], goto = "second_line" },
    { value = "customer.name", matches = "J.*", goto = "j_names" },
    { open = "office", goto = "open" },
]
else = "closed"

[nodes.holiday]
kind = "hangup"
[nodes.vip]
kind = "queue"
queue = "vip"
[nodes.second_line]
kind = "queue"
queue = "second"
[nodes.j_names]
kind = "queue"
queue = "j"
[nodes.open]
kind = "queue"
queue = "open"
[nodes.closed]
kind = "voicemail"
mailbox = "100@default"
"""


@pytest.mark.parametrize(("now", "dnis", "customer", "reached"), [
    (NOW, "100", None, "main:open"),
    (datetime(2025, 3, 14, 23, 0, tzinfo=timezone.utc), "100", None, "main:closed"),
    (datetime(2025, 12, 25, 15, 0, tzinfo=timezone.utc), "100", {"tier": "gold"}, "main:holiday"),
    (NOW, "100", {"tier": "gold"}, "main:vip"),
    (datetime(2025, 3, 14, 23, 0, tzinfo=timezone.utc), "100", {"tier": "gold"}, "main:closed"),  # all tests hold
    (NOW, "200", None, "main:second_line"),
    (NOW, "100", {"name": "Jane"}, "main:j_names"),
])
def test_first_branch_whose_tests_all_hold_wins(tmp_path, now, dnis, customer, reached):
    session, _ = call(flows(tmp_path, main=CONDITION), dnis=dnis, now=now, customer=customer)
    assert session.result.path[-1] == reached


@pytest.mark.parametrize(("test", "holds"), [
    ('equals = "12345"', True), ('equals = "1"', False), ('one_of = ["9", "12345"]', True),
    ("present = true", True), ("present = false", False),
])
def test_value_tests(tmp_path, test, holds):
    text = ENTRY + f"""
[nodes.set]
kind = "set"
values = {{ account = "12345" }}
next = "check"
[nodes.check]
kind = "condition"
branches = [{{ value = "account", {test}, goto = "yes" }}]
else = "no"
[nodes.yes]
kind = "hangup"
[nodes.no]
kind = "queue"
queue = "no"
"""
    session, _ = call(flows(tmp_path, main=text))
    assert (session.result.path[-1] == "main:yes") is holds


def test_epoch_seconds_are_accepted_as_the_clock(tmp_path):
    session, _ = call(flows(tmp_path, main=CONDITION), now=NOW.timestamp())
    assert session.result.path[-1] == "main:open"


def test_naive_time_is_refused(tmp_path):
    with pytest.raises(ValueError, match="aware"):
        IvrSession(flows(tmp_path, main=MENU), "100", "", datetime(2025, 3, 14, 10, 0))


# -- endings --------------------------------------------------------------------------------

def ending(node: str) -> str:
    return ENTRY + "[nodes.end]\n" + node


def test_voicemail(tmp_path):
    session, actions = call(flows(tmp_path, main=ending('kind = "voicemail"\nmailbox = "100@default"\n')))
    assert actions == [Voicemail("100@default"), Finish(session.result)]
    assert session.result.outcome == Outcome(OutcomeKind.VOICEMAIL, mailbox="100@default")


def test_transfer_to_an_outside_number(tmp_path):
    session, actions = call(flows(tmp_path, main=ending('kind = "transfer"\nnumber = "18005550199"\n')))
    assert actions[0] == Transfer("18005550199")
    assert session.result.outcome == Outcome(OutcomeKind.EXTERNAL, number="18005550199")


def test_callback_to_the_caller_number_then_hangup(tmp_path):
    session, actions = call(flows(tmp_path, main=ending('kind = "callback"\nprompts = ["auth-thankyou"]\n')))
    assert actions == [Play(("auth-thankyou",)), CallbackRequest("5551234"), Hangup(), Finish(session.result)]
    assert session.result.outcome == Outcome(OutcomeKind.CALLBACK, number="5551234")


def test_callback_without_a_number_goes_to_the_operator(tmp_path):
    session, _ = call(flows(tmp_path, main=ending('kind = "callback"\nnumber_from = "callback_number"\n')))
    assert session.result.outcome.queue == "operator"
    assert session.result.notes == ["no number to call back at main:end"]


def test_caller_hangup_leaves_a_partial_result_and_later_inputs_are_ignored(tmp_path):
    session, actions = call(flows(tmp_path, main=MENU), CallerHangup())
    assert actions[-1] == Finish(session.result)
    assert session.result.partial and session.result.outcome.kind == OutcomeKind.CALLER_HANGUP
    assert session.feed(Digits("1"), NOW) == []


def test_result_is_plain_json(tmp_path):
    session, _ = call(flows(tmp_path, main=MENU), Digits("1"))
    data = json.loads(json.dumps(session.result.as_dict()))
    assert data["outcome"] == {"kind": "to_queue", "queue": "sales", "skills": ["sales", "en"], "priority": 3,
                               "mailbox": "", "number": ""}
    assert data["choices"] == [["main:menu", "1"]]


def test_start_twice_or_feed_before_start_is_a_programming_error(tmp_path):
    session = IvrSession(flows(tmp_path, main=MENU), "100", "", NOW)
    with pytest.raises(RuntimeError):
        session.feed(Timeout(), NOW)
    session.start()
    with pytest.raises(RuntimeError):
        session.start()


# -- goto, sub-flows, entry by DNIS, step limit ---------------------------------------------

def test_goto(tmp_path):
    text = ENTRY + '[nodes.a]\nkind = "goto"\ntarget = "b"\n[nodes.b]\nkind = "hangup"\n'
    assert call(flows(tmp_path, main=text))[0].result.path == ["main:a", "main:b"]


SUBFLOW_CALLER = ENTRY + """
[nodes.identify]
kind = "subflow"
flow = "identify"
next = "after"
[nodes.after]
kind = "condition"
branches = [{ value = "account", present = true, goto = "known" }]
else = "unknown"
[nodes.known]
kind = "queue"
queue = "known"
[nodes.unknown]
kind = "queue"
queue = "unknown"
"""
SUBFLOW = """
[nodes.ask]
kind = "collect"
prompts = ["custom/enter-account"]
store = "account"
next = "back"
[nodes.back]
kind = "return"
"""


def test_subflow_returns_to_the_caller_with_its_values(tmp_path):
    session, _ = call(flows(tmp_path, main=SUBFLOW_CALLER, identify=SUBFLOW), Digits("42#"))
    assert session.result.path == ["main:identify", "identify:ask", "identify:back", "main:after", "main:known"]
    assert session.result.values == {"account": "42"}


def test_fallback_inside_a_subflow_ends_the_call(tmp_path):
    session, _ = call(flows(tmp_path, main=SUBFLOW_CALLER, identify=SUBFLOW), Timeout(), Timeout(), Timeout())
    assert session.result.outcome.queue == "operator"


def test_return_without_a_caller_falls_back(tmp_path):
    session, _ = call(flows(tmp_path, main=ENTRY + '[nodes.back]\nkind = "return"\n'))
    assert session.result.outcome.queue == "operator"
    assert session.result.notes == ["main returned but no flow called it"]


def test_each_dnis_reaches_its_flow_and_others_the_default(tmp_path):
    other = '[flow]\ndnis = ["200", "201"]\n[nodes.end]\nkind = "hangup"\n'
    flow_set = flows(tmp_path, main=MENU, other=other)
    assert IvrSession(flow_set, "201", "", NOW).result.flow == "other"
    assert IvrSession(flow_set, "999", "", NOW).result.flow == "main"
    assert IvrSession(flow_set, "100", "", NOW, flow="other").result.flow == "other"


def test_no_flow_for_the_dnis(tmp_path):
    flow_set = flows(tmp_path, main='[flow]\ndnis = ["200"]\n[nodes.end]\nkind = "hangup"\n')
    with pytest.raises(NoFlowForDnis):
        IvrSession(flow_set, "100", "", NOW)


def test_step_limit_ends_a_caller_loop_at_the_operator(tmp_path):
    text = MENU.replace("default = true", "default = true\nmax_steps = 5")
    session, actions = call(flows(tmp_path, main=text), *[Digits("9")] * 10)
    assert session.finished and session.result.outcome.queue == "operator"
    assert session.result.path == ["main:menu"] * 5
    assert session.result.notes == ["step limit 5 reached before main:menu"]


# -- survey ---------------------------------------------------------------------------------

def survey() -> FlowSet:
    return load_flows(EXAMPLE_FLOWS / "survey.toml")


def test_survey_scores_each_question():
    session, actions = call(survey(), Digits("5"), Digits("4"), Digits("3"), flow="survey")
    assert session.result.scores == {"courtesy": 5, "resolution": 4, "overall": 3}
    assert asked(actions)[0] == ("custom/survey-courtesy",)
    assert session.result.outcome.kind == OutcomeKind.SELF_SERVICE_COMPLETED and not session.result.partial


def test_survey_rejects_keys_off_the_scale():
    session, actions = call(survey(), Digits("0"), Digits("6"), flow="survey")
    assert asked(actions)[1] == ("pm-invalid-option", "custom/survey-courtesy")
    assert session.result.scores == {}  # both tries failed: the question is skipped
    assert asked(actions)[2] == ("custom/survey-resolution",)


def test_survey_hangup_midway_is_partial():
    session, _ = call(survey(), Digits("5"), CallerHangup(), dnis="900")
    assert session.result.scores == {"courtesy": 5}
    assert session.result.partial and session.result.outcome.kind == OutcomeKind.CALLER_HANGUP


# -- every input sequence ends --------------------------------------------------------------

inputs = st.one_of(
    # Single keys often, so menus are answered as well as entries typed.
    st.builds(Digits, st.sampled_from(list("0123456789*#")) | st.text(alphabet="0123456789*#", max_size=12)),
    st.just(Timeout()),
    st.builds(LookupResult, st.sampled_from([*LOOKUP_KINDS, "other"]), st.booleans(),
              st.fixed_dictionaries({}, optional={"balance": st.integers(-10**6, 10**6) | st.text(max_size=4),
                                                  "tier": st.sampled_from(["gold", "silver"])})),
    st.just(CallerHangup()),
)


def answers_until_finished(flow_set: FlowSet, events: list, now: datetime = NOW, flow: str | None = None) -> int:
    """Feeds ``events`` over and over; a bound on the answers proves no loop runs forever."""
    session = IvrSession(flow_set, "100", "5551234", now, flow=flow)
    max_steps = flow_set.flows[session.result.flow].max_steps
    # A node visit takes at most retries + 1 answers (the flows here allow 2 retries), twice
    # that when the CRM checks each answer.
    bound = max_steps * 2 * 3 + 1
    session.start()
    for answered, event in enumerate(itertools.cycle(events or [Timeout()])):
        if session.finished:
            return answered
        assert answered < bound
        session.feed(event, NOW)


@pytest.fixture(scope="module")
def example_flows() -> FlowSet:
    return load_flows(EXAMPLE_FLOWS)


@pytest.fixture(scope="module")
def looping_menu(tmp_path_factory) -> FlowSet:
    text = MENU.replace("default = true", "default = true\nmax_steps = 30")  # option 9 repeats the menu
    return flows(tmp_path_factory.mktemp("looping"), main=text)


@settings(max_examples=150, deadline=None)
@given(events=st.lists(inputs, max_size=40), flow=st.sampled_from(["main", "survey"]),
       now=st.sampled_from([NOW, datetime(2025, 3, 14, 23, 0, tzinfo=timezone.utc)]))
def test_example_flows_finish_whatever_the_caller_does(example_flows, events, flow, now):
    answers_until_finished(example_flows, events, now, flow)


# Answers that keep the looping menu going: repeat it, or fail it less than three times in a row.
looping_answers = st.sampled_from([Digits("9"), Digits("5"), Digits(""), Timeout(), LookupResult("balance", True)])


@settings(max_examples=100, deadline=None)
@given(events=st.lists(looping_answers | inputs, min_size=1, max_size=20))
def test_a_looping_menu_finishes_whatever_the_caller_does(looping_menu, events):
    answers_until_finished(looping_menu, events)
