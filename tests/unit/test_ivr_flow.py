from pathlib import Path

import pytest

from ivr.flow import FlowError, load_flows, validate_flows
from ivr.nodes import CollectNode, MenuNode, PassesLuhn, Readback, WithinScale

pytestmark = pytest.mark.unit

EXAMPLE_FLOWS = Path(__file__).resolve().parents[2] / "config" / "flows"


def problems_in(tmp_path: Path, **texts: str) -> list[str]:
    """Every problem of the flows, as ``file:line: message`` with the file named relative to tmp_path."""
    for name, text in texts.items():
        (tmp_path / f"{name}.toml").write_text(text)
    return [str(problem).removeprefix(f"{tmp_path}/") for problem in validate_flows(tmp_path)]


def test_example_flows_validate_cleanly():
    assert validate_flows(EXAMPLE_FLOWS) == []
    assert set(load_flows(EXAMPLE_FLOWS).flows) == {"main", "identify", "after_hours", "survey"}


def test_a_flow_file_loads_the_subflows_it_calls_from_its_folder():
    assert set(load_flows(EXAMPLE_FLOWS / "main.toml").flows) == {"main", "identify", "after_hours"}


BILLING = """\
[flow]
dnis = ["100"]

[nodes.billing]
kind = "menu"
prompts = ["custom/billing-menu"]
options = { "1" = "balance", "2" = "agent", "4" = "agent" }

[nodes.balance]
kind = "hangup"

[nodes.agent]
kind = "queue"
queue = "billing"
"""


def test_menu_with_a_skipped_digit_is_a_warning_at_its_options_line(tmp_path):
    assert problems_in(tmp_path, main=BILLING) == [
        "main.toml:7: warning: menu 'billing' has no option for digit 3 and no default"]
    assert [str(w).rsplit("/", 1)[1] for w in load_flows(tmp_path).warnings] == [
        "main.toml:7: warning: menu 'billing' has no option for digit 3 and no default"]


def test_unknown_target_is_reported_at_the_line_naming_it(tmp_path):
    text = BILLING.replace('"4" = "agent"', '"3" = "agnet"')
    assert problems_in(tmp_path, main=text) == ["main.toml:7: menu 'billing': option 3 points to unknown node 'agnet'"]


def test_unreachable_node(tmp_path):
    text = BILLING + '\n[nodes.forgotten]\nkind = "hangup"\n'
    assert "main.toml:16: hangup 'forgotten' is unreachable from the start node 'billing'" in problems_in(
        tmp_path, main=text)


def test_missing_required_key_is_reported_at_the_node(tmp_path):
    text = BILLING.replace('queue = "billing"\n', "")
    assert problems_in(tmp_path, main=text)[-1] == "main.toml:12: queue 'agent': missing 'queue'"


def test_unknown_kind_and_unknown_key(tmp_path):
    text = BILLING.replace('kind = "hangup"', 'kind = "hang_up"').replace('queue = "billing"', 'queu = "billing"')
    assert problems_in(tmp_path, main=text)[1:] == [
        "main.toml:10: hang_up 'balance': unknown kind 'hang_up'; known: play, menu, confirm, collect, rating, "
        "condition, set, lookup, say, queue, voicemail, callback, transfer, hangup, goto, subflow, return",
        "main.toml:12: queue 'agent': missing 'queue'",
        "main.toml:14: queue 'agent': unknown key 'queu'",
    ]


def test_wrong_types_and_bounds(tmp_path):
    text = BILLING.replace('kind = "menu"', 'kind = "menu"\ntimeout_ms = "5s"\nretries = -1')
    assert problems_in(tmp_path, main=text)[:2] == [
        "main.toml:6: menu 'billing': 'timeout_ms' must be an integer, got '5s'",
        "main.toml:7: menu 'billing': 'retries' must be >= 0, got -1",
    ]


COLLECT = """\
[nodes.account]
kind = "collect"
prompts = ["custom/enter-account"]
store = "account"
{extra}
next = "done"

[nodes.done]
kind = "hangup"
"""


@pytest.mark.parametrize(("extra", "problem"), [
    ('pattern = "[0-9+"', "main.toml:5: collect 'account': bad regular expression '[0-9+': "
                          "unterminated character set at position 0"),
    ("min_len = 8\nmax_len = 4", "main.toml:5: collect 'account': min_len 8 is more than max_len 4"),
    ('terminator = "0"', "main.toml:5: collect 'account': terminator must be '#', '*' or '', got '0'"),
    ('lookup = "credit_score"', "main.toml:5: collect 'account': unknown lookup 'credit_score'; known: "
                                "customer_by_account, balance, status, validate_account"),
])
def test_collect_mistakes(tmp_path, extra, problem):
    assert problems_in(tmp_path, main=COLLECT.format(extra=extra)) == [problem]


