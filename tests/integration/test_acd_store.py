"""The ACD's definitions in PostgreSQL: the import policy, supervisors' changes, bad rows."""

import dataclasses
from pathlib import Path

import pytest

from acd.config import AcdConfigError, AcdDefinitions, AgentDefinition, read_acd_file
from crm_bridge.acd_store import AcdStore
from crm_bridge.agents import AgentRepository
from tests.integration.crm_support import database_fixture  # noqa: F401

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "acd.toml"
SOURCE = "config/acd.toml"


@pytest.fixture
def example() -> tuple[AcdDefinitions, str]:
    return read_acd_file(EXAMPLE)


@pytest.fixture
async def store(database) -> AcdStore:
    return AcdStore(database.pool)


def by_name(definitions: AcdDefinitions) -> tuple[dict, dict, dict]:
    """Order-free view: the database lists queues and agents by name."""
    return ({queue.name: queue for queue in definitions.queues},
            {agent.agent_id: agent for agent in definitions.agents}, dict(definitions.tier_priorities))


def edited(definitions: AcdDefinitions, agent_id: str, **changes) -> AcdDefinitions:
    agents = tuple(dataclasses.replace(agent, **changes) if agent.agent_id == agent_id else agent
                   for agent in definitions.agents)
    return dataclasses.replace(definitions, agents=agents)


async def test_an_import_is_loaded_back_as_it_was(store, example):
    definitions, sha256 = example
    assert await store.import_definitions(definitions, SOURCE, sha256)
    assert by_name(await store.load()) == by_name(definitions)


async def test_the_same_content_is_imported_once(store, database, example):
    definitions, sha256 = example
    assert await store.import_definitions(definitions, SOURCE, sha256)
    assert not await store.import_definitions(definitions, SOURCE, sha256)
    assert await database.pool.fetchval("SELECT sha256 FROM acd_imports WHERE source = $1", SOURCE) == sha256


async def test_a_supervisor_change_survives_a_restart_until_the_file_changes(store, example):
    definitions, sha256 = example
    await store.import_definitions(definitions, SOURCE, sha256)
    assert await store.set_agent_skills("1002", {"billing": 95, "sales": 30}, by="supervisor:eve")

    assert not await store.import_definitions(definitions, SOURCE, sha256)  # a restart, same file
    assert (await store.load()).agent("1002").skills == {"billing": 95, "sales": 30}

    changed = edited(definitions, "1001", name="Alice Smith")
    assert await store.import_definitions(changed, SOURCE, "edited")
    loaded = await store.load()
    assert loaded.agent("1002").skills == definitions.agent("1002").skills  # the file wins
    assert loaded.agent("1001").name == "Alice Smith"


async def test_what_the_file_no_longer_defines_stays(store, example):
    definitions, sha256 = example
    await store.import_definitions(definitions, SOURCE, sha256)
    smaller = dataclasses.replace(definitions, queues=definitions.queues[:1], agents=definitions.agents[:1])
    assert await store.import_definitions(smaller, SOURCE, "smaller")
    assert by_name(await store.load()) == by_name(definitions)


async def test_rows_keep_the_crm_skill_list_and_audit_columns(store, database, example):
    definitions, sha256 = example
    await store.import_definitions(definitions, SOURCE, sha256)
    await store.set_agent_skills("1003", {"sales": 70, "billing": 20}, by="supervisor:eve")
    row = await database.pool.fetchrow("SELECT skills, device, updated_by FROM agents WHERE id = '1003'")
    assert (row["skills"], row["device"], row["updated_by"]) == (["billing", "sales"], "PJSIP/1003", "supervisor:eve")
    queue_by = await database.pool.fetchval("SELECT updated_by FROM acd_queues WHERE name = 'sales'")
    assert queue_by == f"import:{SOURCE}"


