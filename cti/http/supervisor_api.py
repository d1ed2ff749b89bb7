"""The supervisors' live wallboard: the page at /supervisor/ and its WebSocket, /api/supervisor/ws.

On connect the socket sends a ``snapshot`` frame (every queue with its waiting calls, every
agent), then ``update`` frames with the queues and agents that changed, throttled by the
wallboard (cti/supervision.py). The client may send ``{"type": "snapshot"}`` to be sent a fresh
snapshot (after a suspected gap). Frames are documented in docs/API.md.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from cti.http import crm_api, ws
from cti.http.auth import PRINCIPAL
from cti.http.crm_api import Route
from cti.supervision import Body, Fanout, Wallboard

log = structlog.get_logger(__name__)

PAGE = Path(__file__).with_name("static") / "supervisor" / "index.html"
FANOUT = web.AppKey("supervisor_fanout", Fanout)
SOCKETS = web.AppKey("supervisor_sockets", weakref.WeakSet)


def _encode(kind: str, body: Body) -> str:
    return ws.frame(kind, **body).decode()


async def supervisor_socket(request: web.Request) -> web.WebSocketResponse:
    principal = request[PRINCIPAL]  # authorised by the route's role (crm_api.add_routes)
    socket = await ws.open_socket(request)
    request.app[SOCKETS].add(socket)
    # Replies go through the subscription too: one writer per socket keeps frames in order.
    subscription = request.app[FANOUT].subscribe(socket.send_str)
    log.info("supervisor.connected", supervisor=principal.name)
    try:
        async for command in ws.commands(socket):
            if command["type"] == "snapshot":
                subscription.resync()
            else:
                subscription.push(_encode("result", ws.result(command, False, error="unknown command; try snapshot")))
    finally:
        await subscription.close()
        log.info("supervisor.disconnected", supervisor=principal.name)
    return socket


async def page(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache"})


async def to_page(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/supervisor/")


ROUTES = (
    Route("GET", "/api/supervisor/ws", supervisor_socket,
          "WebSocket of the live wallboard (?token= for browsers): a snapshot, then throttled updates; "
          "frames in docs/API.md", ("supervisor",),
          answers={101: ("Switching to the WebSocket", None)}),
)


def add_routes(app: web.Application, wallboard: Wallboard) -> None:
    crm_api.add_routes(app, ROUTES)
    app.router.add_get("/supervisor", to_page)
    app.router.add_get("/supervisor/", page)
    app[FANOUT] = Fanout(wallboard, _encode)
    app[SOCKETS] = weakref.WeakSet()
    app.cleanup_ctx.append(_fanout_running)
    app.on_shutdown.append(_close_sockets)


async def _fanout_running(app: web.Application) -> AsyncIterator[None]:
    app[FANOUT].start()
    yield
    await app[FANOUT].close()


async def _close_sockets(app: web.Application) -> None:
    await ws.going_away(app[SOCKETS])
