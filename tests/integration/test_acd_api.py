"""The live ACD's REST API against a real AcdService and the ACD store in PostgreSQL: roles, each
action's effect on the engine, bad bodies, unknown ids, the OpenAPI document."""

from __future__ import annotations

import contextlib
import logging

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from acd import CallArrived, Disposition, DispositionKind, Offer, OfferAccepted, QueueSettings
from cti.ami.message import Message
from cti.callmodel.control import CallControl
from cti.callmodel.model import CallModel
from crm_bridge.acd_store import AcdStore
from tests.daemon import running_daemon
from tests.integration.crm_support import auth, database_fixture  # noqa: F401
from tests.integration.supervision_support import log_in, ready, supervised_app

CALL_ID = "pbx1:1.0"  # the call model's id of the call below: SystemName + Linkedid
AGENT_CHANNEL = "PJSIP/1001-00000001"
CALLER_CHANNEL = "PJSIP/trunk-00000000"


class RecordingAmi:
    """Answers every action with Success and keeps it, so the real CallControl checks its input."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, dict]] = []

    async def action(self, name: str, headers: dict, **_options) -> Message:
        self.actions.append((name, headers))
        return Message([("Response", "Success")])


def channel(model: CallModel, uniqueid: str, name: str) -> None:
    model.apply("pbx1", Message([("Event", "Newchannel"), ("Channel", name), ("ChannelStateDesc", "Up"),
                                 ("CallerIDNum", "5551234"), ("CallerIDName", "Caller"), ("Context", "from-trunk"),
                                 ("Exten", "100"), ("Uniqueid", uniqueid), ("Linkedid", "1.0")]))


@pytest.fixture
async def api(database):
    calls, ami = CallModel(), RecordingAmi()
    control_for = {"pbx1": CallControl(ami)}.get
    supervised = await supervised_app(database.pool, calls, control_for, survey_flows=("survey",))
    client = TestClient(TestServer(supervised.app))
    await client.start_server()
    client.acd, client.tokens, client.calls, client.ami = supervised.acd, supervised.tokens, calls, ami
    client.store = AcdStore(database.pool)
    log_in(supervised.acd)
    client.offers = []
    supervised.acd.listen(lambda decision: isinstance(decision, Offer) and client.offers.append(decision))
    yield client
    await client.close()


@contextlib.contextmanager
def info_logs():
    """The log lines at info level (the tests' configuration keeps warnings only)."""
    config = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**config)


async def call(client, method: str, path: str, body=None, role: str = "supervisor", status: int = 200) -> dict:
    response = await client.request(method, path, json=body, headers=auth(client, role))
    assert response.status == status, await response.text()
    return await response.json()


READS = [("GET", "/api/acd/queues"), ("GET", "/api/acd/queues/support"), ("GET", "/api/acd/agents"),
         ("GET", "/api/acd/agents/1001")]
ACTIONS = [("PUT", "/api/acd/agents/1001/skills", {"skills": {"support": 90}}),
           ("POST", "/api/acd/agents/1001/not-ready", {"reason": "lunch"}),
           ("POST", "/api/acd/agents/1001/logout", None),
           ("POST", "/api/acd/agents/1001/monitor", {"mode": "listen", "supervisor_interface": "PJSIP/2001"}),
           ("POST", f"/api/acd/calls/{CALL_ID}/move", {"queue": "sales"}),
           ("POST", f"/api/acd/calls/{CALL_ID}/priority", {"priority": 5})]


async def test_roles_supervisors_act_operators_read(api):
    for method, path in READS:
        assert (await api.request(method, path)).status == 401
        for role, status in (("agent", 403), ("crm", 403), ("operator", 200), ("supervisor", 200)):
            assert (await api.request(method, path, headers=auth(api, role))).status == status, (path, role)
    for method, path, body in ACTIONS:
        assert (await api.request(method, path, json=body)).status == 401
        for role in ("agent", "crm", "operator"):
            assert (await api.request(method, path, json=body, headers=auth(api, role))).status == 403, (path, role)
    assert (await api.get("/api/supervisor/ws", headers=auth(api, "operator"))).status == 403


