"""The supervisors' WebSocket, frame by frame (docs/API.md), with aiohttp's client."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer

from acd import AgentNotReady, AgentReady, CallArrived
from tests.integration.crm_support import database_fixture  # noqa: F401
from tests.integration.supervision_support import log_in, supervised_app

LIMIT_S = 10  # a hang guard, not a timing assertion


@pytest.fixture
async def client(database):
    supervised = await supervised_app(database.pool, refresh_seconds=3600)
    log_in(supervised.acd)
    client = TestClient(TestServer(supervised.app))
    await client.start_server()
    client.acd, client.tokens = supervised.acd, supervised.tokens
    yield client
    await client.close()


async def frame(socket) -> dict:
    return await asyncio.wait_for(socket.receive_json(), LIMIT_S)


async def test_a_snapshot_then_only_what_changed(client):
    socket = await client.ws_connect(f"/api/supervisor/ws?token={client.tokens['supervisor']}")
    snapshot = await frame(socket)
    assert (snapshot["v"], snapshot["type"]) == (1, "snapshot")
    assert [queue["queue"] for queue in snapshot["queues"]] == ["sales", "support", "vip"]
    assert [agent["agent_id"] for agent in snapshot["agents"]] == ["1001", "1002", "1003"]
    assert snapshot["interval"] == 0.25 and snapshot["window_seconds"] == 900

    client.acd.submit(AgentReady("1002"))
    client.acd.submit(AgentNotReady("1002", "coffee"))
    client.acd.submit(CallArrived("c1", "support"))
    update = await frame(socket)
    while [agent["reason"] for agent in update["agents"]] != ["coffee"]:  # a first frame may hold part
        update = await frame(socket)
    assert update["type"] == "update" and update["seq"] > snapshot["seq"]
    assert [queue["queue"] for queue in update["queues"]] == ["support"]
    assert [call["call_id"] for call in update["queues"][0]["calls"]] == ["c1"]

    await socket.send_json({"v": 1, "type": "snapshot", "id": 1})
    assert (await frame(socket))["type"] == "snapshot"
    await socket.send_json({"v": 1, "type": "listen", "id": 2})
    assert await frame(socket) == {"v": 1, "type": "result", "id": 2, "command": "listen", "ok": False,
                                   "error": "unknown command; try snapshot"}
    await socket.send_str("not json")
    answer = await frame(socket)
    assert answer["type"] == "error" and answer["error"].startswith("not JSON")
    await socket.close()


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("operator", 403), ("crm", 403), ("agent", 403)])
async def test_only_supervisors_may_connect(client, role, status):
    token = client.tokens[role] if role else "nope"
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect(f"/api/supervisor/ws?token={token}")
    assert refused.value.status == status
