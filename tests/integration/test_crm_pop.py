"""GET /api/crm/pop: our record comes even when the external CRM is down, merged when it answers."""

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.http.crm_api import CrmStore
from cti.http.server import build_app
from cti.metrics import Metrics
from crm_bridge.api_clients import DatabaseTokens, create_client
from crm_bridge.customers import CustomerRepository
from crm_bridge.external import ExternalCrm
from tests.conftest import free_tcp_port
from tests.integration.crm_support import PHONES, database_fixture  # noqa: F401


async def pop_client(database, external):
    app = build_app(Metrics(), {}, DatabaseTokens(database.pool), CrmStore.from_pool(database.pool, PHONES, external))
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, await create_client(database.pool, "crm-app", "crm")


async def contacts(request: web.Request) -> web.Response:
    return web.json_response({"open_tickets": 2, "phone": request.query["p"]})


@pytest.mark.parametrize("external_up", [True, False])
async def test_pop_merges_the_external_crm_or_comes_without_it(database, external_up):
    customers = CustomerRepository(database.pool, PHONES)
    await customers.create(customers.parse({"name": "José Müller", "phones": ["+4915123456789"]}))
    crm = web.Application()
    crm.router.add_get("/contacts", contacts)
    crm_server = TestServer(crm, port=free_tcp_port())
    if external_up:
        await crm_server.start_server()
    port = crm_server.port
    async with aiohttp.ClientSession() as session:
        external = ExternalCrm(session, f"http://127.0.0.1:{port}/contacts?p={{e164}}", timeout=2)
        client, token = await pop_client(database, external)
        try:
            response = await client.get("/api/crm/pop", params={"phone": "+49 151 23456789"},
                                        headers={"Authorization": f"Bearer {token}"})
            assert response.status == 200
            pop = await response.json()
            assert pop["customer"]["name"] == "José Müller"
            if external_up:
                assert pop["external_status"] == "ok" and pop["external"]["open_tickets"] == 2
            else:
                assert pop["external_status"] == "unavailable" and not pop["external"]
            missing = await client.get("/api/crm/pop", headers={"Authorization": f"Bearer {token}"})
            assert missing.status == 422 and "phone" in (await missing.json())["errors"]
        finally:
            await client.close()
            await crm_server.close()
