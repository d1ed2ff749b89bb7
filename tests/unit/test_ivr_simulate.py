from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.flow import load_flows
from ivr.result import OutcomeKind
from ivr.simulate import run_cli, simulate

pytestmark = pytest.mark.unit

EXAMPLE_FLOWS = Path(__file__).resolve().parents[2] / "config" / "flows"
FRIDAY_MORNING = datetime(2025, 3, 14, 10, 0, tzinfo=ZoneInfo("America/New_York"))
JANE = {"12345": {"account": "12345", "name": "Jane", "tier": "silver", "balance": "1234"}}


def test_billing_with_account_entry_and_balance():
    run = simulate(load_flows(EXAMPLE_FLOWS), "100", "1,12345#,1,1", FRIDAY_MORNING, JANE)
    assert run.path == [
        "main:office_hours", "main:welcome", "main:main_menu", "main:billing",
        "identify:ask_account", "identify:confirm_account", "identify:find_customer", "identify:done",
        "main:billing_menu", "main:balance", "main:say_balance", "main:after_balance", "main:goodbye",
    ]
    assert run.result.values == {"account": "12345", **JANE["12345"]}
    assert run.result.customer == JANE["12345"] and run.result.customer_account == "12345"
    assert run.result.outcome.kind == OutcomeKind.SELF_SERVICE_COMPLETED
    # The script ran out at the last menu: a timeout there means the caller is done.
    assert run.result.notes == ["timeout answer at main:after_balance after 1 try"]
    assert run.prompts[:4] == ["hello", "custom/welcome", "custom/main-menu", "custom/enter-account"]
    assert "custom/your-balance-is" in run.prompts
    assert "  caller presses 12345#" in run.transcript and "say digits 12345" in run.transcript


def test_unknown_account_is_asked_again():
    run = simulate(load_flows(EXAMPLE_FLOWS), "100", "1,99999#,1,12345#,1,2", FRIDAY_MORNING, JANE)
    assert run.path[4:9] == ["identify:ask_account", "identify:confirm_account", "identify:find_customer",
                             "identify:unknown_account", "identify:ask_account"]
    assert run.result.outcome.queue == "billing"


def test_after_hours_callback_to_another_number():
    evening = FRIDAY_MORNING.replace(hour=21)
    run = simulate(load_flows(EXAMPLE_FLOWS), "100", "3,5550199#,1", evening, ani="")
    assert run.result.outcome.kind == OutcomeKind.CALLBACK and run.result.outcome.number == "5550199"
    assert run.path[:3] == ["main:office_hours", "main:after_hours", "after_hours:closed"]


def test_holiday_message_then_after_hours():
    christmas = datetime(2025, 12, 25, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    run = simulate(load_flows(EXAMPLE_FLOWS), "101", "1", christmas)
    assert run.path[:3] == ["main:office_hours", "main:holiday_greeting", "main:after_hours"]
    assert run.result.outcome.kind == OutcomeKind.VOICEMAIL


def test_survey_hangup_midway_is_partial():
    run = simulate(load_flows(EXAMPLE_FLOWS), "900", "4,hangup", FRIDAY_MORNING)
    assert run.result.scores == {"courtesy": 4} and run.result.partial
    assert str(run).endswith("outcome: caller_hangup (partial)")


def test_cli_validate_examples(capsys):
    assert run_cli(["validate", str(EXAMPLE_FLOWS)]) == 0
    assert capsys.readouterr().out == "flows ok (0 warning(s))\n"


def test_cli_validate_reports_file_and_line_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[nodes.a]\nkind = "goto"\ntarget = "nowhere"\n')
    assert run_cli(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"{bad}:3: goto 'a': target points to unknown node 'nowhere'\ncti ivr: 1 error(s) in the flows\n"


def test_cli_simulate(capsys):
    code = run_cli(["simulate", str(EXAMPLE_FLOWS / "main.toml"), "--dnis", "100", "--digits", "1,12345#,1,1",
                    "--at", "2025-03-14T10:00-04:00", "--lookup", "account=12345:name=Jane,balance=1234"])
    out = capsys.readouterr().out
    assert code == 0
    assert "say number 12" in out and "outcome: self_service_completed" in out
    assert "customer: {'account': '12345', 'name': 'Jane', 'balance': '1234'} (account 12345)" in out


def test_cli_simulate_a_flow_by_name_with_a_known_customer(capsys):
    code = run_cli(["simulate", str(EXAMPLE_FLOWS), "--flow", "survey", "--digits", "5,5,5", "--customer", "tier=gold"])
    assert code == 0 and "scores: {'courtesy': 5, 'resolution': 5, 'overall': 5}" in capsys.readouterr().out


@pytest.mark.parametrize("arguments", [
    ["--at", "2025-03-14T10:00"],  # no offset
    ["--lookup", "12345"],
    ["--flow", "nope"],
])
def test_cli_simulate_rejects_bad_arguments_with_2(arguments, capsys):
    assert run_cli(["simulate", str(EXAMPLE_FLOWS), *arguments]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_simulate_invalid_flows_exit_2(tmp_path, capsys):
    (tmp_path / "main.toml").write_text('[nodes.a]\nkind = "dance"\n')
    assert run_cli(["simulate", str(tmp_path)]) == 2
    assert "main.toml:2: dance 'a': unknown kind 'dance'" in capsys.readouterr().err