async def test_a_corrupted_row_is_named_by_the_error(store, database, example):
    definitions, sha256 = example
    await store.import_definitions(definitions, SOURCE, sha256)
    await database.pool.execute("""UPDATE agents SET proficiency = '{"support": "lots"}' WHERE id = '1004'""")
    with pytest.raises(AcdConfigError) as caught:
        await store.load()
    assert str(caught.value) == "database: agents.1004.skills.support: expected an integer 1-100, got 'lots'"

    assert await store.set_agent_skills("1004", {"support": 60}, by="supervisor:eve")  # the repair
    assert (await store.load()).agent("1004").skills == {"support": 60}


async def test_a_corrupted_queue_row_is_named_by_the_error(store, database, example):
    definitions, sha256 = example
    await store.import_definitions(definitions, SOURCE, sha256)
    await database.pool.execute(
        """UPDATE acd_queues SET definition = definition || '{"ring_timeout": -1}' WHERE name = 'sales'""")
    with pytest.raises(AcdConfigError, match=r"^database: queues\.sales\.ring_timeout: expected a number > 0, got -1"):
        await store.load()


async def test_a_change_that_breaks_the_whole_is_refused_and_not_written(store, example):
    definitions, sha256 = example
    await store.import_definitions(definitions, SOURCE, sha256)
    sales = definitions.queue("sales")
    looping = dataclasses.replace(definitions.queue("operator"),
                                  final_action=dataclasses.replace(sales.final_action, target="sales"))
    with pytest.raises(AcdConfigError, match="final actions of kind queue loop: operator -> sales -> operator"):
        await store.save_queue(looping, by="supervisor:eve")
    clash = AgentDefinition("1005", "Erin", "PJSIP/1001")
    clash_message = r"^change by supervisor:eve: agents\.1005\.interface: 'PJSIP/1001' is also the interface"
    with pytest.raises(AcdConfigError, match=clash_message):
        await store.save_agent(clash, by="supervisor:eve")
    assert by_name(await store.load()) == by_name(definitions)


async def test_supervisors_add_queues_and_agents(store, example):
    definitions, sha256 = example
    await store.import_definitions(definitions, SOURCE, sha256)
    vip = dataclasses.replace(definitions.queue("billing"), name="vip", weight=3.0)
    after_queue = await store.save_queue(vip, by="supervisor:eve")
    after_agent = await store.save_agent(AgentDefinition("1005", "Erin", "PJSIP/1005", skills={"billing": 99}),
                                         by="supervisor:eve")
    loaded = await store.load()
    assert loaded.queue("vip") == vip == after_queue.queue("vip")
    assert loaded.agent("1005").skills == {"billing": 99} and after_agent == loaded


async def test_an_import_clashing_with_a_database_only_agent_is_refused_whole(store, database, example):
    definitions, sha256 = example
    await store.save_agent(AgentDefinition("2001", "Temp", "PJSIP/1001"), by="supervisor:eve")
    with pytest.raises(AcdConfigError) as caught:
        await store.import_definitions(definitions, SOURCE, sha256)
    assert str(caught.value) == (f"{SOURCE} + database: agents.1001.interface: 'PJSIP/1001' is also the "
                                 "interface of agent '2001'")
    assert await database.pool.fetchval("SELECT count(*) FROM acd_imports") == 0
    assert await database.pool.fetchval("SELECT count(*) FROM acd_queues") == 0


async def test_only_active_agents_with_an_interface_are_the_acds(store, database, example):
    definitions, sha256 = example
    await AgentRepository(database.pool).save("3001", "CRM only", ["support"])
    await store.import_definitions(definitions, SOURCE, sha256)
    await database.pool.execute("UPDATE agents SET active = false WHERE id = '1004'")
    loaded = await store.load()
    assert [agent.agent_id for agent in loaded.agents] == ["1001", "1002", "1003"]
    assert not await store.set_agent_skills("1004", {"support": 10}, by="supervisor:eve")
    assert not await store.set_agent_skills("3001", {"support": 10}, by="supervisor:eve")


async def test_an_empty_database_loads_no_definitions(store):
    assert await store.load() == AcdDefinitions()
