"""Webhooks from the outbox and the external CRM lookup, against real local aiohttp servers."""

import asyncio
import time

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from crm_bridge.customers import CustomerRepository
from crm_bridge.external import ExternalCrm, screen_pop
from crm_bridge.logger import InteractionLogger
from crm_bridge.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    WebhookDispatcher,
    WebhookEndpoint,
    sign,
    verify_signature,
)
from tests.integration.crm_support import PHONES, database_fixture, eventually, sample_call  # noqa: F401

SECRET = "webhook-secret"


class FlakyReceiver:
    """A CRM's webhook endpoint that answers 503 to the first ``failures`` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[str, bytes, bool]] = []  # (event id, body, signature valid)
        self.accepted: dict[str, dict] = {}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        event_id = request.headers[EVENT_ID_HEADER]
        valid = verify_signature(SECRET, request.headers[SIGNATURE_HEADER], body, now=time.time())
        self.requests.append((event_id, body, valid))
        if len(self.requests) <= self.failures:
            return web.Response(status=503)
        self.accepted.setdefault(event_id, orjson.loads(body))  # de-duplicated on the event id
        return web.Response(status=204)


@pytest.fixture
async def receiver():
    flaky = FlakyReceiver(failures=3)
    app = web.Application()
    app.router.add_post("/hooks", flaky.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    flaky.url = str(server.make_url("/hooks"))
    yield flaky
    await server.close()


async def log_calls(database, tmp_path, *records) -> None:
    logger = InteractionLogger(database.pool, tmp_path / "spool.jsonl", PHONES,
                               webhook_endpoints=["crm"], flush_interval=0.01)
    await logger.start()
    for record in records:
        logger.put(record)
    await logger.close()


async def test_a_closed_call_is_delivered_signed_after_retries(database, tmp_path, receiver):
    await log_calls(database, tmp_path, sample_call(1, closed=False), sample_call(1), sample_call(2, closed=False))
    dispatcher = WebhookDispatcher(database.pool, {"crm": WebhookEndpoint(receiver.url, SECRET)},
                                   poll_interval=0.02, base_delay=0.01, max_delay=0.05)
    await dispatcher.start()
    try:
        await eventually(lambda: receiver.accepted, "the receiver to accept the event")
    finally:
        await dispatcher.close()

    assert len(receiver.requests) == 4  # three refusals, then accepted
    assert len({event_id for event_id, _, _ in receiver.requests}) == 1  # the same id on every retry
    assert all(valid for _, _, valid in receiver.requests)
    (event,) = receiver.accepted.values()
    assert event["type"] == "interaction.closed" and event["interaction"]["linkedid"] == "1700000000.1"
    assert event["interaction"]["outcome"] == "completed"
    row = await database.pool.fetchrow("SELECT attempts, delivered_at, last_error FROM webhook_outbox")
    assert row["attempts"] == 4 and row["delivered_at"] is not None and row["last_error"] is None


async def test_an_endpoint_that_never_accepts_is_given_up_after_max_attempts(database, tmp_path, receiver):
    receiver.failures = 10**6
    await log_calls(database, tmp_path, sample_call(1))
    dispatcher = WebhookDispatcher(database.pool, {"crm": WebhookEndpoint(receiver.url, SECRET)},
                                   poll_interval=0.02, base_delay=0.01, max_delay=0.02, max_attempts=3)
    await dispatcher.start()
    try:
        await eventually(lambda: database.pool.fetchval("SELECT failed_at IS NOT NULL FROM webhook_outbox"),
                         "the dispatcher to give up")
    finally:
        await dispatcher.close()
    row = await database.pool.fetchrow("SELECT attempts, failed_at, last_error FROM webhook_outbox")
    assert row["attempts"] == 3 and row["failed_at"] is not None and row["last_error"] == "HTTP 503"


def test_signature_rejects_a_changed_body_a_wrong_secret_and_an_old_timestamp():
    header = sign(SECRET, 1_700_000_000, b'{"a":1}')
    assert verify_signature(SECRET, header, b'{"a":1}', now=1_700_000_010)
    assert not verify_signature(SECRET, header, b'{"a":2}', now=1_700_000_010)
    assert not verify_signature("other", header, b'{"a":1}', now=1_700_000_010)
    assert not verify_signature(SECRET, header, b'{"a":1}', now=1_700_001_000)
    assert not verify_signature(SECRET, "garbage", b'{"a":1}', now=1_700_000_010)


class ExternalCrmServer:
    """The external CRM: answers, 404s, is slow or fails, depending on the number asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.release_slow = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        phone = request.query["phone"]
        self.asked.append(phone)
        if phone == "+49301111111":
            await self.release_slow.wait()  # slower than any timeout of the test
        if phone == "+49302222222":
            return web.Response(status=500)
        if phone == "+49303333333":
            return web.json_response({"error": "no such customer"}, status=404)
        return web.json_response([{"crmId": "ext-7", "segment": "B2B", "openTickets": 2}])


@pytest.fixture
async def external_server():
    crm = ExternalCrmServer()
    app = web.Application()
    app.router.add_get("/api/customers", crm.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    crm.template = str(server.make_url("/api/customers")) + "?phone={e164}"
    yield crm
    crm.release_slow.set()
    await server.close()


@pytest.fixture
async def http_session():
    async with aiohttp.ClientSession() as session:
        yield session


async def test_screen_pop_merges_the_external_fields_and_caches_them(database, external_server, http_session):
    customers = CustomerRepository(database.pool, PHONES)
    await customers.create(customers.parse({"name": "José Müller", "phones": ["+49301234567"]}))
    external = ExternalCrm(http_session, external_server.template, timeout=5.0,
                           field_map={"crmId": "external_id", "openTickets": "open_tickets"})
    pop = await screen_pop(customers, external, PHONES, "030 1234567")
    assert pop["customer"]["name"] == "José Müller" and pop["external_status"] == "ok"
    assert pop["external"] == {"external_id": "ext-7", "open_tickets": 2}
    again = await screen_pop(customers, external, PHONES, "+49 30 1234567")
    assert again["external"] == pop["external"]
    assert external_server.asked == ["+49301234567"]  # the second pop came from the cache


@pytest.mark.parametrize("number, status", [
    ("030 1111111", "timeout"), ("030 2222222", "unavailable"), ("030 3333333", "not_found")])
async def test_a_slow_or_failing_external_crm_still_pops_our_record(database, external_server, http_session,
                                                                   number, status):
    customers = CustomerRepository(database.pool, PHONES)
    await customers.create(customers.parse({"name": "Erika Mustermann", "phones": [number]}))
    external = ExternalCrm(http_session, external_server.template, timeout=0.2)
    pop = await screen_pop(customers, external, PHONES, number)
    assert pop["customer"]["name"] == "Erika Mustermann"
    assert pop["external_status"] == status and pop["external"] == {}
    if status != "not_found":  # failures are not cached: the next call asks again
        await screen_pop(customers, external, PHONES, number)
        assert len(external_server.asked) == 2


async def test_an_unreachable_external_crm_is_unavailable(database, http_session):
    customers = CustomerRepository(database.pool, PHONES)
    external = ExternalCrm(http_session, "http://127.0.0.1:9/customers?phone={e164}", timeout=2.0)
    pop = await screen_pop(customers, external, PHONES, "030 1234567")
    assert pop == {"phone": "+49301234567", "customer": None, "customers": [], "external": {},
                   "external_status": "unavailable"}


def test_a_bad_url_template_fails_at_construction():
    with pytest.raises(KeyError):
        ExternalCrm(None, "https://crm.example/api?phone={number}")
