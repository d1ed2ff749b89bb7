"""The ACD file: its format, every problem it reports by key path, the dict round trip."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import pytest

from acd.config import (
    AcdConfigError,
    AcdDefinitions,
    AgentDefinition,
    agent_to_dict,
    content_sha256,
    definitions_to_dict,
    load_acd_file,
    parse_acd,
    parse_agent,
    parse_queue,
    queue_to_dict,
    read_acd_file,
)
from acd.engine import AcdEngine
from acd.model import DEFAULT_TIER_PRIORITIES, Disposition, DispositionKind, OverflowStep, QueueSettings, Strategy
from ivr.flow import load_flows
from ivr.nodes import QueueNode

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "acd.toml"

BASE = tomllib.loads("""
[queues.support]
skills = "support>=50"
final_action = { kind = "callback" }
[[queues.support.overflow]]
after_seconds = 60
lower_thresholds = { support = 20 }
[[queues.support.overflow]]
after_seconds = 120
add_queues = ["sales"]

[queues.sales]
skills = "sales"

[agents.1001]
name = "Alice"
interface = "PJSIP/1001"
skills = { support = 80, sales = 40 }

[agents.1002]
name = "Bob"
interface = "PJSIP/1002"
""")


def problems_of(edit) -> list[str]:
    """The error lines of BASE after ``edit(document)``."""
    document = copy.deepcopy(BASE)
    edit(document)
    with pytest.raises(AcdConfigError) as caught:
        parse_acd(document, "acd.toml")
    return str(caught.value).splitlines()


def support(document: dict) -> dict:
    return document["queues"]["support"]


def alice(document: dict) -> dict:
    return document["agents"]["1001"]


QUEUE_KEYS = ("announce_every, announce_first_after, calendar, callback, closed_action, ewt_limit_seconds, "
              "final_action, initial_aht_seconds, max_wait_seconds, max_waiting, overflow, ring_timeout, "
              "service_level_seconds, short_abandon_seconds, skills, strategy, survey_flow, weight, wrap_up_seconds")

ERRORS = {
    "a value of the wrong type": (
        lambda d: support(d).update(ring_timeout="abc"),
        "queues.support.ring_timeout: expected a number > 0, got 'abc'"),
    "a negative wrap-up": (
        lambda d: support(d).update(wrap_up_seconds=-1),
        "queues.support.wrap_up_seconds: expected a number >= 0, got -1"),
    "a boolean for a number": (
        lambda d: support(d).update(weight=True),
        "queues.support.weight: expected a number > 0, got True"),
    "an unknown queue key": (
        lambda d: support(d).update(ringtimeout=15),
        f"queues.support.ringtimeout: unknown key (allowed: {QUEUE_KEYS})"),
    "an unknown top-level table": (
        lambda d: d.update(queue={}),
        "queue: unknown key (allowed: agents, queues, tiers)"),
    "an unknown strategy": (
        lambda d: support(d).update(strategy="fastest"),
        "queues.support.strategy: expected one of longest_idle, most_skilled, fewest_calls, round_robin, "
        "got 'fastest'"),
    "a missing requirement": (
        lambda d: support(d).pop("skills"),
        "queues.support.skills: missing (required)"),
    "a bad requirement": (
        lambda d: support(d).update(skills="support>="),
        "queues.support.skills: not a skill requirement: expected a proficiency 1-100 after '>=', "
        "found end of expression at column 10: 'support>='"),
    "a bad alternative in an overflow step": (
        lambda d: support(d)["overflow"][1].update(add_skills="generalist |"),
        "queues.support.overflow[1].add_skills: not a skill requirement: expected a skill name or '(', "
        "found end of expression at column 13: 'generalist |'"),
    "an overflow step naming an unknown queue": (
        lambda d: support(d)["overflow"][1].update(add_queues=["sales", "salse"]),
        "queues.support.overflow[1].add_queues: no queue named 'salse'"),
    "overflow steps out of order": (
        lambda d: support(d)["overflow"][1].update(after_seconds=30),
        "queues.support.overflow[1].after_seconds: expected more than 60 (the step before), got 30"),
    "a step lowering a skill the queue does not require": (
        lambda d: support(d)["overflow"][0].update(lower_thresholds={"suport": 20}),
        "queues.support.overflow[0].lower_thresholds.suport: not a skill of the queue's requirement "
        "'support>=50'"),
    "a threshold out of range": (
        lambda d: support(d)["overflow"][0].update(lower_thresholds={"support": 0}),
        "queues.support.overflow[0].lower_thresholds.support: expected an integer 1-100, got 0"),
    "an unknown overflow key": (
        lambda d: support(d)["overflow"][0].update(after=5),
        "queues.support.overflow[0].after: unknown key (allowed: add_queues, add_skills, after_seconds, "
        "lower_thresholds)"),
    "overflow that is not a list of tables": (
        lambda d: support(d).update(overflow={"after_seconds": 5}),
        "queues.support.overflow: expected a list of tables ([[queues.support.overflow]]), "
        "got {'after_seconds': 5}"),
    "a final action to an unknown queue": (
        lambda d: support(d).update(final_action={"kind": "queue", "target": "nowhere"}),
        "queues.support.final_action.target: no queue named 'nowhere'"),
    "a final action without its target": (
        lambda d: support(d).update(final_action={"kind": "voicemail"}),
        "queues.support.final_action.target: missing (required by kind voicemail)"),
    "an unknown final action": (
        lambda d: support(d).update(final_action={"kind": "pray"}),
        "queues.support.final_action.kind: expected one of voicemail, callback, queue, external, "
        "message_hangup, got 'pray'"),
    "final actions that loop": (
        lambda d: (support(d).update(final_action={"kind": "queue", "target": "sales"}),
                   d["queues"]["sales"].update(final_action={"kind": "queue", "target": "support"})),
        "final actions of kind queue loop: support -> sales -> support"),
    "a callback policy without attempts": (
        lambda d: support(d).update(callback={"max_attempts": 0}),
        "queues.support.callback.max_attempts: expected an integer >= 1, got 0"),
    "a queue name that is no plain name": (
        lambda d: d["queues"].update({"tech support": {"skills": "support"}}),
        'queues."tech support": expected a name of letters, digits, _ . - (at most 64, not starting '
        "with _ . -)"),
    "a queue that is not a table": (
        lambda d: d["queues"].update(billing="billing>=50"),
        "queues.billing: expected a table, got 'billing>=50'"),
    "an agent skill above 100": (
        lambda d: alice(d)["skills"].update(support=150),
        "agents.1001.skills.support: expected an integer 1-100, got 150"),
    "an agent skill below 1": (
        lambda d: alice(d)["skills"].update(support=0),
        "agents.1001.skills.support: expected an integer 1-100, got 0"),
    "an agent skill that no requirement could name": (
        lambda d: alice(d)["skills"].update({"first aid": 50}),
        'agents.1001.skills."first aid": not a skill name (a letter or _, then letters, digits, _ . -)'),
    "an agent without an interface": (
        lambda d: alice(d).pop("interface"),
        "agents.1001.interface: missing (required)"),
    "an interface that is no dial string": (
        lambda d: alice(d).update(interface="1001"),
        "agents.1001.interface: expected a dial string TECH/RESOURCE such as \"PJSIP/1001\", got '1001'"),
    "two agents on one interface": (
        lambda d: d["agents"]["1002"].update(interface="PJSIP/1001"),
        "agents.1002.interface: 'PJSIP/1001' is also the interface of agent '1001'"),
    "an unknown agent key": (
        lambda d: alice(d).update(extension="1001"),
        "agents.1001.extension: unknown key (allowed: device, interface, name, skills)"),
    "opening hours in an unknown time zone": (
        lambda d: support(d).update(calendar={"timezone": "Mars/Olympus", "hours": {"mon-fri": "08:00-18:00"}}),
        "queues.support.calendar: calendar: unknown time zone 'Mars/Olympus'"),
    "opening hours that cross midnight": (
        lambda d: support(d).update(calendar={"timezone": "UTC", "hours": {"fri": "22:00-02:00"}}),
        "queues.support.calendar: calendar hours: '22:00-02:00' is not an opening range like '08:00-18:00' "
        "within one day"),
    "opening hours that are no table": (
        lambda d: support(d).update(calendar="9 to 5"),
        "queues.support.calendar: expected a table of timezone, hours and holidays, got '9 to 5'"),
    "a closed queue's action that would keep the caller waiting": (
        lambda d: support(d).update(closed_action={"kind": "queue", "target": "sales"}),
        "queues.support.closed_action: kind: expected one of message_hangup, voicemail, external, got 'queue'"),
    "a tier priority that is no integer": (
        lambda d: d.update(tiers={"gold": "high"}),
        "tiers.gold: expected an integer, got 'high'"),
}


@pytest.mark.parametrize("edit, message", ERRORS.values(), ids=ERRORS.keys())
def test_each_problem_is_reported_with_the_source_and_key_path(edit, message):
    assert problems_of(edit) == [f"acd.toml: {message}"]


def test_every_problem_is_reported_at_once():
    def edit(document):
        support(document).update(ring_timeout=0, strategy="fastest")
        alice(document)["skills"].update(support=101)
    assert problems_of(edit) == [
        "acd.toml: queues.support.strategy: expected one of longest_idle, most_skilled, fewest_calls, "
        "round_robin, got 'fastest'",
        "acd.toml: queues.support.ring_timeout: expected a number > 0, got 0",
        "acd.toml: agents.1001.skills.support: expected an integer 1-100, got 101",
    ]


def test_the_base_document_is_valid_and_fills_in_defaults():
    definitions = parse_acd(BASE, "acd.toml")
    assert definitions.queue("sales") == QueueSettings("sales", "sales")
    assert definitions.queue("support").overflow == (
        OverflowStep(60.0, lower_thresholds={"support": 20}), OverflowStep(120.0, add_queues=("sales",)))
    assert definitions.queue("support").final_action == Disposition(DispositionKind.CALLBACK)
    assert definitions.agent("1002") == AgentDefinition("1002", "Bob", "PJSIP/1002", "PJSIP/1002", {})
    assert definitions.queue("billing") is None and definitions.agent("9999") is None
    assert definitions.tier_priorities == DEFAULT_TIER_PRIORITIES


# --- the example file -----------------------------------------------------------------------


def test_the_example_file_builds_an_engine():
    definitions = load_acd_file(EXAMPLE)
    AcdEngine(definitions.settings())
    assert [queue.name for queue in definitions.queues] == ["operator", "billing", "support", "sales"]
    assert [agent.agent_id for agent in definitions.agents] == ["1001", "1002", "1003", "1004"]
    assert definitions.tier_priorities == {"platinum": 20, "gold": 10, "silver": 5, "bronze": 0}
    assert definitions.queue("sales").strategy is Strategy.ROUND_ROBIN


def test_the_example_file_defines_every_queue_the_example_flows_use():
    flows = load_flows(REPO / "config" / "flows")
    used = {node.queue for flow in flows.flows.values() for node in flow.nodes.values()
            if isinstance(node, QueueNode)}
    used |= {flow.operator_queue for flow in flows.flows.values()}
    assert used <= {queue.name for queue in load_acd_file(EXAMPLE).queues}


def test_settings_carry_the_agents_and_the_engine_options():
    definitions = load_acd_file(EXAMPLE)
    settings = definitions.settings(aht_smoothing=0.5)
    assert settings.aht_smoothing == 0.5 and settings.tier_priorities["platinum"] == 20
    assert settings.agents[0].interface == "PJSIP/1001" and settings.agents[0].skills["support"] == 80


# --- round trip -----------------------------------------------------------------------------


def test_definitions_survive_a_round_trip_through_json():
    definitions = load_acd_file(EXAMPLE)
    assert parse_acd(json.loads(json.dumps(definitions_to_dict(definitions))), "db") == definitions


def test_opening_hours_are_kept_as_written_and_survive_the_round_trip():
    calendar = {"timezone": "Europe/Paris", "holidays": ["12-25"], "hours": {"mon-fri": "08:00-18:00"}}
    queue = parse_queue("support", {"skills": "support", "calendar": calendar,
                                    "closed_action": {"kind": "voicemail", "target": "support@default"}}, "request")
    assert queue.calendar == calendar
    assert queue.closed_action == Disposition(DispositionKind.VOICEMAIL, "support@default")
    assert parse_queue("support", json.loads(json.dumps(queue_to_dict(queue))), "db") == queue


def test_the_example_files_commented_opening_hours_are_valid():
    """config/acd.toml shows opening hours commented out (a demo must not close at night)."""
    text = EXAMPLE.read_text().replace("# calendar = ", "calendar = ").replace("# closed_action = ", "closed_action = ")
    sales = parse_acd(tomllib.loads(text), "acd.toml").queue("sales")
    assert sales.calendar["hours"]["mon-fri"] == "08:00-20:00"
    assert sales.closed_action.kind is DispositionKind.VOICEMAIL

def test_queue_to_dict_is_the_file_format_with_unset_options_left_out():
    queue = QueueSettings("sales", "sales", strategy=Strategy.MOST_SKILLED,
                          overflow=(OverflowStep(30, add_skills="generalist"),))
    body = queue_to_dict(queue)
    assert "name" not in body and "max_waiting" not in body
    assert body["strategy"] == "most_skilled"
    assert body["overflow"] == [{"after_seconds": 30, "lower_thresholds": {}, "add_skills": "generalist",
                                 "add_queues": []}]
    assert parse_queue("sales", body, "request") == queue


def test_agent_to_dict_round_trips_an_explicit_and_an_empty_device():
    for device in ("PJSIP/desk-7", ""):
        agent = AgentDefinition("1001", "Alice", "PJSIP/trunk/sip:alice@10.0.0.7", device, {"support": 80})
        body = agent_to_dict(agent)
        assert body == {"name": "Alice", "interface": "PJSIP/trunk/sip:alice@10.0.0.7", "device": device,
                        "skills": {"support": 80}}
        assert parse_agent("1001", body, "request") == agent


@pytest.mark.parametrize("interface, device", [
    ("PJSIP/1001", "PJSIP/1001"),
    ("PJSIP/trunk/sip:agent1@127.0.0.1:5071", "PJSIP/trunk"),
    ("SIP/2000", "SIP/2000"),
])
def test_the_device_defaults_to_the_interface_up_to_its_second_slash(interface, device):
    assert AgentDefinition("a", "A", interface).device == device


def test_parse_queue_and_agent_report_their_own_problems():
    with pytest.raises(AcdConfigError, match=r"^request: queues\.vip\.weight: expected a number > 0, got -2$"):
        parse_queue("vip", {"skills": "support", "weight": -2}, "request")
    with pytest.raises(AcdConfigError, match=r"^request: agents\.1001: expected a table, got \[\]$"):
        parse_agent("1001", [], "request")
    with pytest.raises(AcdConfigError, match=r"^request: agents\._x: expected a name"):
        parse_agent("_x", {"name": "X", "interface": "PJSIP/x"}, "request")


def test_an_empty_document_is_valid():
    assert parse_acd({}, "db") == AcdDefinitions()


# --- files ----------------------------------------------------------------------------------


def test_a_toml_syntax_error_is_reported_with_its_line(tmp_path):
    path = tmp_path / "acd.toml"
    path.write_text('[queues.support]\nskills = "support"\n\n[queues.support]\nskills = "other"\n')
    with pytest.raises(AcdConfigError) as caught:
        load_acd_file(path)
    assert str(caught.value) == f"{path}:4: not valid TOML: Cannot declare ('queues', 'support') twice"


def test_an_unreadable_file_is_reported(tmp_path):
    with pytest.raises(AcdConfigError, match=r"missing\.toml: cannot read the file"):
        load_acd_file(tmp_path / "missing.toml")


def test_the_hash_follows_the_content_not_comments_or_layout(tmp_path):
    text = '[queues.sales]\nskills = "sales"\n'
    path = tmp_path / "acd.toml"
    path.write_text(text)
    _, first = read_acd_file(path)
    path.write_text("# the sales line\n" + text.replace(" = ", "   =   "))
    _, commented = read_acd_file(path)
    path.write_text(text + "ring_timeout = 20\n")
    _, changed = read_acd_file(path)
    assert first == commented == content_sha256(tomllib.loads(text)) != changed
