"""Shared by the test_crm_* modules: a migrated database, sample calls, waiting on a condition."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from cti.http.auth import Authenticator, FirstMatch, StaticTokens
from crm_bridge.api_clients import DatabaseTokens, create_client
from crm_bridge.database import Database
from crm_bridge.interactions import InteractionEvent, InteractionOutcome, InteractionRecord
from crm_bridge.phone import PhoneNormalizer
from crm_bridge.principals import Principal

PHONES = PhoneNormalizer("DE")
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(name="database")
async def database_fixture(db_dsn: str) -> Database:
    """The test's own database, migrated, with a pool (import this, use ``database``)."""
    instance = Database(db_dsn)
    await instance.open()
    yield instance
    await instance.close()


def sample_call(number: int, *, closed: bool = True, ani: str = "030 1234567", queue: str = "sales",
                agents: tuple[str, ...] = ("a100",), system: str = "pbx1",
                outcome: InteractionOutcome = InteractionOutcome.COMPLETED) -> InteractionRecord:
    started = T0 + timedelta(seconds=number)
    ended = started + timedelta(seconds=90) if closed else None
    events = [InteractionEvent(started, "started", {"channel": f"PJSIP/trunk-{number}"}),
              InteractionEvent(started + timedelta(seconds=5), "queued", {"queue": queue})]
    if closed:
        events.append(InteractionEvent(ended, "ended", {"cause": 16}))
    return InteractionRecord(
        system_name=system, linkedid=f"1700000000.{number}", started_at=started, ani=ani,
        caller_name="José Müller", dnis="100", service="sales", ivr_path=("main", "1"),
        ivr_data={"account": "A-1"}, queue=queue, required_skills=("german",), priority=1,
        agents=agents, queued_at=started + timedelta(seconds=5),
        answered_at=started + timedelta(seconds=20) if closed else None, ended_at=ended,
        wait_seconds=15.0 if closed else None, talk_seconds=70.0 if closed else None,
        outcome=outcome if closed else None, events=tuple(events))


async def eventually(condition: Callable[[], bool | Awaitable[bool]], what: str, limit: float = 60.0) -> None:
    """Wait until ``condition()`` holds; fail (not a timing assertion: a hang guard) after ``limit``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not await _holds(condition):
        if loop.time() > deadline:
            pytest.fail(f"still waiting for {what}")
        await asyncio.sleep(0.02)


async def _holds(condition: Callable[[], bool | Awaitable[bool]]) -> bool:
    result = condition()
    return await result if inspect.isawaitable(result) else result


async def role_tokens(pool, agent_id: str) -> tuple[Authenticator, dict[str, str]]:
    """A token per role: API clients for crm, supervisor and operator, and a static token for the
    agent ``agent_id``; with the authenticator that knows them all."""
    tokens = {role: await create_client(pool, f"{role}-app", role) for role in ("crm", "supervisor", "operator")}
    tokens["agent"] = f"agent-{agent_id}-token"
    return FirstMatch(StaticTokens({tokens["agent"]: Principal(agent_id, "agent")}), DatabaseTokens(pool)), tokens


def auth(client, role: str = "supervisor") -> dict:
    """The Authorization header of the client's token for ``role``."""
    return {"Authorization": f"Bearer {client.tokens[role]}"}
