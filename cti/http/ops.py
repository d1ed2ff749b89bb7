"""Operator endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from cti.http.auth import requires
from cti.metrics import CONTENT_TYPE, Metrics

# A readiness check answers (ok, detail); it must not hang, so each runs under a timeout.
ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]
READINESS = web.AppKey("readiness", dict)
METRICS = web.AppKey("metrics", Metrics)
CHECK_TIMEOUT = 2.0


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers. Unauthenticated on purpose: it reveals nothing."""
    return web.json_response({"status": "alive"})


@requires("operator", "supervisor")
async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, ReadinessCheck] = request.app[READINESS]
    results = await asyncio.gather(*(_run_check(check) for check in checks.values()))
    components = {name: {"ok": ok, "detail": detail} for name, (ok, detail) in zip(checks, results)}
    not_ready = sorted(name for name, state in components.items() if not state["ok"])
    body = {"status": "ready" if not not_ready else "not ready", "not_ready": not_ready,
            "components": components}
    return web.json_response(body, status=503 if not_ready else 200)


async def _run_check(check: ReadinessCheck) -> tuple[bool, str]:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return False, f"no answer within {CHECK_TIMEOUT:g} s"
    except Exception as error:  # a failing check is a "not ready" answer, never a 500
        return False, f"{type(error).__name__}: {error}"


@requires("operator", "supervisor")
async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
