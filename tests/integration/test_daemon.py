import pytest

from tests.daemon import processes_mentioning, running_daemon


@pytest.fixture(scope="module")
def daemon():
    with running_daemon("cti-test-daemon-") as instance:
        yield instance


def test_healthz_is_open(daemon):
    assert daemon.get_json("/healthz") == (200, {"status": "alive"})


def test_readyz_reports_the_embedded_database(daemon):
    status, body = daemon.get_json("/readyz", daemon.token)
    assert status == 200, body
    assert body["components"]["database"]["ok"] is True and body["not_ready"] == []


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
def test_operator_endpoints_need_a_valid_token(daemon, path):
    assert daemon.get(path)[0] == 401
    assert daemon.get(path, "not-the-token")[0] == 401


def test_metrics_are_prometheus_text(daemon):
    status, body = daemon.get("/metrics", daemon.token)
    assert status == 200
    assert b"# TYPE process_resident_memory_bytes gauge" in body


def test_unknown_path_answers_json_404(daemon):
    status, body = daemon.get_json("/no/such/thing", daemon.token)
    assert status == 404 and body == {"error": "not found"}


def test_token_and_secrets_never_reach_the_log(daemon):
    log = daemon.log.read_text()
    assert daemon.token not in log
    password = next(daemon.data_dir.rglob("superuser.password")).read_text().strip()
    assert password not in log


def test_sigterm_stops_cleanly_and_leaves_no_postgres(daemon):
    assert daemon.terminate() == 0
    assert processes_mentioning(str(daemon.data_dir)) == []
    events = [e["event"] for e in daemon.log_events()]
    assert events.index("embedded_pg.stopped") < events.index("cti.stopped")
