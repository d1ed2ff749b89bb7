"""The ACD's definitions in PostgreSQL: imported from the ACD file, changed by supervisors.

Import policy (``import_definitions``), so that supervisors' run-time changes survive restarts:

- A file is imported only when its content hash differs from the last import of the same
  source. An unchanged file is skipped, and the database, with whatever supervisors changed
  since, stays as it is.
- When the file changed, every queue, agent and the tier table it defines replace the
  database's (the file wins), in one transaction, with the hash.
- Nothing is deleted: queues and agents missing from the file stay (an agent has history in the
  interaction log; deactivate it in the CRM instead). An agent's ``active`` flag and secret are
  the CRM's and never touched here.

The database always holds a valid whole: every write (import or supervisor change) merges into
the current definitions, checks the result with ``acd.config.parse_acd``, and only then writes,
under one advisory lock, so two writers cannot each pass the checks and together break them.
The rows keep the ACD file's format (``queue_to_dict``, ``agent_to_dict``), so ``load`` checks
them with the same parser, and a bad row raises ``AcdConfigError`` naming it
(``database: agents.1001.skills.support: expected an integer 1-100, got 'lots'``).

The ACD's agents are the active rows of ``agents`` that have an interface; their ``skills``
column (the CRM's list) is written as the keys of ``proficiency``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson

from acd.config import (
    AcdDefinitions,
    AgentDefinition,
    agent_to_dict,
    definitions_to_dict,
    parse_acd,
    queue_to_dict,
)
from acd.model import QueueSettings

DATABASE = "database"  # the source named in errors about rows
_LOCK_KEY = 0x4354490002  # arbitrary, stable: "CTI" + 2 (migrations use + 1)
_TIERS_KEY = "tier_priorities"

_SELECT_QUEUES = "SELECT name, definition FROM acd_queues ORDER BY name"
_SELECT_AGENTS = ("SELECT id, name, interface, device, proficiency FROM agents "
                  "WHERE active AND interface IS NOT NULL ORDER BY id")
_SELECT_SETTING = "SELECT value FROM acd_settings WHERE key = $1"
_UPSERT_QUEUE = """
INSERT INTO acd_queues (name, definition, updated_by) VALUES ($1, $2::jsonb, $3)
ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now(),
                                 updated_by = EXCLUDED.updated_by"""
_UPSERT_AGENT = """
INSERT INTO agents (id, name, skills, interface, device, proficiency, updated_at, updated_by)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, now(), $7)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, skills = EXCLUDED.skills,
    interface = EXCLUDED.interface, device = EXCLUDED.device, proficiency = EXCLUDED.proficiency,
    updated_at = now(), updated_by = EXCLUDED.updated_by"""
_UPSERT_SETTING = """
INSERT INTO acd_settings (key, value, updated_by) VALUES ($1, $2::jsonb, $3)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by"""
_UPSERT_IMPORT = """
INSERT INTO acd_imports (source, sha256) VALUES ($1, $2)
ON CONFLICT (source) DO UPDATE SET sha256 = EXCLUDED.sha256, imported_at = now()"""

Document = dict[str, Any]  # the ACD file's shape: {"tiers": ..., "queues": {...}, "agents": {...}}


class AcdStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self) -> AcdDefinitions:
        """Every queue and the ACD's agents, checked; ``AcdConfigError`` names a bad row."""
        async with self._pool.acquire() as connection:
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                return parse_acd(await _read(connection), DATABASE)

    async def import_definitions(self, definitions: AcdDefinitions, source: str, sha256: str) -> bool:
        """Write the file's definitions unless this content of ``source`` was imported last;
        returns whether it did. ``source`` must name the file the same way at every start."""
        async with self._writing() as connection:
            if await connection.fetchval("SELECT sha256 FROM acd_imports WHERE source = $1", source) == sha256:
                return False
            document = await _read(connection)
            incoming = definitions_to_dict(definitions)
            document["tiers"] = incoming["tiers"]
            for section in ("queues", "agents"):
                document[section].update(incoming[section])
            parse_acd(document, f"{source} + {DATABASE}")  # the file may clash with rows it lacks
            by = f"import:{source}"
            await _write_queues(connection, definitions.queues, by)
            await _write_agents(connection, definitions.agents, by)
            await connection.execute(_UPSERT_SETTING, _TIERS_KEY, _json(definitions.tier_priorities), by)
            await connection.execute(_UPSERT_IMPORT, source, sha256)
            return True

    async def save_queue(self, queue: QueueSettings, by: str) -> AcdDefinitions:
        """Create or replace a queue; returns the definitions now in force."""
        return await self._change("queues", queue.name, lambda current: queue_to_dict(queue), by)

    async def save_agent(self, agent: AgentDefinition, by: str) -> AcdDefinitions:
        """Create or replace an agent (its CRM row keeps its secret and active flag)."""
        return await self._change("agents", agent.agent_id, lambda current: agent_to_dict(agent), by)

    async def set_agent_skills(self, agent_id: str, skills: Mapping[str, int], by: str) -> bool:
        """Replace an ACD agent's skills; False when the ACD has no such (active) agent."""
        changed = await self._change(
            "agents", agent_id, lambda current: current and {**current, "skills": dict(skills)}, by)
        return changed is not None

    async def _change(self, section: str, name: str, edit: Callable[[Document | None], Document | None],
                      by: str) -> AcdDefinitions | None:
        """Replace one entry with ``edit(its current body)``, if that is not None, once the whole
        checks out. Checking the stored body's replacement, not the stored one, lets a
        supervisor repair a bad row."""
        async with self._writing() as connection:
            document = await _read(connection)
            body = edit(document[section].get(name))
            if body is None:
                return None
            document[section][name] = body
            definitions = parse_acd(document, f"change by {by}")
            if section == "queues":
                await _write_queues(connection, [definitions.queue(name)], by)
            else:
                await _write_agents(connection, [definitions.agent(name)], by)
            return definitions

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[asyncpg.Connection]:
        """One transaction, serialised with every other ACD write (read, check, write)."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            yield connection


async def _read(connection: asyncpg.Connection) -> Document:
    """The stored definitions as a document of the ACD file's shape, unchecked."""
    document: Document = {
        "queues": {row["name"]: orjson.loads(row["definition"])
                   for row in await connection.fetch(_SELECT_QUEUES)},
        "agents": {row["id"]: _agent_body(row) for row in await connection.fetch(_SELECT_AGENTS)},
    }
    tiers = await connection.fetchval(_SELECT_SETTING, _TIERS_KEY)
    if tiers is not None:
        document["tiers"] = orjson.loads(tiers)
    return document


def _agent_body(row: asyncpg.Record) -> Document:
    body = {"name": row["name"], "interface": row["interface"], "skills": orjson.loads(row["proficiency"])}
    if row["device"] is not None:
        body["device"] = row["device"]
    return body


async def _write_queues(connection: asyncpg.Connection, queues: Sequence[QueueSettings], by: str) -> None:
    await connection.executemany(_UPSERT_QUEUE, [(queue.name, _json(queue_to_dict(queue)), by) for queue in queues])


async def _write_agents(connection: asyncpg.Connection, agents: Sequence[AgentDefinition], by: str) -> None:
    await connection.executemany(_UPSERT_AGENT, [
        (agent.agent_id, agent.name, sorted(agent.skills), agent.interface, agent.device,
         _json(agent.skills), by) for agent in agents])


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
