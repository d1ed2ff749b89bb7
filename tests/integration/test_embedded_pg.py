import os
import pwd
import shutil
from pathlib import Path

import asyncpg
import pytest

from crm_bridge import embedded_pg
from crm_bridge.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError
from tests.conftest import _scratch_dir, free_tcp_port


@pytest.fixture
def cluster_dir():
    base = _scratch_dir("cti-test-embedded-")
    yield base / "pg"
    shutil.rmtree(base, ignore_errors=True)


async def test_data_survives_a_restart_and_runs_unprivileged(cluster_dir):
    cluster = EmbeddedPostgres(cluster_dir, free_tcp_port())
    try:
        connection = await asyncpg.connect(cluster.start())
        await connection.execute("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('José Müller')")
        owner = await connection.fetchval("SELECT current_user")
        await connection.close()
        if os.geteuid() == 0:
            assert owner == "postgres"
            assert (cluster.data.stat().st_uid) == pwd.getpwnam("postgres").pw_uid
        cluster.stop()
        assert not cluster.running()
        connection = await asyncpg.connect(cluster.start())
        assert await connection.fetchval("SELECT value FROM kept") == "José Müller"
        await connection.close()
    finally:
        cluster.stop()


async def test_tcp_needs_the_generated_password(cluster_dir):
    cluster = EmbeddedPostgres(cluster_dir, free_tcp_port())
    try:
        dsn = cluster.start()
        without_password = dsn.replace(":" + cluster.password_file.read_text().strip() + "@", "@")
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError,
                            asyncpg.ClientCannotConnectError)):
            await asyncpg.connect(without_password)
        assert oct(cluster.password_file.stat().st_mode & 0o777) == "0o600"
    finally:
        cluster.stop()


def test_missing_binaries_give_the_install_hint(monkeypatch):
    monkeypatch.setattr(embedded_pg.shutil, "which", lambda _name: None)
    monkeypatch.setattr(embedded_pg, "Path", _PathWithoutPostgres)
    with pytest.raises(EmbeddedPostgresError, match="apt-get install postgresql"):
        embedded_pg.find_bindir()


class _PathWithoutPostgres(type(Path())):
    def glob(self, pattern):
        return iter(())


@pytest.mark.skipif(os.geteuid() != 0, reason="relocation only happens for a root daemon")
def test_unreachable_directory_is_relocated_deterministically(tmp_path):
    blocked = tmp_path / "private"
    blocked.mkdir(mode=0o700)
    first = EmbeddedPostgres(blocked / "pg", 1)
    second = EmbeddedPostgres(blocked / "pg", 1)
    assert first.directory == second.directory
    assert first.directory.is_relative_to(embedded_pg.RELOCATION_ROOT)
