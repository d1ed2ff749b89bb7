"""The aiohttp application: operator endpoints now, REST and WebSockets as features land."""

from __future__ import annotations

from pathlib import Path

import orjson
import structlog
from aiohttp import web

from cti.http import acd_api, crm_api, desktop_api, ops, reports_api, supervisor_api
from cti.http.auth import AUTHENTICATOR, TOKEN_THROTTLE, Authenticator
from cti.http.throttle import LoginThrottle
from cti.desktop.service import AgentDesks
from cti.metrics import Metrics
from cti.supervision import Supervision
from crm_bridge.reports import Reports

log = structlog.get_logger(__name__)

STATIC_DIR = Path(__file__).with_name("static")


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Errors answer in JSON and never leak a traceback; unexpected ones are logged."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.content_type == "application/json" or error.status < 400:
            raise
        raise type(error)(text=_json_message(error.reason), content_type="application/json",
                          headers={k: v for k, v in error.headers.items() if k.lower() != "content-type"}) from None
    except Exception:
        log.exception("http.unhandled_error", path=request.path, method=request.method)
        return web.json_response({"error": "internal error"}, status=500)


def _json_message(reason: str) -> str:
    return orjson.dumps({"error": reason.lower()}).decode()


def build_app(metrics: Metrics, readiness: dict, authenticator: Authenticator,
              crm_store: crm_api.CrmStore, reports: Reports | None = None,
              supervision: Supervision | None = None, desks: AgentDesks | None = None) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=1024 * 1024)
    app[AUTHENTICATOR] = authenticator
    app[TOKEN_THROTTLE] = LoginThrottle()  # only its per-address count: a token names no account
    app[ops.METRICS] = metrics
    app[ops.READINESS] = readiness
    app[crm_api.CRM_STORE] = crm_store
    ops.add_routes(app)
    crm_api.add_routes(app)
    if reports is not None:
        app[reports_api.REPORTS] = reports
        reports_api.add_routes(app)
    if desks is not None:
        app[desktop_api.DESKS] = desks
        desktop_api.add_routes(app)
    if supervision is not None:  # the daemon runs an ACD
        acd_api.add_routes(app, supervision)
        supervisor_api.add_routes(app, supervision.wallboard)
    # Pages are public; the data they fetch needs a token.
    app.router.add_static("/static/", STATIC_DIR)
    return app
