"""The composition root: builds every component from the Config and runs them together.

No other module keeps process-wide state; everything a component needs is handed to it here.
Start order is lab -> database -> HTTP; stop order is the reverse, and each step of a stop
runs even if an earlier one failed, so nothing is left running.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from pathlib import Path

import structlog
from aiohttp import web

from cti.config import Config, redacted
from cti.http.auth import StaticTokens
from crm_bridge.principals import Principal
from cti.http.server import build_app
from cti.lab import Lab
from cti.metrics import Metrics
from crm_bridge.database import Database

log = structlog.get_logger(__name__)


class Application:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.lab = Lab.from_config(config) if config.lab.enabled else None
        self.database = Database.from_config(config)
        self.readiness = {"database": self.database.check}
        self._runner: web.AppRunner | None = None
        self._stops: list[tuple[str, object]] = []

    async def start(self) -> None:
        log.info("cti.starting", config=redacted(self.config))
        try:
            if self.lab:
                await asyncio.to_thread(self.lab.start)
                self._stops.append(("lab", lambda: asyncio.to_thread(self.lab.stop)))
            await self.database.open()
            self._stops.append(("database", self.database.close))
            await self._start_http()
        except BaseException:
            await self.stop()
            raise
        log.info("cti.started", http=f"http://{self.config.http.host}:{self.config.http.port}",
                 operator_token_file=str(self.operator_token_file))

    async def stop(self) -> None:
        while self._stops:
            name, stop = self._stops.pop()
            try:
                await stop()
            except Exception:
                log.exception("cti.stop_failed", component=name)
        log.info("cti.stopped")

    async def _start_http(self) -> None:
        tokens = StaticTokens({self._operator_token(): Principal("operator", "operator")})
        app = build_app(self.metrics, self.readiness, tokens)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http.host, self.config.http.port)
        self._stops.append(("http", self._runner.cleanup))
        await site.start()

    @property
    def operator_token_file(self) -> Path:
        return self.config.path("operator.token")

    def _operator_token(self) -> str:
        """The configured token, or one generated once and kept in a 0600 file."""
        if self.config.http.operator_token:
            return self.config.http.operator_token
        path = self.operator_token_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip()


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then stop everything cleanly."""
    application = Application(config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await application.start()
    await stopping.wait()
    log.info("cti.signal_received")
    await application.stop()
