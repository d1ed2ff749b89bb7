"""Agent logins: a password gives a token, one desktop per agent, tokens kept as hashes only."""

from __future__ import annotations

import pytest

from cti.desktop.sessions import AgentSessions, token_digest
from crm_bridge.principals import Principal
from tests.unit.desktop_fakes import PASSWORD, MemorySessionStore

pytestmark = pytest.mark.unit


def sessions(store: MemorySessionStore, verified: list | None = None) -> AgentSessions:
    async def verify(agent_id: str, secret: str) -> bool:
        if verified is not None:
            verified.append(agent_id)
        return secret == PASSWORD

    return AgentSessions(store, verify, lambda agent_id: agent_id in ("a1", "a2"))


async def test_a_password_gives_a_token_that_names_the_agent():
    store = MemorySessionStore()
    login = await sessions(store).login("a1", PASSWORD)
    assert login.token.startswith("agt_") and not login.replaced
    assert await sessions(store).authenticate(login.token) == Principal("a1", "agent")  # after a restart too
    assert list(store.tokens.values()) == [token_digest(login.token)]  # never the token itself


async def test_wrong_passwords_and_agents_outside_the_acd_get_nothing():
    verified = []
    service = sessions(MemorySessionStore(), verified)
    assert await service.login("a1", "wrong") is None
    assert await service.login("intruder", PASSWORD) is None
    assert verified == ["a1"]  # no hashing work for an agent the ACD does not have


async def test_a_second_login_replaces_the_first_token_and_logout_ends_the_second():
    service = sessions(MemorySessionStore())
    first = await service.login("a1", PASSWORD)
    second = await service.login("a1", PASSWORD)
    assert second.replaced
    assert await service.authenticate(first.token) is None
    assert await service.authenticate(second.token) == Principal("a1", "agent")
    await service.logout("a1")
    assert await service.authenticate(second.token) is None


async def test_other_sources_tokens_are_left_to_them():
    store = MemorySessionStore()
    store.agent_for = None  # would fail if asked
    assert await sessions(store).authenticate("cti_0123456789ab_secret") is None
