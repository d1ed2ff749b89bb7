"""What the WebSocket benches share: an app served on loopback with the bench's client process
beside it, and the percentile of a list of latencies."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def served_with_clients(app: web.Application, bench: str, path: str, *client_args: str,
                              **process_options) -> AsyncIterator[asyncio.subprocess.Process]:
    """Serve ``app`` on a free loopback port and start ``bench --client-of ws://...<path>`` in a
    child process (its own core on a 2-core box); at the end the child is killed if it still runs,
    and the server stopped."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    clients = await asyncio.create_subprocess_exec(
        sys.executable, bench, "--client-of", f"ws://127.0.0.1:{port}{path}", *client_args,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, **process_options)
    try:
        yield clients
    finally:
        if clients.returncode is None:
            clients.kill()
        await runner.cleanup()


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank, no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
