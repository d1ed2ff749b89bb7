import subprocess
import sys

import pytest


def cti(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-m", "cti", *args], capture_output=True, text=True, input=stdin,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_help_lists_subcommands():
    result = cti("--help")
    assert result.returncode == 0
    for command in ("run", "check-config", "db", "lab"):
        assert command in result.stdout


@pytest.mark.parametrize("command", [["run"], ["check-config"], ["db", "status"], ["lab", "call"]])
def test_each_subcommand_has_help(command):
    result = cti(*command, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: cti " + " ".join(command))


def test_bad_config_exits_2_with_the_key_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[ami]\nport = "abc"\n')
    result = cti("check-config", str(bad))
    assert result.returncode == 2
    assert "ami.port: expected an integer 1-65535, got 'abc'" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_refuses_bad_environment_before_starting_anything():
    result = cti("run", env={"CTI_HTTP__PORT": "eighty"})
    assert result.returncode == 2
    assert "http.port: expected an integer 1-65535, got 'eighty'" in result.stderr


def test_good_config_is_accepted(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text("[http]\nport = 8081\n")
    result = cti("check-config", str(good))
    assert result.returncode == 0 and "valid" in result.stdout


def test_ivr_validate_reports_file_and_line_and_exits_2(tmp_path):
    flow = tmp_path / "bad.toml"
    flow.write_text('[nodes.start]\nkind = "menu"\nprompts = ["x"]\noptions = { "1" = "nowhere" }\n')
    result = cti("ivr", "validate", str(flow))
    assert result.returncode == 2
    assert f"{flow}:4: menu 'start': option 1 points to unknown node 'nowhere'" in result.stdout + result.stderr


def test_example_flows_validate(tmp_path):
    from tests.conftest import REPO_ROOT
    result = cti("ivr", "validate", str(REPO_ROOT / "config" / "flows"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_sim_takes_its_own_options():
    result = cti("sim", "--agents", "14", "--hours", "0.5", "--seed", "3")
    assert result.returncode == 0 and "14 agents" in result.stdout and "service level" in result.stdout


def test_passthrough_does_not_leak_unknown_options_to_other_commands():
    assert cti("check-config", "--bogus").returncode == 2
