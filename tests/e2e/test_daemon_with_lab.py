"""`cti run --lab`: the README's first command, on its embedded defaults."""

import http.server
import threading
import time
from pathlib import Path

import pytest

from cti.lab.sipp import CallPlan, run_call
from crm_bridge.webhooks import verify_signature
from tests.unit.test_cli import cti
from tests.daemon import processes_mentioning, running_daemon


class WebhookReceiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass

HOOK_SECRET = "hook-secret-for-tests"


@pytest.fixture(scope="module")
def webhook_receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WebhookReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def daemon_with_lab(webhook_receiver):
    hook = {"CTI_CRM__WEBHOOKS__CRM__URL": f"http://127.0.0.1:{webhook_receiver.server_port}/hook",
            "CTI_CRM__WEBHOOKS__CRM__SECRET": HOOK_SECRET}
    with running_daemon("cti-test-run-lab-", "--lab", environ=hook,
                        CTI_LAB__SIP_PORT=True, CTI_LAB__AMI_PORT=True) as instance:
        yield instance


def test_readyz_answers_200_with_database_and_lab(daemon_with_lab):
    status, body = daemon_with_lab.get_json("/readyz", daemon_with_lab.token)
    assert status == 200, body
    assert body["components"]["database"]["ok"]
    assert body["components"]["ami.lab"] == {"ok": True, "detail": "connected to asterisk-lab"}


def test_a_call_runs_through_the_daemon_s_fastagi(daemon_with_lab):
    sip_port = int(daemon_with_lab.environ["CTI_LAB__SIP_PORT"])
    succeeded, complaint = run_call(CallPlan("5551234", "José Müller", "100", hold_ms=500), sip_port)
    assert succeeded, complaint
    _, metrics = daemon_with_lab.get("/metrics", daemon_with_lab.token)
    assert b'cti_agi_sessions_started_total{listener="agi"} 1.0' in metrics
    assert b'cti_agi_handler_errors_total{listener="agi"} 0.0' in metrics
    sessions = [e for e in daemon_with_lab.log_events() if e["event"] == "inbound.session"]
    assert sessions[0]["call_id"].startswith("asterisk-lab:") and sessions[0]["ani"] == "5551234"


def test_the_call_is_logged_once_and_served_to_crm_apps(daemon_with_lab):
    created = cti("crm", "client", "create", "crm-app", env=daemon_with_lab.environ)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert daemon_with_lab.get("/api/crm/interactions", daemon_with_lab.token)[0] == 403  # operator, not crm
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, body = daemon_with_lab.get_json("/api/crm/interactions", token)
        assert status == 200, body
        ours = [item for item in body["items"] if item["ani"] == "5551234"]
        if ours:
            break
        time.sleep(0.2)
    assert len(ours) == 1
    assert ours[0]["caller_name"] == "José Müller" and ours[0]["dnis"] == "100"
    assert ours[0]["outcome"] == "ivr_only" and ours[0]["system_name"] == "asterisk-lab"


def test_the_closed_call_reaches_the_webhook_signed(daemon_with_lab):
    deadline = time.monotonic() + 30
    while not WebhookReceiver.received and time.monotonic() < deadline:
        time.sleep(0.1)
    headers, body = WebhookReceiver.received[0]
    assert verify_signature(HOOK_SECRET, headers["X-CTI-Signature"], body, time.time())
    assert headers["X-CTI-Event-Id"] and "5551234" in body.decode()
    assert HOOK_SECRET not in daemon_with_lab.log.read_text()


def test_sigterm_leaves_no_postgres_or_asterisk(daemon_with_lab):
    data_dir = daemon_with_lab.data_dir
    asterisk_pid = int((data_dir / "lab" / "asterisk.pid").read_text())
    assert b"asterisk" in Path(f"/proc/{asterisk_pid}/cmdline").read_bytes()
    assert any("postgres" in command for command in processes_mentioning(str(data_dir)))
    assert daemon_with_lab.terminate() == 0
    assert processes_mentioning(str(data_dir)) == []
    assert not Path(f"/proc/{asterisk_pid}").exists()
    assert not (data_dir / "lab" / "asterisk.pid").exists()
