"""Shared by the supervision tests: small ACD definitions stored in the test's database, and the
app with a real AcdService and a token per role."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from acd import AgentLogin, AgentReady, QueueSettings
from acd.config import AcdDefinitions, AgentDefinition
from cti.acd_service import AcdService
from cti.http.crm_api import CrmStore
from cti.http.server import build_app
from cti.metrics import Metrics
from cti.supervision import Supervision
from crm_bridge.acd_store import AcdStore
from tests.integration.crm_support import PHONES, role_tokens


# Alice and Bob both take support calls; Carol takes sales and vip. Routing is longest idle. The
# vip queue's 1 s service-level threshold lets a test see waits go over it.
DEFINITIONS = AcdDefinitions(
    queues=(QueueSettings("support", "support>=50", service_level_seconds=20),
            QueueSettings("sales", "sales>=50", service_level_seconds=30),
            QueueSettings("vip", "vip>=50", service_level_seconds=1)),
    agents=(AgentDefinition("1001", "Alice", "PJSIP/1001", skills={"support": 80}),
            AgentDefinition("1002", "Bob", "PJSIP/1002", skills={"support": 60}),
            AgentDefinition("1003", "Carol", "PJSIP/1003", skills={"sales": 80, "vip": 50})),
)


@dataclass
class Supervised:
    app: web.Application
    acd: AcdService
    tokens: dict[str, str]


async def supervised_app(pool, calls=None, control_for=None, **wallboard_options) -> Supervised:
    """The app over definitions stored like the daemon's (imported, then loaded back)."""
    store = AcdStore(pool)
    await store.import_definitions(DEFINITIONS, "tests", "sha-of-tests")
    acd = AcdService(await store.load())
    supervision = Supervision.build(acd, store, calls, control_for, **wallboard_options)
    authenticator, tokens = await role_tokens(pool, "1001")
    app = build_app(Metrics(), {}, authenticator, CrmStore.from_pool(pool, PHONES), supervision=supervision)
    app.on_cleanup.append(lambda _app: _closed(acd, supervision))
    return Supervised(app, acd, tokens)


async def _closed(acd: AcdService, supervision: Supervision) -> None:
    await supervision.close()
    acd.close()


def log_in(acd: AcdService) -> None:
    """Every agent logged in, not ready: calls can queue (with nobody logged in they are refused)."""
    for agent in DEFINITIONS.agents:
        acd.submit(AgentLogin(agent.agent_id))


def ready(acd: AcdService, *agent_ids: str) -> None:
    """Log agents in and make them available, in this order (the first has been idle longest)."""
    for agent_id in agent_ids:
        acd.submit(AgentLogin(agent_id))
        acd.submit(AgentReady(agent_id))
