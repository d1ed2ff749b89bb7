"""Agent desktop endpoints: login and logout, the desktop's WebSocket, the dispositions catalogue,
and the page at /agent/ (docs/API.md, "Agent desktop")."""

from __future__ import annotations

from pathlib import Path

import structlog
from aiohttp import web

from cti.desktop.service import AgentDesks, Refused
from cti.desktop.sessions import AGENT_ROLE
from cti.http import ws
from cti.http.auth import PRINCIPAL, authorize, requires, too_many_tries
from cti.http.throttle import LoginThrottle

log = structlog.get_logger(__name__)

DESKS = web.AppKey("desks", AgentDesks)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
PAGE = Path(__file__).with_name("static") / "agent" / "index.html"
_MAX_SECRET = 1024  # argon2 hashes whatever it gets: a megabyte password must not cost a megabyte's work


async def login(request: web.Request) -> web.Response:
    body = await _json_object(request)
    agent_id, secret = body.get("agent_id"), body.get("password")
    if not isinstance(agent_id, str) or not isinstance(secret, str) or not agent_id or len(secret) > _MAX_SECRET:
        return web.json_response({"error": "agent_id and password (strings) are required"}, status=422)
    agent_id, address, throttle = agent_id.strip(), request.remote or "?", request.app[LOGIN_THROTTLE]
    if wait := throttle.retry_after(address, agent_id):
        log.warning("agent.login_throttled", agent=agent_id, address=address)
        raise too_many_tries("too many failed logins", wait)
    desks = request.app[DESKS]
    session = await desks.login(agent_id, secret)
    if session is None:
        throttle.failed(address, agent_id)
        log.info("agent.login_refused", agent=agent_id, address=address)
        return web.json_response({"error": "unknown agent or wrong password"}, status=401)
    throttle.succeeded(address, agent_id)
    log.info("agent.logged_in", agent=agent_id, took_over=session.replaced)
    desk = await desks.desk(agent_id)
    return web.json_response({"token": session.token, "agent": {"id": desk.agent_id, "name": desk.name},
                              "took_over": session.replaced})


@requires(AGENT_ROLE)
async def logout(request: web.Request) -> web.Response:
    agent_id = request[PRINCIPAL].name
    try:
        await request.app[DESKS].logout(agent_id)
    except Refused as refused:
        return web.json_response({"error": refused.message, "code": refused.code}, status=409)
    log.info("agent.logged_out", agent=agent_id)
    return web.json_response({"logged_out": True})


@requires(AGENT_ROLE, "supervisor")
async def dispositions(request: web.Request) -> web.Response:
    return web.json_response({"items": request.app[DESKS].dispositions})


async def desktop_socket(request: web.Request) -> web.WebSocketResponse:
    """One agent's desktop: pushes, and commands each answered with a result frame."""
    agent_id = (await authorize(request, AGENT_ROLE)).name
    desks = request.app[DESKS]
    socket = await ws.open_socket(request)
    await desks.connect(agent_id, socket)
    try:
        async for command in ws.commands(socket):
            await _carry_out(desks, agent_id, socket, command)
    finally:
        desks.disconnect(agent_id, socket)
    return socket


async def _carry_out(desks: AgentDesks, agent_id: str, socket: web.WebSocketResponse, command: dict) -> None:
    try:
        result = await desks.command(agent_id, command)
    except Refused as refused:
        await ws.reply(socket, command, False, error=refused.message, code=refused.code)
    except Exception:
        log.exception("agent.command_failed", agent=agent_id, command=command.get("type"))
        await ws.reply(socket, command, False, error="internal error", code="internal")
    else:
        await ws.reply(socket, command, True, **result)


async def page(_request: web.Request) -> web.FileResponse:
    # Public like the other pages: everything it shows comes over the authenticated socket.
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache"})


async def _to_page(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/agent/")


async def _json_object(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "the body must be a JSON object"}', content_type="application/json")
    return body


def add_routes(app: web.Application) -> None:
    """The desktop's routes; ``app[DESKS]`` must be set before the first request."""
    app[LOGIN_THROTTLE] = LoginThrottle()
    app.on_shutdown.append(_close_desktops)
    app.router.add_post("/api/agent/login", login)
    app.router.add_post("/api/agent/logout", logout)
    app.router.add_get("/api/agent/dispositions", dispositions)
    app.router.add_get("/api/agent/ws", desktop_socket)
    app.router.add_get("/agent/", page)
    app.router.add_get("/agent", _to_page)


async def _close_desktops(app: web.Application) -> None:
    await app[DESKS].close_sockets()
