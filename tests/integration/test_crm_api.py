import csv
import io

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cti.http import crm_api
from cti.http.crm_api import CrmStore
from cti.http.server import build_app
from cti.metrics import Metrics
from crm_bridge.api_clients import DatabaseTokens, create_client
from crm_bridge.interactions import InteractionOutcome
from crm_bridge.logger import InteractionLogger
from tests.integration.crm_support import PHONES, database_fixture, sample_call  # noqa: F401


@pytest.fixture
async def api(database):
    pool = database.pool
    tokens = {role: await create_client(pool, f"{role}-app", role) for role in ("crm", "supervisor", "operator")}
    app = build_app(Metrics(), {}, DatabaseTokens(pool), CrmStore.from_pool(pool, PHONES))
    client = TestClient(TestServer(app))
    await client.start_server()
    client.tokens = tokens
    yield client
    await client.close()


def auth(client, role: str = "crm") -> dict:
    return {"Authorization": f"Bearer {client.tokens[role]}"}


JOSE = {"name": "José Müller", "tier": "gold", "vip": True, "notes": "prefers German",
        "phones": ["030 1234567", "+49 151 23456789"], "account_numbers": ["A-1001"]}


async def create(client, body=JOSE) -> dict:
    response = await client.post("/api/crm/customers", json=body, headers=auth(client))
    assert response.status == 201, await response.text()
    return await response.json()


async def test_customer_lifecycle(api):
    created = await create(api)
    assert created["phones"] == ["+49301234567", "+4915123456789"]
    assert created["account_numbers"] == ["A-1001"] and created["tier"] == "gold" and created["vip"] is True
    path = f"/api/crm/customers/{created['id']}"

    response = await api.get(path, headers=auth(api, "supervisor"))
    assert response.status == 200 and (await response.json())["name"] == "José Müller"

    response = await api.patch(path, json={"churn_risk": True, "phones": ["0049 30 7654321"]}, headers=auth(api))
    changed = await response.json()
    assert changed["churn_risk"] is True and changed["phones"] == ["+49307654321"] and changed["name"] == "José Müller"

    response = await api.delete(path, headers=auth(api))
    assert response.status == 204
    assert (await api.get(path, headers=auth(api))).status == 404
    assert (await api.delete(path, headers=auth(api))).status == 404


async def test_lookup_by_phone_in_any_notation_and_by_account(api):
    created = await create(api)
    for phone in ("+49301234567", "030/123 45 67", "0049 (0)30 1234567"):
        response = await api.get("/api/crm/customers", params={"phone": phone}, headers=auth(api))
        assert [c["id"] for c in (await response.json())["items"]] == [created["id"]], phone
    response = await api.get("/api/crm/customers", params={"account": "A-1001"}, headers=auth(api))
    assert [c["id"] for c in (await response.json())["items"]] == [created["id"]]
    response = await api.get("/api/crm/customers", params={"account": "nobody"}, headers=auth(api))
    assert (await response.json())["items"] == []


async def test_bad_customer_input_answers_422_per_field(api):
    body = {"name": "", "tier": "diamond", "vip": "yes", "value_score": 101, "phones": ["1001"],
            "account_numbers": ["A 1"], "colour": "red"}
    response = await api.post("/api/crm/customers", json=body, headers=auth(api))
    assert response.status == 422
    errors = (await response.json())["errors"]
    assert set(errors) == {"name", "tier", "vip", "value_score", "phones", "account_numbers", "colour"}
    assert errors["tier"] == "must be one of bronze, silver, gold, platinum"
    assert errors["colour"] == "unknown field"
    assert "not a phone number" in errors["phones"]

    response = await api.post("/api/crm/customers", json={"tier": "gold"}, headers=auth(api))
    assert (await response.json())["errors"] == {"name": "is required"}

    response = await api.post("/api/crm/customers", data=b"{not json", headers=auth(api))
    assert response.status == 422 and (await response.json())["errors"] == {"body": "is not valid JSON"}