async def test_queues_show_waiting_calls_with_wait_and_priority(api):
    api.acd.submit(CallArrived("c1", "support", priority=2))
    api.acd.submit(CallArrived("c2", "support", customer_tier="gold"))
    answer = await call(api, "GET", "/api/acd/queues", role="operator")
    support = next(queue for queue in answer["queues"] if queue["queue"] == "support")
    assert [(c["call_id"], c["priority"], c["position"]) for c in support["calls"]] == [("c2", 10, 1), ("c1", 2, 2)]
    assert all(0 <= c["wait"] < 60 and abs(answer["server_time"] - c["wait"] - c["since"]) < 60
               for c in support["calls"])
    assert support["waiting"] == 2 and support["today"]["offered"] == 2 and support["service_level_seconds"] == 20
    assert (await call(api, "GET", "/api/acd/queues/sales"))["waiting"] == 0


async def test_a_skill_change_changes_the_next_routing_decision(api):
    ready(api.acd, "1001", "1002")  # Alice has been idle longest: she would get the next support call
    with info_logs() as logs:
        agent = await call(api, "PUT", "/api/acd/agents/1001/skills", {"skills": {"sales": 40, "billing": 70}})
    assert agent["skills"] == {"sales": 40, "billing": 70} and agent["queues"] == []
    assert (await api.store.load()).agent("1001").skills == {"sales": 40, "billing": 70}  # survives a restart
    assert {"event": "supervisor.skills_changed", "supervisor": "supervisor-app", "agent_id": "1001"}.items() \
        <= next(line for line in logs if line["event"] == "supervisor.skills_changed").items()

    api.acd.submit(CallArrived("c1", "support"))
    assert [(offer.call_id, offer.agent_id) for offer in api.offers] == [("c1", "1002")]


async def test_without_a_change_the_longest_idle_agent_gets_the_call(api):
    ready(api.acd, "1001", "1002")
    api.acd.submit(CallArrived("c1", "support"))
    assert [(offer.call_id, offer.agent_id) for offer in api.offers] == [("c1", "1001")]


async def test_force_not_ready_now_or_after_the_call_and_logout(api):
    ready(api.acd, "1001", "1002")
    answer = await call(api, "POST", "/api/acd/agents/1002/not-ready", {"reason": "lunch"})
    assert answer["applies"] == "now"
    assert (answer["agent"]["state"], answer["agent"]["reason"]) == ("not_ready", "lunch")

    api.acd.submit(CallArrived("c1", "support"))
    api.acd.submit(OfferAccepted("c1", "1001"))
    answer = await call(api, "POST", "/api/acd/agents/1001/not-ready", {})
    assert answer["applies"] == "after the call" and answer["agent"]["state"] == "on_call"

    agent = await call(api, "POST", "/api/acd/agents/1002/logout")
    assert agent["state"] == "logged_out"
    answer = await call(api, "POST", "/api/acd/agents/1002/not-ready", {"reason": "x"}, status=409)
    assert answer == {"error": "agent 1002 is logged out"}


async def test_move_and_priority_of_waiting_calls(api):
    api.acd.submit(CallArrived("c1", "support"))
    api.acd.submit(CallArrived("c2", "support"))
    queue = await call(api, "POST", "/api/acd/calls/c2/priority", {"priority": 7})
    assert [(c["call_id"], c["priority"]) for c in queue["calls"]] == [("c2", 7), ("c1", 0)]

    queue = await call(api, "POST", "/api/acd/calls/c1/move", {"queue": "sales"})
    assert queue["queue"] == "sales" and [c["call_id"] for c in queue["calls"]] == ["c1"]
    assert api.acd.position("c1") == 1 and api.acd.engine.waiting_calls("support") == ["c2"]
    answer = await call(api, "POST", "/api/acd/calls/c1/move", {"queue": "sales"}, status=409)
    assert answer == {"error": "call c1 already waits in sales"}

    ready(api.acd, "1003")  # the moved call is now taken by a sales agent
    assert [(offer.call_id, offer.agent_id, offer.queue) for offer in api.offers] == [("c1", "1003", "sales")]
    answer = await call(api, "POST", "/api/acd/calls/c1/move", {"queue": "support"}, status=409)
    assert "an agent is reserved" in answer["error"]


