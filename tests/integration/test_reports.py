"""Historical reports over HTTP, each figure against values worked out by hand (docs/KPIS.md).

The seeded day is 2024-05-01 in Europe/Berlin (UTC+02:00): calls sit on both sides of 15-minute,
hour and local-day boundaries, and some of them fall on another UTC day than their local one.
"""

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cti.http.crm_api import CrmStore
from cti.http.server import build_app
from cti.metrics import Metrics
from crm_bridge.reports import Reports
from tests.integration.crm_support import PHONES, auth, database_fixture, role_tokens  # noqa: F401

BERLIN = ZoneInfo("Europe/Berlin")

# id, queued at (Berlin, 2024-), queue, outcome, wait, agents, talk, hold, wrap-up, survey.
# answered_at is set (queued + wait) exactly when talk is given.
CALLS = [
    ("S14", "05-01 01:30:00", "sales", "completed", 8, ["a2"], 40, None, None, None),  # 23:30 UTC on 30 April
    ("S1", "05-01 08:00:00", "sales", "completed", 5, ["a1"], 100, 0, 20, 5),
    ("S2", "05-01 08:05:00", "sales", "completed", 20, ["a2"], 200, 30, 10, 3),  # exactly T: within
    ("S3", "05-01 08:10:00", "sales", "completed", 21, ["a1"], 60, 0, 0, None),
    ("S4", "05-01 08:12:00", "sales", "abandoned", 3, [], None, None, None, None),  # short
    ("S5", "05-01 08:14:59", "sales", "abandoned", 40, [], None, None, None, None),
    ("S6", "05-01 08:15:00", "sales", "completed", 10, ["a2", "a3"], 120, 60, 30, 4),  # transfer: 2 agents
    ("S7", "05-01 08:20:00", "sales", "transferred", 15, ["a1"], 90, 0, 0, None),  # transfer: outcome
    ("S8", "05-01 08:25:00", "sales", "callback_requested", 50, [], None, None, None, None),
    ("S9", "05-01 08:29:00", "sales", "abandoned", 5, [], None, None, None, None),  # exactly 5 s: not short
    ("S10", "05-01 08:31:00", "sales", "overflowed", 120, [], None, None, None, None),
    ("S11", "05-01 08:40:00", "sales", "completed", 2, ["a3"], 30, 0, 0, None),
    ("S12", "05-01 08:44:00", "sales", "voicemail", 65, [], None, None, None, None),
    ("S17", "05-01 08:50:00", "sales", "failed", 7, [], 3, None, None, None),  # answered_at but no agent
    ("S13", "05-01 09:00:00", "sales", "completed", 0, ["a1"], 50, 10, 5, 2),
    ("S15", "05-01 23:59:59", "sales", "abandoned", 12, [], None, None, None, None),
    ("S16", "05-02 00:00:30", "sales", "completed", 4, ["a1"], 10, 0, 0, None),  # 22:00:30 UTC on 1 May
    ("X4", "04-30 23:59:00", "sales", "completed", 6, ["a2"], 60, 0, 0, None),
    ("P1", "05-01 10:00:00", "support", "completed", 30, ["a3"], 300, 0, 60, 1),
    ("P2", "05-01 10:05:00", "support", "completed", 12, ["a3"], 100, 20, 0, 5),
    ("P3", "05-01 10:10:00", "support", "abandoned", 2, [], None, None, None, None),
    ("P4", "05-01 10:20:00", "support", "abandoned", 25, [], None, None, None, None),
    ("P5", "05-01 10:50:00", "support", "transferred", 18, ["a2", "a1"], 80, 0, 20, None),
    ("P8", "05-01 10:59:59", "support", "completed", 1, ["a3"], 10, 0, 0, None),
    ("P6", "05-01 11:00:00", "support", "callback_requested", 90, [], None, None, None, None),
    ("P7", "05-01 11:30:00", "support", "lost_during_outage", 5, ["a3"], 20, None, None, None),
    # Not ACD-handled, so in no report: named a queue but never queued, no queue, outbound.
    ("X1", None, "sales", "ivr_only", None, [], None, None, None, None),
    ("X2", None, None, "ivr_only", None, [], None, None, None, None),
    ("X3", None, None, "completed", None, ["a1"], 45, None, None, 5),
]
_NOT_QUEUED_START = datetime(2024, 5, 1, 8, 7, tzinfo=BERLIN)


