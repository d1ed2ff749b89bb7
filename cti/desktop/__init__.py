"""Agent desktops: sessions and tokens (``sessions``), the screen-pop (``pop``), the desks and their
commands (``service``, ``desk``). The HTTP and WebSocket side is ``cti.http.desktop_api``."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from crm_bridge.agent_sessions import AgentSessionStore, active_dispositions
from crm_bridge.agents import AgentRepository
from crm_bridge.customers import CustomerRepository
from crm_bridge.dnis import DnisDirectory
from crm_bridge.external import ExternalCrm
from crm_bridge.interactions import InteractionRepository
from crm_bridge.phone import PhoneNormalizer
from cti.acd_service import AcdService
from cti.callmodel.model import CallModel
from cti.desktop.pop import PopBuilder
from cti.desktop.service import AgentDesks, DeskSettings
from cti.desktop.sessions import AgentSessions


def build_desks(pool: asyncpg.Pool, phones: PhoneNormalizer, acd: AcdService, model: CallModel,
                links: Mapping, *, recorder=None, external: ExternalCrm | None = None,
                settings: DeskSettings = DeskSettings()) -> AgentDesks:
    """The desks on the CRM store: what the daemon runs, and what the tests assemble."""
    sessions = AgentSessions(AgentSessionStore(pool), AgentRepository(pool).verify_secret,
                             lambda agent_id: acd.definitions.agent(agent_id) is not None)
    pops = PopBuilder(CustomerRepository(pool, phones), InteractionRepository(pool, phones),
                      DnisDirectory(pool, phones), external)
    return AgentDesks(acd, model, links, sessions, pops, lambda: active_dispositions(pool),
                      recorder=recorder, settings=settings)