async def test_listen_whisper_barge_originate_chanspy_on_the_agents_channel(api):
    channel(api.calls, "1.0", CALLER_CHANNEL)
    channel(api.calls, "1.1", AGENT_CHANNEL)
    api.calls.attach(CALL_ID, agi_channel=CALLER_CHANNEL)
    ready(api.acd, "1001")
    body = {"mode": "whisper", "supervisor_interface": "PJSIP/2001"}
    answer = await call(api, "POST", "/api/acd/agents/1001/monitor", body, status=409)  # not on a call yet
    assert answer == {"error": "agent 1001 is not talking on a call"}

    api.acd.submit(CallArrived(CALL_ID, "support"))
    api.acd.submit(OfferAccepted(CALL_ID, "1001"))
    for mode, options in (("listen", ""), ("whisper", "w"), ("barge", "B")):
        answer = await call(api, "POST", "/api/acd/agents/1001/monitor", body | {"mode": mode}, status=202)
        assert answer == {"agent_id": "1001", "mode": mode, "channel": AGENT_CHANNEL,
                          "supervisor_interface": "PJSIP/2001"}
        name, headers = api.ami.actions[-1]
        assert name == "Originate" and (headers["Channel"], headers["Context"], headers["Exten"]) == (
            "PJSIP/2001", "cti-spy", "s")
        assert headers["Variable"] == f"CTI_SPY_CHANNEL={AGENT_CHANNEL},CTI_SPY_OPTIONS={options}"


async def test_bad_bodies_answer_422_with_the_reason(api):
    bad = [("PUT", "/api/acd/agents/1001/skills", {"skills": {"support": 150}},
            {"skills": "support: proficiency must be an integer 1-100, got 150"}),
           ("PUT", "/api/acd/agents/1001/skills", {"skills": {"no way": 5}},
            {"skills": "'no way' is not a skill name (a letter or _, then letters, digits, _ . -)"}),
           ("PUT", "/api/acd/agents/1001/skills", {}, {"skills": "is required"}),
           ("POST", "/api/acd/agents/1001/not-ready", {"reason": "x", "extra": 1}, {"extra": "unknown field"}),
           ("POST", "/api/acd/agents/1001/monitor", {"mode": "spy", "supervisor_interface": "2001"},
            {"mode": "must be one of listen, whisper, barge",
             "supervisor_interface": "must match [A-Za-z][A-Za-z0-9_-]*/\\S+"}),
           ("POST", "/api/acd/calls/c1/move", {"queue": "nowhere"}, {"queue": "no queue named 'nowhere'"}),
           ("POST", "/api/acd/calls/c1/priority", {"priority": "high"}, {"priority": "must be an integer"})]
    api.acd.submit(CallArrived("c1", "support"))
    for method, path, body, errors in bad:
        assert await call(api, method, path, body, status=422) == {"errors": errors}, path
    response = await api.put("/api/acd/agents/1001/skills", data=b"{nope", headers=auth(api))
    assert response.status == 422 and await response.json() == {"errors": {"body": "is not valid JSON"}}
    assert (await api.store.load()).agent("1001").skills == {"support": 80}  # nothing was stored


async def test_unknown_agents_queues_and_calls_answer_404(api):
    for method, path, body in [("GET", "/api/acd/agents/9999", None), ("GET", "/api/acd/queues/nowhere", None),
                               *[(method, path.replace("1001", "9999").replace(CALL_ID, "gone"), body)
                                 for method, path, body in ACTIONS]]:
        answer = await call(api, method, path, body, status=404)
        assert set(answer) == {"error"}, path
    assert (await call(api, "GET", "/api/acd/agents/9999", status=404)) == {"error": "agent 9999 not found"}


async def test_logging_out_a_logged_out_agent_answers_409(api):
    ready(api.acd, "1001")
    answer = await call(api, "POST", "/api/acd/agents/1001/logout")
    assert answer["state"] == "logged_out"
    assert (await call(api, "POST", "/api/acd/agents/1001/logout", status=409)) == {"error": "agent 1001 is logged out"}


