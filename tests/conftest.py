"""Shared fixtures: a real private PostgreSQL, and the real Asterisk lab, once per session.

CI may not skip the e2e tier: when the lab cannot start, its fixture raises and every test
that needs it errors with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from cti import config as config_module
from cti import logs
from cti.lab import Lab
from crm_bridge.embedded_pg import EmbeddedPostgres

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "artifacts"


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pytest_configure(config: pytest.Config) -> None:
    logs.configure("console", "warning")


def _scratch_dir(prefix: str) -> Path:
    # Not pytest's tmp_path: /tmp/pytest-of-root is mode 0700, and the embedded cluster's
    # unprivileged user must reach its directory.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """A private PostgreSQL cluster for the whole session; each test gets a fresh database."""
    base = _scratch_dir("cti-test-pg-")
    cluster = EmbeddedPostgres(base / "pg", free_tcp_port())
    dsn = cluster.start()
    yield dsn
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def db_dsn(pg_dsn: str, request: pytest.FixtureRequest) -> str:
    """An empty database of its own for one test."""
    import asyncpg

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return pg_dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def lab_config() -> config_module.Config:
    """Settings for a lab of the test session's own: its own root, free ports."""
    base = _scratch_dir("cti-test-lab-")
    environ = {
        "CTI_DATA_DIR": str(base),
        "CTI_LAB__ENABLED": "true",
        "CTI_LAB__SIP_PORT": str(free_tcp_port()),
        "CTI_LAB__AMI_PORT": str(free_tcp_port()),
        "CTI_AGI__PORT": str(free_tcp_port()),
        "CTI_HTTP__PORT": str(free_tcp_port()),
    }
    return config_module.load(None, environ)


@pytest.fixture(scope="session")
def lab(lab_config: config_module.Config) -> Lab:
    """The real Asterisk lab, started once for the session and stopped at the end."""
    if os.geteuid() != 0:
        pytest.fail("the e2e tier needs root to run the Asterisk lab (debootstrap, chroot)")
    instance = Lab.from_config(lab_config)
    instance.start()
    yield instance
    instance.stop()
    shutil.rmtree(lab_config.data_dir, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each tier is its folder: tests/unit, tests/integration, tests/e2e."""
    for item in items:
        tier = Path(item.fspath).relative_to(REPO_ROOT / "tests").parts[0]
        if tier in ("unit", "integration", "e2e"):
            item.add_marker(tier)