async def seed(pool) -> None:
    rows = []
    for linkedid, queued, queue, outcome, wait, agents, talk, hold, wrapup, survey in CALLS:
        queued_at = datetime.strptime(f"2024-{queued}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=BERLIN) if queued else None
        started_at = queued_at - timedelta(seconds=30) if queued_at else _NOT_QUEUED_START
        answered_at = (queued_at or started_at) + timedelta(seconds=wait or 0) if talk is not None else None
        rows.append(("pbx1", linkedid, "out" if linkedid == "X3" else "in", started_at, queue, queued_at,
                     answered_at, started_at + timedelta(minutes=20), agents, outcome, wait, talk, hold, wrapup,
                     survey))
    await pool.executemany(
        "INSERT INTO interactions (system_name, linkedid, direction, started_at, queue, queued_at, answered_at, "
        "ended_at, agents, outcome, wait_seconds, talk_seconds, hold_seconds, wrapup_seconds, survey_score) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)", rows)


async def start_app(pool) -> tuple:
    """The app with the reports, and a token per role (the agent's from a static token)."""
    authenticator, tokens = await role_tokens(pool, "a1")
    return build_app(Metrics(), {}, authenticator, CrmStore.from_pool(pool, PHONES), Reports(pool)), tokens


@pytest.fixture
async def api(database):
    await seed(database.pool)
    app, tokens = await start_app(database.pool)
    client = TestClient(TestServer(app))
    await client.start_server()
    client.tokens = tokens
    yield client
    await client.close()


async def report(client, kind: str, role: str = "supervisor", **params) -> dict:
    response = await client.get(f"/api/reports/{kind}", params=params, headers=auth(client, role))
    assert response.status == 200, await response.text()
    return await response.json()


QUEUE_FIGURES = ("offered", "answered", "abandoned", "short_abandoned", "answered_within_threshold",
                 "service_level_answered", "service_level_with_abandons", "asa_seconds", "aht_seconds",
                 "max_wait_seconds", "transfers", "callbacks", "survey_average", "survey_count")
AGENT_FIGURES = ("answered", "aht_seconds", "transferred", "received_by_transfer", "survey_average", "survey_count")


def assert_rows(rows: list[dict], key: str, figures: tuple[str, ...], expected: dict) -> None:
    """Rows in the expected order (bucket, then queue or agent), each figure as expected."""
    actual = {(row["bucket"], row[key]): tuple(row[name] for name in figures) for row in rows}
    assert list(actual) == list(expected)
    for where, values in expected.items():
        assert actual[where] == pytest.approx(values), where


#  offered answered abandoned short within  SL(answered) SL(+abandons)  ASA   AHT   max-wait transfers callbacks
#  survey-average survey-count
SALES_BY_15_MINUTES = {
    "2024-05-01T01:30:00+02:00": (1, 1, 0, 0, 1, 1.0, 1.0, 8.0, 40.0, 8.0, 0, 0, None, 0),
    "2024-05-01T08:00:00+02:00": (5, 3, 2, 1, 2, 2 / 3, 2 / 4, 46 / 3, 140.0, 40.0, 0, 0, 4.0, 2),
    "2024-05-01T08:15:00+02:00": (4, 2, 1, 0, 2, 1.0, 2 / 3, 12.5, 150.0, 50.0, 2, 1, 4.0, 1),
    "2024-05-01T08:30:00+02:00": (3, 1, 0, 0, 1, 1.0, 1.0, 2.0, 30.0, 120.0, 0, 0, None, 0),
    "2024-05-01T08:45:00+02:00": (1, 0, 0, 0, 0, None, None, None, None, 7.0, 0, 0, None, 0),
    "2024-05-01T09:00:00+02:00": (1, 1, 0, 0, 1, 1.0, 1.0, 0.0, 65.0, 0.0, 0, 0, 2.0, 1),
    "2024-05-01T23:45:00+02:00": (1, 0, 1, 0, 0, None, 0.0, None, None, 12.0, 0, 0, None, 0),
}
SALES_MAY_1 = (16, 8, 4, 1, 7, 7 / 8, 7 / 11, 81 / 8, 855 / 8, 120.0, 2, 1, 3.5, 4)
SUPPORT_MAY_1 = (8, 5, 2, 1, 4, 4 / 5, 4 / 6, 66 / 5, 610 / 5, 90.0, 1, 1, 3.0, 2)


async def test_queue_report_by_15_minutes_in_local_time(api):
    answer = await report(api, "queues", **{"from": "2024-05-01", "interval": "15m", "tz": "Europe/Berlin",
                                            "queue": "sales"})
    assert_rows(answer["rows"], "queue", QUEUE_FIGURES,
                {(bucket, "sales"): figures for bucket, figures in SALES_BY_15_MINUTES.items()})
    assert answer["query"] == {
        "from": "2024-05-01", "to": "2024-05-01", "interval": "15m", "tz": "Europe/Berlin", "queue": "sales",
        "agent": None, "service_level_seconds": 20, "short_abandon_seconds": 5,
        "window_start": "2024-05-01T00:00:00+02:00", "window_end": "2024-05-02T00:00:00+02:00"}


async def test_queue_report_by_local_day_and_by_hour(api):
    answer = await report(api, "queues", **{"from": "2024-05-01", "to": "2024-05-02", "interval": "day",
                                            "tz": "Europe/Berlin"})
    assert_rows(answer["rows"], "queue", QUEUE_FIGURES, {
        ("2024-05-01T00:00:00+02:00", "sales"): SALES_MAY_1,
        ("2024-05-01T00:00:00+02:00", "support"): SUPPORT_MAY_1,
        ("2024-05-02T00:00:00+02:00", "sales"): (1, 1, 0, 0, 1, 1.0, 1.0, 4.0, 10.0, 4.0, 0, 0, None, 0),
    })
    answer = await report(api, "queues", **{"from": "2024-05-01", "interval": "60m", "tz": "Europe/Berlin",
                                            "queue": "support"})
    assert_rows(answer["rows"], "queue", QUEUE_FIGURES, {
        ("2024-05-01T10:00:00+02:00", "support"): (6, 4, 2, 1, 3, 3 / 4, 3 / 5, 61 / 4, 590 / 4, 30.0, 1, 0, 3.0, 2),
        ("2024-05-01T11:00:00+02:00", "support"): (2, 1, 0, 0, 1, 1.0, 1.0, 5.0, 20.0, 90.0, 0, 1, None, 0),
    })


async def test_days_and_hours_follow_the_time_zone(api):
    async def offered(tz, interval, queue=None):
        params = {"from": "2024-04-30", "to": "2024-05-02", "interval": interval, "tz": tz}
        answer = await report(api, "queues", **params | ({"queue": queue} if queue else {}))
        return {(row["bucket"], row["queue"]): row["offered"] for row in answer["rows"]}

    # S14 (01:30 local) is 30 April in UTC, S16 (00:00:30 local on 2 May) is 1 May in UTC.
    assert await offered("Europe/Berlin", "day") == {
        ("2024-04-30T00:00:00+02:00", "sales"): 1, ("2024-05-01T00:00:00+02:00", "sales"): 16,
        ("2024-05-01T00:00:00+02:00", "support"): 8, ("2024-05-02T00:00:00+02:00", "sales"): 1}
    assert await offered("UTC", "day") == {
        ("2024-04-30T00:00:00+00:00", "sales"): 2, ("2024-05-01T00:00:00+00:00", "sales"): 16,
        ("2024-05-01T00:00:00+00:00", "support"): 8}
    # At +05:30, hours still start on the local hour: P1-P4 08:00-08:20 UTC, P5, P8, P6 08:50-09:00, P7 09:30.
    assert await offered("Asia/Kolkata", "60m", "support") == {
        ("2024-05-01T13:00:00+05:30", "support"): 4, ("2024-05-01T14:00:00+05:30", "support"): 3,
        ("2024-05-01T15:00:00+05:30", "support"): 1}


async def test_thresholds_are_parameters(api):
    answer = await report(api, "queues", **{"from": "2024-05-01", "interval": "day", "tz": "Europe/Berlin",
                                            "queue": "sales", "service_level_seconds": "10",
                                            "short_abandon_seconds": "13"})
    [row] = answer["rows"]
    # Within 10 s: S14, S1, S6, S11, S13. Short (< 13 s): S4, S9, S15.
    assert (row["answered_within_threshold"], row["short_abandoned"]) == (5, 3)
    assert (row["service_level_answered"], row["service_level_with_abandons"]) == pytest.approx((5 / 8, 5 / 9))


async def test_agent_report_counts_the_first_agent_and_transfers(api):
    answer = await report(api, "agents", **{"from": "2024-05-01", "interval": "day", "tz": "Europe/Berlin"})
    day = "2024-05-01T00:00:00+02:00"
    #  answered AHT transferred received-by-transfer survey-average survey-count
    assert_rows(answer["rows"], "agent", AGENT_FIGURES, {
        (day, "a1"): (4, 335 / 4, 1, 1, 3.5, 2),
        (day, "a2"): (4, 590 / 4, 2, 0, 3.5, 2),
        (day, "a3"): (5, 540 / 5, 0, 1, 3.0, 2),
    })
    # The agents' answered calls add up to the queues' (8 sales + 5 support).
    assert sum(row["answered"] for row in answer["rows"]) == 13

    answer = await report(api, "agents", role="crm", **{"from": "2024-05-01", "interval": "day",
                                                        "tz": "Europe/Berlin", "queue": "support"})
    assert_rows(answer["rows"], "agent", AGENT_FIGURES, {
        (day, "a1"): (0, None, 0, 1, None, 0),
        (day, "a2"): (1, 100.0, 1, 0, None, 0),
        (day, "a3"): (4, 510 / 4, 0, 0, 3.0, 2),
    })


async def test_agent_report_for_one_agent_by_15_minutes(api):
    answer = await report(api, "agents", **{"from": "2024-05-01", "interval": "15m", "tz": "Europe/Berlin",
                                            "agent": "a1"})
    assert_rows(answer["rows"], "agent", AGENT_FIGURES, {
        ("2024-05-01T08:00:00+02:00", "a1"): (2, 90.0, 0, 0, 5.0, 1),
        ("2024-05-01T08:15:00+02:00", "a1"): (1, 90.0, 1, 0, None, 0),
        ("2024-05-01T09:00:00+02:00", "a1"): (1, 65.0, 0, 0, 2.0, 1),
        ("2024-05-01T10:45:00+02:00", "a1"): (0, None, 0, 1, None, 0),
    })


async def test_an_empty_window_has_no_rows(api):
    answer = await report(api, "queues", **{"from": "2024-06-01", "interval": "15m"})
    assert answer["rows"] == []


async def test_csv_has_a_header_and_one_line_per_row(api):
    params = {"from": "2024-05-01", "interval": "15m", "tz": "Europe/Berlin", "queue": "sales"}
    response = await api.get("/api/reports/queues.csv", params=params, headers=auth(api, "crm"))
    assert response.status == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="queues-2024-05-01-2024-05-01-15m.csv"'
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [row["bucket"] for row in rows] == list(SALES_BY_15_MINUTES)
    assert rows[1] == {"bucket": "2024-05-01T08:00:00+02:00", "queue": "sales", "offered": "5", "answered": "3",
                       "abandoned": "2", "short_abandoned": "1", "answered_within_threshold": "2",
                       "service_level_answered": str(2 / 3), "service_level_with_abandons": "0.5",
                       "asa_seconds": str(46 / 3), "aht_seconds": "140.0", "max_wait_seconds": "40.0",
                       "transfers": "0", "callbacks": "0", "survey_average": "4.0", "survey_count": "2"}
    assert rows[4]["service_level_answered"] == "" and rows[4]["asa_seconds"] == ""

    response = await api.get("/api/reports/agents.csv", params=params | {"queue": "support"}, headers=auth(api))
    lines = (await response.text()).splitlines()
    assert lines == ["bucket,agent,answered,aht_seconds,transferred,received_by_transfer,survey_average,survey_count",
                     "2024-05-01T10:00:00+02:00,a3,2,240.0,0,0,3.0,2",
                     "2024-05-01T10:45:00+02:00,a1,0,,0,1,,0",
                     "2024-05-01T10:45:00+02:00,a2,1,100.0,1,0,,0",
                     "2024-05-01T10:45:00+02:00,a3,1,10.0,0,0,,0",
                     "2024-05-01T11:30:00+02:00,a3,1,20.0,0,0,,0"]


@pytest.mark.parametrize("path", ["/api/reports/queues", "/api/reports/agents.csv"])
async def test_without_a_token_401(api, path):
    response = await api.get(path, params={"from": "2024-05-01"})
    assert response.status == 401 and (await response.json())["error"] == "missing or invalid bearer token"


@pytest.mark.parametrize("role, status", [("supervisor", 200), ("crm", 200), ("operator", 403), ("agent", 403)])
async def test_roles(api, role, status):
    for path in ("/api/reports/queues", "/api/reports/agents", "/api/reports/queues.csv", "/api/reports/agents.csv"):
        response = await api.get(path, params={"from": "2024-05-01"}, headers=auth(api, role))
        assert response.status == status, path
    if status == 403:
        assert (await response.json())["error"] == f"role {role} may not use this endpoint"


@pytest.mark.parametrize("path, params, errors", [
    ("queues", {}, {"from": "is required"}),
    ("queues", {"from": "2024-13-01", "to": "yesterday"},
     {"from": "must be a date, e.g. 2024-05-01", "to": "must be a date, e.g. 2024-05-01"}),
    ("queues", {"from": "2024-05-01", "interval": "5m", "tz": "Mars/Olympus_Mons"},
     {"interval": "must be one of 15m, 30m, 60m, day", "tz": "must be an IANA time zone, e.g. Europe/Berlin or UTC"}),
    ("queues.csv", {"from": "2024-05-01", "service_level_seconds": "0", "short_abandon_seconds": "five"},
     {"service_level_seconds": "must be between 1 and 3600", "short_abandon_seconds": "must be an integer"}),
    ("queues", {"from": "2024-05-02", "to": "2024-05-01"}, {"to": "must not be before from"}),
    ("queues", {"from": "2024-05-01", "to": "2024-06-01", "interval": "15m"},
     {"to": "the range may span at most 31 days with interval=15m; use interval=day for longer ranges"}),
    ("agents", {"from": "2024-01-01", "to": "2025-01-01", "interval": "day"},
     {"to": "the range may span at most 366 days with interval=day"}),
    ("agents", {"from": "2024-05-01", "service_level_seconds": "20", "colour": "red"},
     {"service_level_seconds": "unknown field", "colour": "unknown field"}),
])
async def test_bad_parameters_answer_422_per_parameter(api, path, params, errors):
    response = await api.get(f"/api/reports/{path}", params=params, headers=auth(api))
    assert response.status == 422
    assert (await response.json()) == {"errors": errors}


async def test_the_longest_ranges_are_accepted(api):
    await report(api, "queues", **{"from": "2024-05-01", "to": "2024-05-31", "interval": "15m"})
    await report(api, "agents", **{"from": "2024-01-01", "to": "2024-12-31", "interval": "day"})


async def test_the_openapi_document_lists_the_reports_with_their_roles(api):
    document = await (await api.get("/api/openapi.json")).json()
    for path in ("/api/reports/queues", "/api/reports/queues.csv", "/api/reports/agents", "/api/reports/agents.csv"):
        operation = document["paths"][path]["get"]
        assert set(operation["x-roles"]) == {"crm", "supervisor"} and set(operation["responses"]) == {"200", "401", "403", "422"}
    assert "/api/crm/customers" in document["paths"]