async def test_the_openapi_document_lists_every_served_api_route(api):
    document = await (await api.get("/api/openapi.json")).json()
    served = {(resource.canonical, route.method.lower()) for resource in api.app.router.resources()
              for route in resource if resource.canonical.startswith("/api/")}
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert served == documented
    skills = document["paths"]["/api/acd/agents/{agent_id}/skills"]["put"]
    assert skills["x-roles"] == ["supervisor"] and set(skills["responses"]) == {"200", "401", "403", "404", "422"}
    assert skills["parameters"] == [{"name": "agent_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    assert document["components"]["schemas"]["AcdSkills"]["required"] == ["skills"]
    assert document["paths"]["/api/acd/queues"]["get"]["x-roles"] == ["supervisor", "operator"]


# --- queue settings -------------------------------------------------------------------------

QUEUE = "/api/acd/queues/support"


async def test_a_queue_change_routes_the_next_call_to_an_agent_only_the_new_requirement_admits(api):
    ready(api.acd, "1001", "1003")  # Alice has been idle longest, Carol does not do support yet
    with info_logs() as logs:
        answer = await call(api, "PUT", QUEUE, {"skills": "sales>=70", "ring_timeout": 25})
    assert answer == await call(api, "GET", QUEUE + "/definition", role="operator")
    assert (answer["skills"], answer["ring_timeout"], answer["strategy"]) == ("sales>=70", 25, "longest_idle")
    stored = (await api.store.load()).queue("support")  # survives a restart
    assert (stored.skills, stored.ring_timeout) == ("sales>=70", 25)
    line = next(line for line in logs if line["event"] == "supervisor.queue_changed")
    assert (line["supervisor"], line["queue"], line["changes"]) == (
        "supervisor-app", "support", {"skills": "sales>=70", "ring_timeout": 25})
    assert (await call(api, "GET", "/api/acd/agents/1003"))["queues"] == ["sales", "support", "vip"]
    assert (await call(api, "GET", "/api/acd/agents/1001"))["queues"] == []

    api.acd.submit(CallArrived("c1", "support"))
    assert [(offer.call_id, offer.agent_id, offer.ring_timeout) for offer in api.offers] == [("c1", "1003", 25)]


async def test_a_waiting_call_is_offered_at_once_when_a_change_admits_a_free_agent(api):
    ready(api.acd, "1003")
    api.acd.submit(CallArrived("c1", "support"))
    assert api.offers == []
    queue = await call(api, "GET", QUEUE + "/definition")
    await call(api, "PUT", QUEUE, queue | {"skills": "support>=50 | vip>=50", "service_level_seconds": 45})
    assert [(offer.call_id, offer.agent_id) for offer in api.offers] == [("c1", "1003")]
    assert (await call(api, "GET", QUEUE))["service_level_seconds"] == 45



async def test_a_supervisor_names_a_known_survey_flow_live_and_it_is_stored(api):
    queue = await call(api, "GET", QUEUE + "/definition")
    await call(api, "PUT", QUEUE, queue | {"survey_flow": "survey"})
    assert api.acd.definitions.queue("support").survey_flow == "survey"
    assert (await api.store.load()).queue("support").survey_flow == "survey"

async def test_bad_queue_definitions_answer_422_per_key_and_nothing_changes(api):
    bad = [({"skills": "support>="}, {"skills": "not a skill requirement: expected a proficiency 1-100 after "
                                                "'>=', found end of expression at column 10: 'support>='"}),
           ({"skills": "support", "ring_timeout": "abc"}, {"ring_timeout": "expected a number > 0, got 'abc'"}),
           ({"ring_timeout": 5}, {"skills": "missing (required)"}),
           ({"skills": "support", "overflow": [{"after_seconds": 30},
                                               {"after_seconds": 10, "lower_thresholds": {"sales": 20}}]},
            {"overflow[1].after_seconds": "expected more than 30 (the step before), got 10",
             "overflow[1].lower_thresholds.sales": "not a skill of the queue's requirement 'support'"}),
           ({"skills": "support", "survey_flow": "rate_us"}, {"survey_flow": "no IVR flow named 'rate_us'"})]
    for body, errors in bad:
        assert await call(api, "PUT", QUEUE, body, status=422) == {"errors": errors}, body
    answer = await call(api, "PUT", QUEUE, {"skills": "support", "colour": "red"}, status=422)
    assert answer["errors"]["colour"].startswith("unknown key (allowed: announce_every, ")
    for data, errors in ((b"{nope", {"body": "is not valid JSON"}), (b"[]", {"body": "must be a JSON object"})):
        response = await api.put(QUEUE, data=data, headers=auth(api))
        assert response.status == 422 and await response.json() == {"errors": errors}
    assert (await api.store.load()).queue("support").skills == "support>=50"
    assert api.acd.definitions.queue("support").skills == "support>=50"


async def test_a_definition_the_other_queues_refuse_answers_409_and_nothing_is_stored(api):
    await call(api, "PUT", "/api/acd/queues/sales", {"skills": "sales>=50",
                                                     "final_action": {"kind": "queue", "target": "support"}})
    refused = [({"skills": "support", "final_action": {"kind": "queue", "target": "sales"}},
                "final actions of kind queue loop: sales -> support -> sales"),
               ({"skills": "support", "overflow": [{"after_seconds": 30, "add_queues": ["nowhere"]}]},
                "queue 'support': overflow[0].add_queues: no queue named 'nowhere'")]
    for body, error in refused:
        assert await call(api, "PUT", QUEUE, body, status=409) == {"error": error}
    assert (await api.store.load()).queue("support").final_action.kind == "message_hangup"


async def test_a_definition_the_stored_queues_refuse_answers_409_and_the_running_acd_keeps_its_own(api):
    # The database's sales ends in support, the running ACD's does not (yet): a loop only there.
    await api.store.save_queue(QueueSettings("sales", "sales>=50", final_action=Disposition(DispositionKind.QUEUE,
                                                                                            "support")), by="test")
    body = {"skills": "support>=50", "final_action": {"kind": "queue", "target": "sales"}}
    answer = await call(api, "PUT", QUEUE, body, status=409)
    assert answer == {"error": "the stored definitions refuse it: final actions of kind queue loop: "
                               "sales -> support -> sales"}
    assert api.acd.definitions.queue("support").final_action.kind == "message_hangup"
    assert (await api.store.load()).queue("support").final_action.kind == "message_hangup"


async def test_queue_settings_unknown_queue_404_and_roles(api):
    for method, path, body in (("GET", "/api/acd/queues/nowhere/definition", None),
                               ("PUT", "/api/acd/queues/nowhere", {"skills": "support"})):
        assert await call(api, method, path, body, status=404) == {"error": "queue nowhere not found"}
    assert (await api.put(QUEUE, json={"skills": "support"})).status == 401
    for role in ("agent", "crm", "operator"):
        assert (await api.put(QUEUE, json={"skills": "x"}, headers=auth(api, role))).status == 403, role
    for role, status in (("agent", 403), ("crm", 403), ("operator", 200), ("supervisor", 200)):
        assert (await api.get(QUEUE + "/definition", headers=auth(api, role))).status == status, role
    document = await (await api.get("/api/openapi.json")).json()
    put = document["paths"]["/api/acd/queues/{queue}"]["put"]
    assert put["x-roles"] == ["supervisor"] and set(put["responses"]) == {"200", "401", "403", "404", "409", "422"}
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AcdQueueDefinition"}


def test_the_daemon_serves_them_when_it_runs_an_acd():
    """`cti run` with the example ACD file: the composition root wires the supervision in."""
    with running_daemon("cti-test-acd-api-", environ={"CTI_ACD__FILE": "config/acd.toml",
                                                                  "CTI_IVR__FLOWS": "config/flows"}) as daemon:
        status, body = daemon.get_json("/api/acd/queues", daemon.token)  # the operator token may read
        assert status == 200 and {queue["queue"] for queue in body["queues"]} >= {"support", "sales"}
        status, page = daemon.get("/supervisor/")
        assert status == 200 and b"wallboard.js" in page
        status, metrics = daemon.get("/metrics", daemon.token)
        assert status == 200 and b'cti_acd_queue_waiting{queue="support"} 0.0' in metrics
        assert b'cti_acd_agents_count{state="logged_out"} 4.0' in metrics
        assert daemon.terminate() == 0
        assert "cti.stop_failed" not in [event["event"] for event in daemon.log_events()]
