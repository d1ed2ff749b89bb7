"""REST API of the live ACD for supervisors: queue and agent figures, queue settings, and actions on
agents and calls.

Routes are declared once in ROUTES with crm_api's Route (roles, body, answers) and published in
/api/openapi.json. Figures are the wallboard's views (cti/supervision.py), so REST and the
WebSocket say the same thing. Supervisors act; operators may read. Each action is logged with
who gave it (cti.supervision.SupervisorActions).

Answers: 404 for an unknown agent, queue or waiting call; 422 ``{"errors": {"<field>": "..."}}``
for a bad body; 409 ``{"error": "..."}`` when the ACD cannot do it in its current state; 503 when
Asterisk could not be asked (monitoring).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from acd import AcdError, DispositionKind, Strategy, parse_skills
from acd.config import queue_to_dict
from acd.skills import MAX_LEVEL, MIN_LEVEL, AtLeast, SkillExpressionError
from cti.http.auth import PRINCIPAL
from cti.http import crm_api
from cti.http.crm_api import Handler, Route, _json, _json_object
from cti.supervision import SPY_OPTIONS, ActionError, Supervision
from crm_bridge.fields import Choice, Context, FieldError, Integer, Text, ValidationError, object_schema, parse_fields

SUPERVISION = web.AppKey("supervision", Supervision)

READERS = ("supervisor", "operator")
ACTORS = ("supervisor",)
MAX_SKILLS = 100
# An agent's device or a supervisor's phone: TECH/RESOURCE, as Asterisk dials it.
DIAL_STRING = r"[A-Za-z][A-Za-z0-9_-]*/\S+"


class SkillLevels:
    """A JSON object of skill -> proficiency, the whole set an agent will have."""

    description = f"skill name -> proficiency {MIN_LEVEL}-{MAX_LEVEL}; replaces every skill of the agent"

    def parse(self, value: Any, context: Context) -> dict[str, int]:
        if not isinstance(value, dict):
            raise FieldError("must be an object of skill: proficiency")
        if len(value) > MAX_SKILLS:
            raise FieldError(f"at most {MAX_SKILLS} skills")
        for skill, level in value.items():
            if not _is_skill_name(skill):
                raise FieldError(f"{skill!r} is not a skill name (a letter or _, then letters, digits, _ . -)")
            if isinstance(level, bool) or not isinstance(level, int) or not MIN_LEVEL <= level <= MAX_LEVEL:
                raise FieldError(f"{skill}: proficiency must be an integer {MIN_LEVEL}-{MAX_LEVEL}, got {level!r}")
        return dict(value)

    def schema(self) -> dict:
        return {"type": "object", "maxProperties": MAX_SKILLS, "description": self.description,
                "additionalProperties": {"type": "integer", "minimum": MIN_LEVEL, "maximum": MAX_LEVEL}}


def _is_skill_name(name: str) -> bool:
    try:
        return parse_skills(name) == AtLeast(name, MIN_LEVEL)
    except SkillExpressionError:
        return False


BODIES: Mapping[str, tuple[Mapping[str, Any], frozenset[str]]] = {
    "AcdSkills": ({"skills": SkillLevels()}, frozenset({"skills"})),
    "AcdNotReady": ({"reason": Text(64, description='Shown with the state; default "supervisor"')}, frozenset()),
    "AcdMove": ({"queue": Text(64, description="The queue the call will wait in")}, frozenset({"queue"})),
    "AcdPriority": ({"priority": Integer(-1000, 1000, description="Higher is served first, across queues")},
                    frozenset({"priority"})),
    "AcdMonitor": ({"mode": Choice(tuple(SPY_OPTIONS), description="listen, whisper (to the agent) or barge "
                                   "(talk to both)"),
                    "supervisor_interface": Text(200, pattern=DIAL_STRING,
                                                 description="The supervisor's phone, e.g. PJSIP/2001")},
                   frozenset({"mode", "supervisor_interface"})),
}


async def _body(request: web.Request, name: str) -> dict[str, Any]:
    spec, required = BODIES[name]
    return parse_fields(spec, await _json_object(request), Context(phones=None), required)


def _supervision(request: web.Request) -> Supervision:
    return request.app[SUPERVISION]


def _who(request: web.Request) -> str:
    return request[PRINCIPAL].name


def _acting(handler: Handler) -> Handler:
    """ActionError and the engine's AcdError answer in JSON with their status."""

    @functools.wraps(handler)
    async def acting(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ActionError as error:
            if error.errors:
                raise ValidationError(error.errors) from None
            return _json({"error": str(error)}, status=error.status)
        except AcdError as error:
            return _json({"error": str(error)}, status=409)

    return acting


# Reading ----------------------------------------------------------------------------------

async def list_queues(request: web.Request) -> web.Response:
    supervision = _supervision(request)
    return _json({"server_time": supervision.acd.wall_clock(), "queues": supervision.wallboard.queue_views()})


async def get_queue(request: web.Request) -> web.Response:
    supervision, queue = _supervision(request), request.match_info["queue"]
    supervision.actions.require_queue(queue)
    return _json(supervision.wallboard.queue_view(queue))


async def get_queue_definition(request: web.Request) -> web.Response:
    supervision, queue = _supervision(request), request.match_info["queue"]
    return _json(queue_to_dict(supervision.actions.queue_settings(queue)))


async def list_agents(request: web.Request) -> web.Response:
    supervision = _supervision(request)
    return _json({"server_time": supervision.acd.wall_clock(), "agents": supervision.wallboard.agent_views()})


async def get_agent(request: web.Request) -> web.Response:
    supervision, agent_id = _supervision(request), request.match_info["agent_id"]
    supervision.actions.require_agent(agent_id)
    return _json(supervision.wallboard.agent_view(agent_id))


# Changing queues --------------------------------------------------------------------------

async def update_queue(request: web.Request) -> web.Response:
    supervision, queue = _supervision(request), request.match_info["queue"]
    supervision.actions.require_queue(queue)  # 404 before 422: the body is about nothing
    settings = await supervision.actions.update_queue(queue, await _json_object(request), _who(request))
    return _json(queue_to_dict(settings))


# Acting on agents -------------------------------------------------------------------------

async def set_agent_skills(request: web.Request) -> web.Response:
    supervision, agent_id = _supervision(request), request.match_info["agent_id"]
    supervision.actions.require_agent(agent_id)  # 404 before 422: the body is about nobody
    body = await _body(request, "AcdSkills")
    await supervision.actions.set_skills(agent_id, body["skills"], _who(request))
    return _json(supervision.wallboard.agent_view(agent_id))


async def force_not_ready(request: web.Request) -> web.Response:
    supervision, agent_id = _supervision(request), request.match_info["agent_id"]
    supervision.actions.require_agent(agent_id)
    body = await _body(request, "AcdNotReady")
    applies = supervision.actions.force_not_ready(agent_id, body.get("reason", "supervisor"), _who(request))
    return _json({"applies": applies, "agent": supervision.wallboard.agent_view(agent_id)})


async def force_logout(request: web.Request) -> web.Response:
    supervision, agent_id = _supervision(request), request.match_info["agent_id"]
    supervision.actions.force_logout(agent_id, _who(request))
    return _json(supervision.wallboard.agent_view(agent_id))


async def monitor_agent(request: web.Request) -> web.Response:
    supervision, agent_id = _supervision(request), request.match_info["agent_id"]
    supervision.actions.require_agent(agent_id)
    body = await _body(request, "AcdMonitor")
    channel = await supervision.actions.monitor(agent_id, body["mode"], body["supervisor_interface"], _who(request))
    return _json({"agent_id": agent_id, "mode": body["mode"], "channel": channel,
                  "supervisor_interface": body["supervisor_interface"]}, status=202)


# Acting on waiting calls ------------------------------------------------------------------

async def move_call(request: web.Request) -> web.Response:
    supervision, call_id = _supervision(request), request.match_info["call_id"]
    supervision.actions.waiting_call(call_id)
    body = await _body(request, "AcdMove")
    supervision.actions.move_call(call_id, body["queue"], _who(request))
    return _json(supervision.wallboard.queue_view(body["queue"]))


async def set_call_priority(request: web.Request) -> web.Response:
    supervision, call_id = _supervision(request), request.match_info["call_id"]
    call = supervision.actions.waiting_call(call_id)
    body = await _body(request, "AcdPriority")
    supervision.actions.set_priority(call_id, body["priority"], _who(request))
    return _json(supervision.wallboard.queue_view(call.queue))


# Declarations -----------------------------------------------------------------------------

def _figures_schema() -> dict:
    number = {"type": ["number", "null"]}
    counts = ("offered", "answered", "answered_within_sl", "abandoned", "short_abandoned", "rejected", "moved",
              "final_actions", "callbacks", "handled")
    ratios = ("sl_answered", "sl_offered", "abandon_rate", "asa", "aht", "occupancy")
    return {"type": "object", "properties": {name: {"type": "integer"} for name in counts}
            | {name: number for name in ratios}}


def _queue_definition_schema() -> dict:
    """A queue's table in the ACD file (config/acd.toml documents each key); checked by
    acd.config.parse_queue, this schema only describes it."""
    number, seconds = {"type": "number"}, {"type": ["number", "null"], "exclusiveMinimum": 0}
    levels = {"type": "object", "additionalProperties": {"type": "integer", "minimum": MIN_LEVEL, "maximum": MAX_LEVEL}}
    step = {"type": "object", "required": ["after_seconds"], "additionalProperties": False, "properties": {
        "after_seconds": number, "lower_thresholds": levels, "add_skills": {"type": "string"},
        "add_queues": {"type": "array", "items": {"type": "string"}}}}
    disposition = {"type": "object", "required": ["kind"], "additionalProperties": False, "properties": {
        "kind": {"enum": [kind.value for kind in DispositionKind]}, "target": {"type": "string"}}}
    callback = {"type": "object", "additionalProperties": False, "properties": {
        "retry_after_busy": number, "retry_after_no_answer": number, "retry_after_failed": number,
        "max_attempts": {"type": "integer", "minimum": 1}}}
    return {"type": "object", "required": ["skills"], "additionalProperties": False,
            "description": "The queue's table of the ACD file (config/acd.toml); keys left out take their defaults",
            "properties": {
                "skills": {"type": "string", "description": 'Requirement expression, e.g. "support>=50 | english"'},
                "strategy": {"enum": [strategy.value for strategy in Strategy]},
                "weight": number, "ring_timeout": number, "wrap_up_seconds": number,
                "max_waiting": {"type": ["integer", "null"], "minimum": 0}, "max_wait_seconds": seconds,
                "final_action": disposition, "ewt_limit_seconds": seconds,
                "overflow": {"type": "array", "items": step},
                "announce_first_after": {"type": ["number", "null"], "minimum": 0}, "announce_every": seconds,
                "service_level_seconds": number, "short_abandon_seconds": number, "initial_aht_seconds": number,
                "callback": callback, "survey_flow": {"type": "string"}}}


def _schemas() -> dict[str, dict]:
    """Bodies from their field declarations; answers as the wallboard builds them (docs/API.md)."""
    ref = {"$ref": "#/components/schemas/AcdFigures"}
    agent_figures = {"type": "object", "properties": {"handled": {"type": "integer"},
                                                      "aht": {"type": ["number", "null"]},
                                                      "occupancy": {"type": ["number", "null"]}}}
    queue = {"type": "object", "properties": {
        "queue": {"type": "string"}, "service_level_seconds": {"type": "number"}, "waiting": {"type": "integer"},
        "longest_wait": {"type": ["number", "null"]}, "longest_wait_since": {"type": ["number", "null"]},
        "expected_wait": {"type": ["number", "null"]},
        "agents_by_state": {"type": "object", "additionalProperties": {"type": "integer"}},
        "recent": ref, "today": ref, "calls": {"type": "array", "items": {"type": "object"}}}}
    agent = {"type": "object", "properties": {
        "agent_id": {"type": "string"}, "name": {"type": "string"}, "state": {"type": "string"},
        "reason": {"type": "string"}, "since": {"type": "number"}, "time_in_state": {"type": "number"},
        "call": {"type": ["string", "null"]}, "skills": SkillLevels().schema(),
        "queues": {"type": "array", "items": {"type": "string"}}, "recent": agent_figures, "today": agent_figures}}
    return {
        **{name: object_schema(spec, required) for name, (spec, required) in BODIES.items()},
        "AcdFigures": _figures_schema(),
        "AcdQueueDefinition": _queue_definition_schema(),
        "AcdQueue": queue,
        "AcdAgent": agent,
        "AcdQueues": {"type": "object", "properties": {"server_time": {"type": "number"}, "queues": {
            "type": "array", "items": {"$ref": "#/components/schemas/AcdQueue"}}}},
        "AcdAgents": {"type": "object", "properties": {"server_time": {"type": "number"}, "agents": {
            "type": "array", "items": {"$ref": "#/components/schemas/AcdAgent"}}}},
    }


SCHEMAS = _schemas()


def _route(*args: Any, **kwargs: Any) -> Route:
    return Route(*args, schemas=SCHEMAS, **kwargs)


_QUEUE = "/api/acd/queues/{queue}"
_AGENT = "/api/acd/agents/{agent_id}"
_CALL = "/api/acd/calls/{call_id}"
_NO_AGENT = {404: ("No such agent", "Error")}
_NO_CALL = {404: ("No call of that id is waiting or ringing", "Error")}
_NO_QUEUE = {404: ("No such queue", "Error")}
_CONFLICT = {409: ("The ACD cannot do it in the agent's or call's current state", "Error")}

ROUTES: tuple[Route, ...] = (
    _route("GET", "/api/acd/queues", _acting(list_queues),
           "Every queue: waiting calls with their waits and priorities, longest wait, service levels, "
           "ASA, abandon rate, offered, answered, agents by state (docs/KPIS.md, live figures)", READERS,
           answers={200: ("server_time and queues", "AcdQueues")}),
    _route("GET", _QUEUE, _acting(get_queue), "One queue's live figures", READERS,
           answers={200: ("The queue", "AcdQueue")} | _NO_QUEUE),
    _route("GET", _QUEUE + "/definition", _acting(get_queue_definition),
           "A queue's settings, as the ACD file's table for it", READERS,
           answers={200: ("The queue's definition", "AcdQueueDefinition")} | _NO_QUEUE),
    _route("PUT", _QUEUE, _acting(update_queue),
           "Replace a queue's settings (requirement, strategy, timeouts, overflow plan, final action...): "
           "stored, then in force at once for its waiting calls", ACTORS, body="AcdQueueDefinition",
           answers={200: ("The queue's definition now in force", "AcdQueueDefinition"),
                    409: ("The running ACD or the stored definitions refuse it (an unknown queue named, a loop "
                          "of final actions)", "Error")} | _NO_QUEUE),
    _route("GET", "/api/acd/agents", _acting(list_agents),
           "Every agent: state, time in state, reason, current call, handled, AHT, occupancy, skills", READERS,
           answers={200: ("server_time and agents", "AcdAgents")}),
    _route("GET", _AGENT, _acting(get_agent), "One agent's live figures", READERS,
           answers={200: ("The agent", "AcdAgent")} | _NO_AGENT),
    _route("PUT", _AGENT + "/skills", _acting(set_agent_skills),
           "Replace an agent's skills and proficiencies: stored, then routed with at once", ACTORS,
           body="AcdSkills", answers={200: ("The agent", "AcdAgent")} | _NO_AGENT),
    _route("POST", _AGENT + "/not-ready", _acting(force_not_ready),
           "Force an agent not ready: at once, or after the current call and wrap-up", ACTORS, body="AcdNotReady",
           answers={200: ('applies ("now" or "after the call") and the agent', None)} | _NO_AGENT | _CONFLICT),
    _route("POST", _AGENT + "/logout", _acting(force_logout),
           "Log an agent out; a call being talked goes on", ACTORS,
           answers={200: ("The agent", "AcdAgent")} | _NO_AGENT | _CONFLICT),
    _route("POST", _AGENT + "/monitor", _acting(monitor_agent),
           "Listen, whisper or barge on the agent's call: rings the supervisor's phone, which then "
           "spies on the agent's channel (ChanSpy)", ACTORS, body="AcdMonitor",
           answers={202: ("The supervisor's phone is being rung: agent_id, mode, channel, supervisor_interface",
                          None),
                   503: ("Asterisk could not be asked, or refused", "Error")} | _NO_AGENT | _CONFLICT),
    _route("POST", _CALL + "/move", _acting(move_call),
           "Move a waiting call to another queue; it keeps its arrival time", ACTORS, body="AcdMove",
           answers={200: ("The queue it now waits in", "AcdQueue")} | _NO_CALL | _CONFLICT),
    _route("POST", _CALL + "/priority", _acting(set_call_priority), "Set a waiting call's priority", ACTORS,
           body="AcdPriority", answers={200: ("The queue it waits in", "AcdQueue")} | _NO_CALL),
)


def add_routes(app: web.Application, supervision: Supervision) -> None:
    app[SUPERVISION] = supervision
    crm_api.add_routes(app, ROUTES)
