"""The composition root: builds every component from the Config and runs them together.

No other module keeps process-wide state; everything a component needs is handed to it here.
Start order is lab -> database -> interaction logger -> FastAGI -> AMI links -> HTTP; stop order is the reverse,
and each step of a stop runs even if an earlier one failed, so nothing is left running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import signal
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web

from acd.config import read_acd_file
from cti.acd_runtime import AcdRuntime
from cti.acd_service import AcdService
from cti.agi.server import AgiServer
from cti.queued_call import QueueingSettings
from crm_bridge.acd_store import AcdStore
from cti.callmodel.bus import EventBus
from cti.callmodel.model import CallModel
from cti.config import Config, redacted
from cti.http.auth import FirstMatch, StaticTokens
from cti.http.crm_api import CrmStore
from crm_bridge.principals import Principal
from cti.http.server import build_app
from cti.lab import Lab
from cti.link import AmiLink
from cti.metrics import Metrics, stat_families
from cti.recorder import CallRecorder
from cti.sessions import InboundSessions
from cti.desktop import build_desks
from cti.desktop.service import AgentDesks, DeskSettings
from cti.supervision import Supervision
from crm_bridge.api_clients import DatabaseTokens
from crm_bridge.customers import CustomerRepository
from crm_bridge.external import ExternalCrm
from ivr import load_flows
from crm_bridge.logger import InteractionLogger
from crm_bridge.reports import Reports
from crm_bridge.phone import PhoneNormalizer
from crm_bridge.webhooks import WebhookDispatcher, WebhookEndpoint
from crm_bridge.database import Database

log = structlog.get_logger(__name__)


class Application:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.lab = Lab.from_config(config) if config.lab.enabled else None
        self.database = Database.from_config(config)
        self.readiness = {"database": self.database.check}
        self.calls = CallModel()
        self.bus = EventBus()
        self.links = {name: AmiLink(name, server, self.calls, self.bus)
                      for name, server in config.ami_servers().items()}
        self.readiness.update({f"ami.{name}": link.check for name, link in self.links.items()})
        self.agi = AgiServer(config.agi.host, config.agi.port, max_sessions=config.agi.max_sessions,
                             env_timeout=config.agi.env_timeout) if config.agi.enabled else None
        self.phones = PhoneNormalizer(config.crm.default_country)
        self.flows = load_flows(config.ivr.flows) if config.ivr.flows else None
        self.interaction_log: InteractionLogger | None = None
        self.acd: AcdService | None = None
        self.acd_runtime: AcdRuntime | None = None
        self.queueing_settings = QueueingSettings(config.acd.moh_class, config.acd.outbound_interface,
                                                  config.acd.callback_digit)
        self._register_metrics()
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
            await self._start_interaction_log()
            self._stops.append(("bus", self.bus.aclose))
            await self._start_acd()
            await self._start_agi()
            for link in self.links.values():
                link.start()
                self._stops.append((f"ami.{link.name}", link.close))
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

    async def _start_interaction_log(self) -> None:
        # Closed before the database, so queued records are written (or spooled), not lost.
        hooks = self.config.crm.webhooks
        if hooks:
            dispatcher = WebhookDispatcher(self.database.pool, {
                name: WebhookEndpoint(hook.url, hook.secret) for name, hook in hooks.items()})
            await dispatcher.start()
            self._stops.append(("webhooks", dispatcher.close))
        self.interaction_log = InteractionLogger(
            self.database.pool, self.config.path("spool/interactions.jsonl"), self.phones,
            webhook_endpoints=list(hooks))
        await self.interaction_log.start()
        self._stops.append(("interaction_log", self.interaction_log.close))
        self.recorder = CallRecorder(self.calls, self.bus, self.interaction_log)

    async def _start_acd(self) -> None:
        """Queues and agents: the file is imported into the store when it changed, then the store
        (with the supervisors' live changes) is what the engine runs."""
        if not self.config.acd.file:
            return
        path = Path(self.config.acd.file).resolve()
        store = AcdStore(self.database.pool)
        definitions, sha256 = read_acd_file(path)
        await store.import_definitions(definitions, str(path), sha256)
        self.acd_runtime = AcdRuntime(await store.load(), self.calls, self.bus, self.links, self.queueing_settings,
                                      self.flows)
        self.acd = self.acd_runtime.acd
        self._stops.append(("acd", self.acd_runtime.close))

    async def _start_agi(self) -> None:
        if self.agi is None:
            return
        customers = CustomerRepository(self.database.pool, self.phones)
        queueing = None
        if self.acd_runtime is not None:
            queueing = self.acd_runtime.queueing(customers.find_by_phone)
            self.acd_runtime.add_routes(self.agi)
        self.agi.route("inbound", InboundSessions(self.calls, self.bus, self.flows, customers.find_by_account,
                                                  queueing).handle)
        await self.agi.start()
        self._stops.append(("agi", self.agi.close))

    def _register_metrics(self) -> None:
        def collect() -> list:
            families = stat_families("cti_ami", "AMI link", "server",
                                     {name: link.stats() for name, link in self.links.items()},
                                     gauges=frozenset({"connected"}))
            if self.agi:
                stats = dataclasses.asdict(self.agi.stats)
                families += stat_families("cti_agi", "FastAGI server", "listener", {"agi": stats},
                                          gauges=frozenset({"sessions_active"}))
            calls = {"live": sum(1 for _ in self.calls.calls()), "malformed_events": self.calls.malformed_events,
                     "bus_dropped": self.bus.dropped}
            families += stat_families("cti_calls", "call model", "model", {"calls": calls},
                                      gauges=frozenset({"live"}))
            if self.interaction_log:
                families += stat_families("cti_interaction_log", "interaction records", "store",
                                          {"crm": dataclasses.asdict(self.interaction_log.stats)})
            if self.acd:
                families += self._acd_families()
            return families
        self.metrics.collect_from(collect)

    def _acd_families(self) -> list:
        """ACD health for operators: decisions, listener failures, calls waiting and agents by state."""
        acd = self.acd
        engine = acd.engine
        queues = {queue.name: {"waiting": len(engine.waiting_calls(queue.name))} for queue in acd.definitions.queues}
        states: dict[str, int] = {}
        for agent in acd.definitions.agents:
            state = str(engine.agent_state(agent.agent_id))
            states[state] = states.get(state, 0) + 1
        totals = {"decisions": acd.decisions_made, "listener_errors": acd.listener_errors}
        return (stat_families("cti_acd", "ACD", "acd", {"acd": totals})
                + stat_families("cti_acd_queue", "ACD queue", "queue", queues, gauges=frozenset({"waiting"}))
                + stat_families("cti_acd_agents", "ACD agents by state", "state",
                                {state: {"count": count} for state, count in states.items()},
                                gauges=frozenset({"count"})))

    async def _start_http(self) -> None:
        external = self._external_crm()  # one session and one cache, for the API and the pops
        desks = await self._start_desktops(external)
        agent_tokens = (desks.sessions,) if desks else ()
        tokens = FirstMatch(StaticTokens({self._operator_token(): Principal("operator", "operator")}),
                            *agent_tokens, DatabaseTokens(self.database.pool))
        store = CrmStore.from_pool(self.database.pool, self.phones, external)
        app = build_app(self.metrics, self.readiness, tokens, store, Reports(self.database.pool),
                        supervision=self._start_supervision(), desks=desks)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http.host, self.config.http.port)
        self._stops.append(("http", self._runner.cleanup))
        await site.start()

    async def _start_desktops(self, external: ExternalCrm | None) -> AgentDesks | None:
        """Agent desktops (cti/desktop), when the daemon runs an ACD."""
        if self.acd_runtime is None:
            return None
        desks = build_desks(self.database.pool, self.phones, self.acd, self.calls, self.links,
                            recorder=self.recorder, external=external,
                            settings=DeskSettings(self.config.acd.outbound_interface,
                                                  away_after_seconds=self.config.acd.desktop_away_seconds))
        await desks.start(self.bus)
        self._stops.append(("desktops", desks.close))
        return desks

    def _start_supervision(self) -> Supervision | None:
        """The supervisors' wallboard and actions, when the daemon runs an ACD."""
        if self.acd_runtime is None:
            return None
        supervision = Supervision.build(self.acd, AcdStore(self.database.pool), self.calls,
                                        self.acd_runtime.call_control, self.flows.flows if self.flows else ())
        self._stops.append(("supervision", supervision.close))
        return supervision

    def _external_crm(self) -> ExternalCrm | None:
        settings = self.config.crm.external
        if not settings.url_template:
            return None
        session = aiohttp.ClientSession()
        self._stops.append(("external_crm", session.close))
        headers = {settings.api_key_header: settings.api_key} if settings.api_key_header and settings.api_key else {}
        return ExternalCrm(session, settings.url_template, timeout=settings.timeout,
                           cache_ttl=settings.cache_ttl, headers=headers)

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
