"""The aiohttp application: operator endpoints now, REST and WebSockets as features land."""

from __future__ import annotations

import orjson
import structlog
from aiohttp import web

from cti.http import crm_api, ops
from cti.http.auth import AUTHENTICATOR, Authenticator
from cti.metrics import Metrics

log = structlog.get_logger(__name__)


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
              crm_store: crm_api.CrmStore) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=1024 * 1024)
    app[AUTHENTICATOR] = authenticator
    app[ops.METRICS] = metrics
    app[ops.READINESS] = readiness
    app[crm_api.CRM_STORE] = crm_store
    ops.add_routes(app)
    crm_api.add_routes(app)
    return app
