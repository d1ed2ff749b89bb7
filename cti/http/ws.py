"""What every WebSocket endpoint shares: the JSON envelope and bad-message replies (the
handshake is authorised like any request: cti.http.auth.authorize).

Frames are JSON objects ``{"v": 1, "type": "...", ...}``. A client command may carry an ``id``;
its reply (``{"type": "result", "id": ..., "ok": true|false, ...}``) echoes it. A frame that is
not JSON, not an object, of another version or without a type gets an ``error`` frame saying
what was wrong, and the connection stays open: a buggy page must not lose its agent's session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import structlog
from aiohttp import WSCloseCode, WSMsgType, web


log = structlog.get_logger(__name__)

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024


async def going_away(sockets: Iterable[web.WebSocketResponse]) -> None:
    """A stopping daemon says goodbye, so pages reconnect to its successor instead of waiting; and
    the HTTP server's shutdown need not wait for their handlers."""
    await asyncio.gather(*(socket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
                           for socket in list(sockets)))


async def open_socket(request: web.Request, heartbeat: float = 20.0) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(heartbeat=heartbeat, max_msg_size=MAX_FRAME_BYTES)
    await socket.prepare(request)
    return socket


def frame(kind: str, **fields: Any) -> bytes:
    return orjson.dumps({"v": PROTOCOL_VERSION, "type": kind, **fields})


async def send(socket: web.WebSocketResponse, kind: str, **fields: Any) -> bool:
    """Send one frame; False when the client is already gone (not an error: it may reconnect)."""
    if socket.closed:
        return False
    try:
        await socket.send_str(frame(kind, **fields).decode())
    except (ConnectionError, RuntimeError):
        return False
    return True


def result(command: dict, ok: bool, **fields: Any) -> dict[str, Any]:
    """The fields of the ``result`` frame answering ``command``."""
    return {"id": command.get("id"), "command": command.get("type"), "ok": ok, **fields}


async def reply(socket: web.WebSocketResponse, command: dict, ok: bool, **fields: Any) -> bool:
    return await send(socket, "result", **result(command, ok, **fields))


async def commands(socket: web.WebSocketResponse) -> AsyncIterator[dict[str, Any]]:
    """The client's well-formed commands; malformed frames are answered with an error and skipped."""
    async for message in socket:
        if message.type == WSMsgType.TEXT:
            command, problem = parse_command(message.data)
            if problem is None:
                yield command
            else:
                log.info("ws.bad_frame", problem=problem)
                await send(socket, "error", error=problem)
        elif message.type == WSMsgType.BINARY:
            await send(socket, "error", error="binary frames are not accepted: send JSON text")
        elif message.type == WSMsgType.ERROR:
            log.info("ws.connection_error", error=str(socket.exception()))


def parse_command(text: str) -> tuple[dict[str, Any], str | None]:
    """A frame's command, or what is wrong with it."""
    try:
        command = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        return {}, f"not JSON: {error}"
    if not isinstance(command, dict):
        return {}, "a frame must be a JSON object"
    if command.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION:
        return {}, f"protocol version {command.get('v')!r} is not supported; this server speaks {PROTOCOL_VERSION}"
    if not isinstance(command.get("type"), str) or not command["type"]:
        return {}, "a frame needs a string 'type'"
    return command, None