def test_toml_syntax_error_names_its_line(tmp_path):
    assert problems_in(tmp_path, main='[nodes.a]\nkind = "hangup"\nprompts = [\n"x" "y"]\n') == [
        "main.toml:4: not valid TOML: Unclosed array"]


def test_goto_loop_that_never_waits_is_an_error(tmp_path):
    text = """\
[nodes.a]
kind = "goto"
target = "b"

[nodes.b]
kind = "set"
values = { seen = true }
next = "a"
"""
    assert problems_in(tmp_path, main=text) == [
        "main.toml:1: goto 'a' loops through a -> b -> a without waiting for the caller"]


def test_subflow_cycle_and_missing_subflow(tmp_path):
    caller = '[nodes.call]\nkind = "subflow"\nflow = "{flow}"\nnext = "end"\n[nodes.end]\nkind = "hangup"\n'
    assert problems_in(tmp_path, a=caller.format(flow="b"), b=caller.format(flow="a"), c=caller.format(flow="zz")) == [
        "a.toml:3: sub-flow cycle: a -> b -> a",
        f"c.toml:3: sub-flow 'zz' not found (looked for {tmp_path}/zz.toml)",
    ]


def test_condition_mistakes_in_an_array_of_tables_name_their_branch_line(tmp_path):
    text = """\
[calendars.office]
timezone = "UTC"

[nodes.route]
kind = "condition"
else = "end"

[[nodes.route.branches]]
open = "office"
goto = "end"

[[nodes.route.branches]]
open = "shop"
value = "x"
goto = "end"

[nodes.end]
kind = "hangup"
"""
    assert problems_in(tmp_path, main=text) == [
        "main.toml:13: condition 'route' branch 2: no calendar 'shop' in this file",
        "main.toml:14: condition 'route' branch 2: 'value' needs exactly one of equals, one_of, matches, present",
    ]


def test_two_flows_cannot_share_a_dnis_or_both_be_default(tmp_path):
    flow = '[flow]\ndnis = ["100"]\ndefault = true\n[nodes.end]\nkind = "hangup"\n'
    assert problems_in(tmp_path, a=flow, b=flow) == [
        "b.toml:2: DNIS '100' is already answered by flow 'a'",
        "b.toml:3: flow 'a' is already the default",
    ]


def test_unknown_table_and_defaults_key(tmp_path):
    text = '[defaults]\nretries = 1\nprompts = ["x"]\n[node.a]\nkind = "hangup"\n[nodes.end]\nkind = "hangup"\n'
    assert problems_in(tmp_path, main=text) == [
        "main.toml:3: [defaults]: unknown key 'prompts'",
        "main.toml:4: unknown table 'node'; a flow file has flow, defaults, calendars, nodes",
    ]


def test_empty_folder_and_missing_file(tmp_path):
    assert [p.message for p in validate_flows(tmp_path)] == ["no *.toml flow files in this folder"]
    assert validate_flows(tmp_path / "nope.toml")[0].message.startswith("cannot read the file")


def test_load_flows_raises_with_every_problem(tmp_path):
    (tmp_path / "main.toml").write_text('[nodes.a]\nkind = "goto"\ntarget = "nowhere"\n')
    with pytest.raises(FlowError) as caught:
        load_flows(tmp_path)
    assert str(caught.value) == f"{tmp_path}/main.toml:3: goto 'a': target points to unknown node 'nowhere'"


def test_confirm_and_rating_are_read_as_menu_and_collect(tmp_path):
    text = """\
[nodes.rate]
kind = "rating"
prompts = ["custom/q1"]
store = "q1"
highest = 9
next = "check"

[nodes.check]
kind = "confirm"
value = "q1"
yes = "end"
no = "rate"

[nodes.end]
kind = "hangup"
"""
    (tmp_path / "main.toml").write_text(text)
    nodes = load_flows(tmp_path).flows["main"].nodes
    assert isinstance(nodes["rate"], CollectNode) and nodes["rate"].checks == (WithinScale(1, 9),)
    assert isinstance(nodes["check"], MenuNode) and nodes["check"].options == {"1": "end", "2": "rate"}
    assert nodes["check"].readback == Readback("q1", ("you-entered",))


def test_retry_prompts_one_list_for_all_or_one_per_retry(tmp_path):
    text = COLLECT.format(extra='luhn = true\ninvalid_prompts = ["custom/bad"]\n'
                                'timeout_prompts = [["custom/t1"], ["custom/t2"]]')
    (tmp_path / "main.toml").write_text(text)
    node = load_flows(tmp_path).flows["main"].nodes["account"]
    assert node.checks == (PassesLuhn(),)
    assert node.retry.invalid_prompts == (("custom/bad",),)
    assert node.retry.timeout_prompts == (("custom/t1",), ("custom/t2",))
