"""Customers import and scoring, DNIS services, agents' and API clients' secrets."""

from datetime import timedelta

import pytest

from crm_bridge.agents import AgentRepository
from crm_bridge.api_clients import DatabaseTokens, create_client, revoke_client
from crm_bridge.customers import CustomerRepository
from crm_bridge.dnis import DnisDirectory
from crm_bridge.importer import run_import
from crm_bridge.interactions import InteractionOutcome
from crm_bridge.logger import InteractionLogger
from crm_bridge.scoring import run_scoring
from crm_bridge.principals import Principal
from tests.integration.crm_support import PHONES, T0, database_fixture, sample_call  # noqa: F401

CSV_TEXT = """\ufeffname,phones,account_numbers,tier,vip,notes
José Müller,030 1234567;+49 151 23456789,A-1,gold,yes,"multi-line
note"
,030 7654321,A-2,,,
Erika Mustermann,not a number,A-3,,,
Max Mustermann,,A-1,,,
Anna Schmidt,+44 20 7946 0958,A-4;A-5,diamond,maybe,
Otto Normal,089 123456,A-6,,no,
Too Many,089 654321,A-7,,no,,extra
"""


async def test_import_keeps_good_rows_and_reports_bad_ones_by_line(database, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    report = await run_import(database, path, default_country="DE")
    assert report.imported == 2
    assert [(error.line, error.reason) for error in report.errors] == [
        (4, "name: is required"),
        (5, "phones: item 1: 'not a number' is not a phone number (E.164, or national for DE)"),
        (6, "account_numbers: already used by another customer: A-1"),
        (7, "tier: must be one of bronze, silver, gold, platinum; vip: must be true or false"),
        (9, "row: 1 cells more than the header has"),
    ]
    customers = CustomerRepository(database.pool, PHONES)
    (jose,) = await customers.find_by_phone("+4915123456789")
    assert (jose["name"], jose["tier"], jose["vip"], jose["notes"]) == ("José Müller", "gold", True, "multi-line\nnote")
    assert (await customers.find_by_account("A-6"))["phones"] == ["+4989123456"]

    again = await run_import(database, path, default_country="DE")
    assert again.imported == 0 and len(again.errors) == 7  # duplicates are refused, not created twice


async def test_import_refuses_a_file_with_unknown_columns(database, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("name,colour\nJosé,red\n")
    report = await run_import(database, path, default_country="DE")
    assert report.imported == 0 and report.lines() == [
        "imported 0 customers, refused 1 rows", "line 1: header: unknown columns ['colour']"]


async def test_scoring_ranks_customers_by_recency_frequency_and_money(database, tmp_path):
    customers = CustomerRepository(database.pool, PHONES)
    ids = {}
    for n, name in enumerate(("loyal", "lapsed", "new", "silent", "idle")):
        ids[name] = await customers.create(customers.parse({"name": name, "phones": [f"030 10000{n}"]}))
    now = T0 + timedelta(days=30)

    async def buy(name, days_ago, amount):
        await database.pool.execute("INSERT INTO purchases (customer_id, purchased_at, amount) VALUES ($1, $2, $3)",
                                    ids[name], now - timedelta(days=days_ago), amount)

    for days_ago in (2, 20, 60, 100, 200):
        await buy("loyal", days_ago, 500)
    for days_ago in (250, 280, 300, 330, 360):
        await buy("lapsed", days_ago, 800)
    await buy("new", 1, 20)
    logger = InteractionLogger(database.pool, tmp_path / "spool.jsonl", PHONES, flush_interval=0.01)
    await logger.start()
    logger.put(sample_call(1, ani="030 100003", outcome=InteractionOutcome.ABANDONED))  # not a contact
    await logger.close()

    report = await run_scoring(database, now=now)
    assert report.scored == 5
    scored = {row["name"]: row for row in await database.pool.fetch("SELECT * FROM customers")}
    loyal, lapsed = scored["loyal"], scored["lapsed"]
    assert (loyal["recency_score"], loyal["frequency_score"], loyal["monetary_score"]) == (4, 5, 4)
    assert (lapsed["recency_score"], lapsed["frequency_score"], lapsed["monetary_score"]) == (2, 5, 5)
    assert loyal["tier"] == "platinum" and loyal["value_score"] == 83 and not loyal["churn_risk"]
    assert lapsed["tier"] == "gold" and lapsed["churn_risk"]
    assert (scored["new"]["recency_score"], scored["new"]["tier"]) == (5, "silver")
    assert scored["silent"]["value_score"] == scored["idle"]["value_score"] == 0
    assert scored["silent"]["tier"] == "bronze" and scored["silent"]["scored_at"] == now
    assert sum(report.tiers.values()) == 5


async def test_scoring_flags_valuable_customers_gone_quiet(database):
    customers = CustomerRepository(database.pool, PHONES)
    now = T0
    for n in range(10):
        customer_id = await customers.create(customers.parse({"name": f"c{n}"}))
        # c0 bought most but longest ago; the others bought less, more recently.
        for purchase in range(10 - n):
            await database.pool.execute(
                "INSERT INTO purchases (customer_id, purchased_at, amount) VALUES ($1, $2, $3)",
                customer_id, now - timedelta(days=300 - 30 * n + purchase), 100)
    report = await run_scoring(database, now=now)
    at_risk = await database.pool.fetch("SELECT name FROM customers WHERE churn_risk ORDER BY name")
    assert [row["name"] for row in at_risk] == ["c0", "c1", "c2", "c3"] and report.churn_risk == 4


async def test_dnis_labels_are_found_in_any_notation(database):
    dnis = DnisDirectory(database.pool, PHONES)
    await dnis.assign("+49 30 9000100", "sales")
    await dnis.assign("100", "support")
    assert await dnis.service_for("030 9000100") == "sales"
    assert await dnis.service_for("100") == "support"
    assert await dnis.service_for("101") is None


async def test_api_tokens_are_stored_hashed_and_revocable(database):
    token = await create_client(database.pool, "crm-app", "crm")
    stored = await database.pool.fetchrow("SELECT token_id, token_hash FROM api_clients")
    assert token.split("_", 2)[2] not in stored["token_hash"] and stored["token_hash"].startswith("$argon2id$")
    clock = [0.0]
    tokens = DatabaseTokens(database.pool, cache_ttl=10, clock=lambda: clock[0])
    assert await tokens.authenticate(token) == Principal("crm-app", "crm")
    assert await tokens.authenticate(token + "x") is None
    assert await revoke_client(database.pool, "crm-app")
    assert await tokens.authenticate(token) == Principal("crm-app", "crm")  # cached within the TTL
    clock[0] = 11
    assert await tokens.authenticate(token) is None
    with pytest.raises(ValueError, match="role must be one of"):
        await create_client(database.pool, "x", "root")


async def test_agent_secrets_are_stored_hashed(database):
    agents = AgentRepository(database.pool)
    await agents.save("a100", "Anna", ["german", "sales"])
    assert await agents.set_secret("a100", "correct horse")
    assert not await agents.set_secret("a999", "whatever")
    stored = await database.pool.fetchval("SELECT secret_hash FROM agents WHERE id = 'a100'")
    assert "correct horse" not in stored and stored.startswith("$argon2id$")
    assert await agents.verify_secret("a100", "correct horse")
    assert not await agents.verify_secret("a100", "wrong")
    assert not await agents.verify_secret("a999", "correct horse")
