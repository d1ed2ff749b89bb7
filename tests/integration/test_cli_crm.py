"""`cti crm ...` and `cti db ...` as an operator runs them, against the real PostgreSQL."""

import asyncio

import asyncpg

from crm_bridge.agents import AgentRepository
from crm_bridge.api_clients import DatabaseTokens
from tests.unit.test_cli import cti


async def test_import_score_and_client_tokens(db_dsn, tmp_path):
    environ = {"CTI_DATABASE__DSN": db_dsn, "CTI_CRM__DEFAULT_COUNTRY": "DE"}
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text("name,phones,tier\nJosé Müller,0151 23456789,gold\n,030 123,silver\n", encoding="utf-8")

    imported = await asyncio.to_thread(cti, "crm", "import", str(csv_file), env=environ)
    assert imported.returncode == 0, imported.stderr
    assert "imported 1 customers" in imported.stdout and "line 3: name: is required" in imported.stdout

    scored = await asyncio.to_thread(cti, "crm", "score", env=environ)
    assert scored.returncode == 0 and scored.stdout.startswith("scored 1 customers")

    created = await asyncio.to_thread(cti, "crm", "client", "create", "billing-app", env=environ)
    assert created.returncode == 0
    token = created.stdout.strip().splitlines()[-1]
    assert token not in created.stderr
    pool = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    try:
        principal = await DatabaseTokens(pool).authenticate(token)
        assert (principal.name, principal.role) == ("billing-app", "crm")
        revoked = await asyncio.to_thread(cti, "crm", "client", "revoke", "billing-app", env=environ)
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        assert await DatabaseTokens(pool).authenticate(token) is None
    finally:
        await pool.close()

    status = await asyncio.to_thread(cti, "db", "status", env=environ)
    assert status.returncode == 0 and "0001 interactions" in status.stdout and "pending" not in status.stdout


async def test_agent_password_is_stored_hashed_and_checked(db_dsn):
    environ = {"CTI_DATABASE__DSN": db_dsn}
    assert (await asyncio.to_thread(cti, "db", "upgrade", env=environ)).returncode == 0
    pool = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    try:
        await AgentRepository(pool).save("1001", "Alice", ["support"])
        set_ = await asyncio.to_thread(cti, "agent", "password", "1001", "--stdin", env=environ,
                                       stdin="correct horse\n")
        assert set_.returncode == 0 and "password set for agent 1001" in set_.stdout
        assert "correct horse" not in set_.stdout + set_.stderr
        stored = await pool.fetchval("SELECT secret_hash FROM agents WHERE id = '1001'")
        assert stored.startswith("$argon2id$") and await AgentRepository(pool).verify_secret("1001", "correct horse")
        unknown = await asyncio.to_thread(cti, "agent", "password", "9999", "--stdin", env=environ, stdin="long enough\n")
        assert unknown.returncode == 1 and "no agent '9999'" in unknown.stderr
        short = await asyncio.to_thread(cti, "agent", "password", "1001", "--stdin", env=environ, stdin="short\n")
        assert short.returncode == 2 and "at least 8 characters" in short.stderr
    finally:
        await pool.close()
