"""structlog set-up: JSON lines in production, readable console output on a terminal.

Call-scoped code binds ``call_id`` with ``structlog.contextvars.bind_contextvars`` so every
line it logs carries it; secrets are masked by key name before anything is rendered.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

_SECRET_KEYS = frozenset({"secret", "password", "token", "dsn", "authorization", "key"})


def _mask_secrets(_logger: object, _name: str, event: dict) -> dict:
    for key in event.keys() & _SECRET_KEYS:
        event[key] = "***"
    return event


def _orjson_dumps(event: dict, **_: object) -> str:
    return orjson.dumps(event, default=str).decode()


def configure(format: str = "auto", level: str = "info", stream=None) -> None:
    stream = stream or sys.stderr
    use_console = format == "console" or (format == "auto" and stream.isatty())
    renderer = (structlog.dev.ConsoleRenderer(colors=stream.isatty()) if use_console
                else structlog.processors.JSONRenderer(serializer=_orjson_dumps))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
