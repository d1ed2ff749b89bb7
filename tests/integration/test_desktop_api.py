"""The agent desktop over HTTP and WebSocket (aiohttp's test client), on the real CRM store: login
with the argon2 secret, tokens and roles, the protocol's replies and errors, the screen-pop from
the database, takeover, logout refused on a call, the page's files."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from acd import AgentState, CallArrived
from acd.config import AcdDefinitions, AgentDefinition
from cti.acd_service import AcdService
from cti.desktop import build_desks
from cti.desktop.service import DeskSettings
from cti.desktop.sessions import token_digest
from cti.http.auth import FirstMatch, StaticTokens
from cti.http.crm_api import CrmStore
from cti.http.server import build_app
from cti.metrics import Metrics
from crm_bridge.agents import AgentRepository
from crm_bridge.customers import CustomerRepository
from crm_bridge.logger import InteractionLogger
from crm_bridge.principals import Principal
from tests.integration.crm_support import PHONES, database_fixture, eventually, sample_call  # noqa: F401
from tests.unit.desktop_fakes import SUPPORT, FakeAmi, FakeModel, FakeRecorder, interface

PASSWORD = "correct horse battery"
OPERATOR_TOKEN = "operator-token"
HANDSHAKE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw=="}


@pytest.fixture
async def api(database, tmp_path):
    pool = database.pool
    agents = AgentRepository(pool)
    for agent_id in ("a1", "a2"):
        await agents.save(agent_id, f"Agent {agent_id}", ["support"])
        await agents.set_secret(agent_id, PASSWORD)
    await pool.execute("DELETE FROM dispositions")  # this test's own catalogue, not the default one
    await pool.execute("INSERT INTO dispositions (code, label) VALUES ('resolved', 'Resolved'), "
                       "('callback', 'Call back later')")
    customers = CustomerRepository(pool, PHONES)
    jose = await customers.create(customers.parse({"name": "José Müller", "tier": "gold", "vip": True,
                                                   "phones": ["+49301234567"], "account_numbers": ["12345"]}))
    log = InteractionLogger(pool, tmp_path / "spool.jsonl", PHONES, flush_interval=0.05)
    await log.start()
    log.put(sample_call(1, ani="+49301234567"))
    await log.close()
    await pool.execute("UPDATE interactions SET disposition_code = 'resolved', disposition_notes = 'asked for "
                       "a refund', customer_id = $1", jose)

    definitions = AcdDefinitions((SUPPORT,), tuple(AgentDefinition(agent_id, f"Agent {agent_id}", interface(agent_id),
                                                                   "", {"support": 50}) for agent_id in ("a1", "a2")))
    acd = AcdService(definitions)
    desks = build_desks(pool, PHONES, acd, FakeModel(), {"lab": SimpleNamespace(client=FakeAmi())},
                        recorder=FakeRecorder(), settings=DeskSettings())
    await desks.start(SimpleNamespace(subscribe=lambda *_: SimpleNamespace(unsubscribe=lambda: None)))
    authenticator = FirstMatch(StaticTokens({OPERATOR_TOKEN: Principal("operator", "operator")}), desks.sessions)
    app = build_app(Metrics(), {}, authenticator, CrmStore.from_pool(pool, PHONES), desks=desks)
    client = TestClient(TestServer(app))
    await client.start_server()
    client.acd, client.desks, client.customer_id = acd, desks, jose
    yield client
    await client.close()
    acd.close()


async def login(client, agent_id: str = "a1", password: str = PASSWORD):
    return await client.post("/api/agent/login", json={"agent_id": agent_id, "password": password})


async def token(client, agent_id: str = "a1") -> str:
    response = await login(client, agent_id)
    assert response.status == 200, await response.text()
    return (await response.json())["token"]


async def open_desk(client, agent_id: str = "a1"):
    socket = await client.ws_connect(f"/api/agent/ws?token={await token(client, agent_id)}")
    hello = await socket.receive_json()
    assert hello["type"] == "hello" and hello["v"] == 1
    return socket, hello


async def ask(socket, kind: str, **fields) -> dict:
    """Send a command; the frames pushed meanwhile are skipped, its result returned."""
    await socket.send_json({"v": 1, "type": kind, "id": 42, **fields})
    while (frame := await socket.receive_json())["type"] != "result":
        pass
    assert frame["id"] == 42 and frame["command"] == kind
    return frame


async def next_frame(socket, kind: str) -> dict:
    while (frame := await socket.receive_json(timeout=5))["type"] != kind:
        pass
    return frame


async def test_login_needs_the_agents_password_and_gives_an_agent_token(api):
    assert (await login(api, password="wrong")).status == 401
    assert (await login(api, agent_id="nobody")).status == 401
    assert (await api.post("/api/agent/login", json={"agent_id": "a1"})).status == 422
    assert (await api.post("/api/agent/login", data=b"not json")).status == 400
    response = await login(api)
    body = await response.json()
    assert body["agent"] == {"id": "a1", "name": "Agent a1"} and body["took_over"] is False
    assert await api.desks.sessions.store.agent_for(token_digest(body["token"])) == "a1"
    answer = await api.get("/api/agent/dispositions", headers={"Authorization": f"Bearer {body['token']}"})
    assert (await answer.json())["items"] == [{"code": "callback", "label": "Call back later"},
                                              {"code": "resolved", "label": "Resolved"}]
    assert api.acd.engine.agent_state("a1") is AgentState.NOT_READY  # logged in to the ACD


async def test_repeated_wrong_passwords_are_refused_before_checking_until_the_window_passes(api):
    # The limit is 5 per agent and address: the 6th try is refused, even with the right password,
    # and no password is checked for it.
    for _ in range(5):
        assert (await login(api, password="wrong")).status == 401
    checked = api.desks.sessions._verify_secret
    api.desks.sessions._verify_secret = None  # a refused try must not get this far
    refused = await login(api)
    assert refused.status == 429 and 1 <= int(refused.headers["Retry-After"]) <= 300
    assert "too many failed logins" in (await refused.json())["error"]
    api.desks.sessions._verify_secret = checked
    assert (await login(api, agent_id="a2")).status == 200  # another agent from the same address


async def test_the_socket_needs_an_agent_token(api):
    for url in ("/api/agent/ws", "/api/agent/ws?token=agt_forged", f"/api/agent/ws?token={OPERATOR_TOKEN}"):
        response = await api.get(url, headers=HANDSHAKE)
        assert response.status in (401, 403), url
    assert (await api.post("/api/agent/logout")).status == 401


async def test_hello_then_commands_answered_and_bad_frames_leave_the_socket_open(api):
    socket, hello = await open_desk(api)
    assert hello["agent"]["id"] == "a1" and hello["state"]["state"] == "not_ready"
    assert "break" in hello["reasons"] and hello["dispositions"][0]["code"] == "callback"
    await socket.send_str("{not json")
    assert (await socket.receive_json())["type"] == "error"
    await socket.send_json({"v": 2, "type": "ready"})
    assert "version" in (await socket.receive_json())["error"]
    refused = await ask(socket, "not_ready", reason="nap")
    assert refused["ok"] is False and refused["code"] == "unknown_reason"
    assert (await ask(socket, "ready"))["ok"] is True
    assert (await next_frame(socket, "state"))["state"] == "available"
    refused = await ask(socket, "hangup", call_id="pbx:someone-else")
    assert refused["ok"] is False and refused["code"] == "not_your_call"
    await socket.close()


async def test_the_offer_pops_the_customer_and_history_from_the_store_and_logout_waits(api):
    socket, _ = await open_desk(api)
    await ask(socket, "ready")
    call_id = "pbx:1700000000.99"
    api.acd.hold(call_id)
    api.acd.submit(CallArrived(call_id, "support", data={
        "ani": "030 1234567", "dnis": "100", "account": "12345", "customer_id": str(api.customer_id),
        "ivr_path": "main > billing", "ivr.account": "12345"}))
    pop = (await next_frame(socket, "offer"))["call"]["pop"]
    assert pop["customer"]["name"] == "José Müller" and pop["flags"] == ["VIP"]
    assert pop["history"][0]["disposition_notes"] == "asked for a refund"
    response = await api.post("/api/agent/logout", headers={"Authorization": f"Bearer {await token(api)}"})
    assert response.status == 409 and (await response.json())["code"] == "on_call"


async def test_a_second_login_takes_over_the_first_desktop(api):
    first, _ = await open_desk(api)
    response = await login(api)
    assert (await response.json())["took_over"] is True
    second = await api.ws_connect(f"/api/agent/ws?token={(await response.json())['token']}")
    assert (await next_frame(first, "taken_over"))["message"]
    closing = await first.receive()
    assert closing.type is WSMsgType.CLOSE and closing.data == 4001
    assert (await ask(second, "ready"))["ok"] is True


async def test_logout_ends_the_session(api):
    agent_token = await token(api)
    response = await api.post("/api/agent/logout", headers={"Authorization": f"Bearer {agent_token}"})
    assert response.status == 200
    assert api.acd.engine.agent_state("a1") is AgentState.LOGGED_OUT
    again = await api.get("/api/agent/dispositions", headers={"Authorization": f"Bearer {agent_token}"})
    assert again.status == 401


async def test_the_page_and_its_files_are_served(api):
    page = await api.get("/agent/")
    assert page.status == 200 and "Agent desktop" in await page.text()
    for path in ("/static/agent/app.js", "/static/agent/app.css"):
        assert (await api.get(path)).status == 200, path
    moved = await api.get("/agent", allow_redirects=False)
    assert moved.status == 302 and moved.headers["Location"] == "/agent/"


async def test_the_desk_is_saved_with_its_session_for_a_restart(api):
    socket, _ = await open_desk(api)
    await ask(socket, "not_ready", reason="lunch")
    store = api.desks.sessions.store
    await eventually(lambda: _settled(store), "the desk saved")
    assert (await store.desk("a1"))["settled"] == ["not_ready", "lunch"]


async def _settled(store) -> bool:
    return (await store.desk("a1")).get("settled") == ["not_ready", "lunch"]


async def test_stopping_the_http_server_tells_each_desktop_to_reconnect_elsewhere(api):
    # Before the server waits for open handlers: a desktop left open must not hold a stop up.
    socket, *_ = await open_desk(api)
    await api.server.runner.shutdown()
    closing = await socket.receive()
    assert closing.type is WSMsgType.CLOSE and closing.data == 1001  # going away: the page reconnects