async def test_an_account_number_belongs_to_one_customer(api):
    await create(api)
    response = await api.post("/api/crm/customers", json={"name": "Other", "account_numbers": ["A-1001"]},
                              headers=auth(api))
    assert response.status == 422
    assert (await response.json())["errors"] == {"account_numbers": "already used by another customer: A-1001"}
    response = await api.get("/api/crm/customers", params={"account": "A-1001"}, headers=auth(api))
    assert [c["name"] for c in (await response.json())["items"]] == ["José Müller"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Bearer cti_000000000000000000_secret"}])
async def test_requests_without_a_valid_token_answer_401(api, headers):
    response = await api.get("/api/crm/interactions", headers=headers)
    assert response.status == 401 and (await response.json())["error"] == "missing or invalid bearer token"


async def test_a_forged_secret_with_a_real_token_id_answers_401(api):
    forged = api.tokens["crm"].rsplit("_", 1)[0] + "_forged"
    response = await api.get("/api/crm/interactions", headers={"Authorization": f"Bearer {forged}"})
    assert response.status == 401


async def test_an_address_sending_bad_tokens_is_refused_before_any_token_is_checked(api, monkeypatch):
    for _ in range(50):
        assert (await api.get("/api/crm/interactions", headers={"Authorization": "Bearer nope"})).status == 401

    async def must_not_run(self, token):
        raise AssertionError("a token was checked")

    monkeypatch.setattr(DatabaseTokens, "_verify", must_not_run)
    forged = api.tokens["crm"].rsplit("_", 1)[0] + "_forged"
    for token in (api.tokens["crm"], forged):  # even a good one, from this address, for now
        response = await api.get("/api/crm/interactions", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 429 and 1 <= int(response.headers["Retry-After"]) <= 300
        assert "too many invalid tokens" in (await response.json())["error"]
    assert (await api.get("/api/crm/interactions")).status == 401  # no token: nothing to throttle


@pytest.mark.parametrize("role, method, path, status", [
    ("supervisor", "POST", "/api/crm/customers", 403),
    ("supervisor", "DELETE", "/api/crm/customers/1", 403),
    ("operator", "GET", "/api/crm/interactions", 403),
    ("supervisor", "GET", "/api/crm/interactions", 200),
])
async def test_roles(api, role, method, path, status):
    response = await api.request(method, path, json={"name": "X"}, headers=auth(api, role))
    assert response.status == status


@pytest.fixture
async def calls(database, tmp_path):
    """Twelve calls: two agents, two queues, three abandoned, one from another number."""
    logger = InteractionLogger(database.pool, tmp_path / "spool.jsonl", PHONES, flush_interval=0.01)
    await logger.start()
    for n in range(12):
        logger.put(sample_call(
            n, agents=("a100",) if n % 2 else ("a200", "a100"), queue="sales" if n < 8 else "support",
            outcome=InteractionOutcome.ABANDONED if n in (3, 4, 5) else InteractionOutcome.COMPLETED,
            ani="+1 212 555 0142" if n == 7 else "030 1234567"))
    await logger.close()


async def linkedids(api, params) -> list[str]:
    response = await api.get("/api/crm/interactions", params=params, headers=auth(api))
    assert response.status == 200, await response.text()
    return [item["linkedid"].split(".")[1] for item in (await response.json())["items"]]


async def test_filters(api, calls):
    assert await linkedids(api, {"queue": "support"}) == ["11", "10", "9", "8"]
    assert await linkedids(api, {"agent": "a200", "queue": "sales"}) == ["6", "4", "2", "0"]
    assert await linkedids(api, {"outcome": "abandoned"}) == ["5", "4", "3"]
    assert await linkedids(api, {"outcome": "abandoned;transferred", "sort": "started_at"}) == ["3", "4", "5"]
    assert await linkedids(api, {"phone": "+12125550142"}) == ["7"]
    assert await linkedids(api, {"from": "2024-05-01T08:00:02Z", "to": "2024-05-01T10:00:05+02:00"}) == \
        ["4", "3", "2"]


async def test_cursor_pages_cover_everything_once_in_order(api, calls):
    for sort, expected in (("-started_at", list(range(11, -1, -1))), ("started_at", list(range(12)))):
        seen, params = [], {"limit": "5", "sort": sort}
        while True:
            response = await api.get("/api/crm/interactions", params=params, headers=auth(api))
            page = await response.json()
            seen += [int(item["linkedid"].split(".")[1]) for item in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == expected


async def test_bad_query_answers_422_per_field(api, calls):
    params = {"limit": "0", "outcome": "lost", "from": "yesterday", "to": "2024-05-01T08:00:00",
              "sort": "name; DROP TABLE interactions", "cursor": "garbage", "phone": "abc", "page": "2"}
    response = await api.get("/api/crm/interactions", params=params, headers=auth(api))
    assert response.status == 422
    errors = (await response.json())["errors"]
    assert set(errors) == {"limit", "outcome", "from", "to", "sort", "phone", "page"}
    assert errors["to"] == "needs a time zone offset, e.g. Z or +02:00"

    first = await (await api.get("/api/crm/interactions", params={"limit": "2"}, headers=auth(api))).json()
    for cursor, sort in (("garbage!", "-started_at"), (first["next_cursor"], "started_at")):
        response = await api.get("/api/crm/interactions", params={"cursor": cursor, "sort": sort}, headers=auth(api))
        assert response.status == 422 and set((await response.json())["errors"]) == {"cursor"}


async def test_one_interaction_with_its_timeline(api, calls):
    listed = (await (await api.get("/api/crm/interactions", params={"limit": "1"}, headers=auth(api))).json())
    interaction_id = listed["items"][0]["id"]
    response = await api.get(f"/api/crm/interactions/{interaction_id}", headers=auth(api, "supervisor"))
    body = await response.json()
    assert body["linkedid"] == "1700000000.11" and body["ivr_data"] == {"account": "A-1"}
    assert [event["kind"] for event in body["timeline"]] == ["started", "queued", "ended"]
    assert body["timeline"][0]["detail"] == {"channel": "PJSIP/trunk-11"}
    assert (await api.get("/api/crm/interactions/999999", headers=auth(api))).status == 404


async def test_csv_export_streams_the_filtered_rows(api, calls):
    response = await api.get("/api/crm/interactions/export.csv", params={"queue": "sales", "sort": "started_at"},
                             headers=auth(api))
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [row["linkedid"] for row in rows] == [f"1700000000.{n}" for n in range(8)]
    assert rows[0]["agents"] == "a200;a100" and rows[0]["phone_e164"] == "+49301234567"
    assert rows[0]["ivr_data"] == '{"account": "A-1"}'

    response = await api.get("/api/crm/interactions/export.csv", params={"limit": "5"}, headers=auth(api))
    assert response.status == 422  # paging belongs to the listing, not the export


async def test_openapi_document_describes_every_route(api):
    response = await api.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.")
    served = {(resource.canonical, route.method.lower()) for resource in api.app.router.resources()
              for route in resource if resource.canonical.startswith("/api/")}
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert len(served) == len(documented) == len(crm_api.ROUTES)
    listing = document["paths"]["/api/crm/interactions"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"customer_id", "phone", "agent", "queue", "outcome",
                                                          "from", "to", "sort", "limit", "cursor"}
    assert listing["x-roles"] == ["crm", "supervisor"] and set(listing["responses"]) == {"200", "401", "403", "422"}
    create_body = document["components"]["schemas"]["CustomerCreate"]
    assert create_body["required"] == ["name"] and "phones" in create_body["properties"]
