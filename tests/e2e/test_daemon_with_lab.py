"""`cti run --lab`: the README's first command, on its embedded defaults."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import _scratch_dir, free_tcp_port
from tests.daemon import Daemon, processes_mentioning


@pytest.fixture(scope="module")
def daemon_with_lab():
    data_dir = _scratch_dir("cti-test-run-lab-")
    environ = {"CTI_DATA_DIR": str(data_dir), "CTI_HTTP__PORT": str(free_tcp_port()),
               "CTI_DATABASE__EMBEDDED_PORT": str(free_tcp_port()), "CTI_AGI__PORT": str(free_tcp_port()),
               "CTI_LAB__SIP_PORT": str(free_tcp_port()), "CTI_LAB__AMI_PORT": str(free_tcp_port())}
    instance = Daemon(environ, "--lab")
    try:
        instance.wait_started()
        yield instance
    finally:
        if instance.process.poll() is None:
            instance.terminate()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_readyz_answers_200_with_database_and_lab(daemon_with_lab):
    status, body = daemon_with_lab.get_json("/readyz", daemon_with_lab.token)
    assert status == 200, body
    assert body["components"]["database"]["ok"]


def test_sigterm_leaves_no_postgres_or_asterisk(daemon_with_lab):
    data_dir = daemon_with_lab.data_dir
    asterisk_pid = int((data_dir / "lab" / "asterisk.pid").read_text())
    assert b"asterisk" in Path(f"/proc/{asterisk_pid}/cmdline").read_bytes()
    assert any("postgres" in command for command in processes_mentioning(str(data_dir)))
    assert daemon_with_lab.terminate() == 0
    assert processes_mentioning(str(data_dir)) == []
    assert not Path(f"/proc/{asterisk_pid}").exists()
    assert not (data_dir / "lab" / "asterisk.pid").exists()
