"""How the lab tells a killed Asterisk is really gone before it starts another.

A SIGKILLed Asterisk's main thread turns zombie before its other threads exit, and those
still hold the AMI port and the control socket; a new Asterisk started then says "already
running" and exits. These tests build that state with real processes and sockets.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cti.config import LabConfig
from cti.lab import CONTROL_SOCKET, Lab, LabError, _has_exited

# The main thread leaves (pthread_exit) while another thread keeps the process alive.
LEADER_GONE_THREAD_LEFT = (
    "import ctypes, threading, time\n"
    "threading.Thread(target=time.sleep, args=(60,)).start()\n"
    "ctypes.CDLL(None).pthread_exit(None)\n"
)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]


def _until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_zombie_leader_with_a_live_thread_has_not_exited():
    process = subprocess.Popen([sys.executable, "-c", LEADER_GONE_THREAD_LEFT])
    try:
        _until(lambda: _state(process.pid) == "Z")
        assert len(list(Path(f"/proc/{process.pid}/task").iterdir())) == 2
        assert not _has_exited(process.pid)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    assert _has_exited(process.pid)


def test_a_reaped_process_has_exited():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    assert not _has_exited(os.getpid())
    process.wait(10)
    assert _has_exited(process.pid)


@pytest.fixture
def lab(tmp_path):
    control = tmp_path / "root" / CONTROL_SOCKET
    control.parent.mkdir(parents=True)
    return Lab(LabConfig(), tmp_path, tmp_path / "cache", agi_port=0), control


def test_start_waits_for_an_old_control_socket(lab):
    lab, control = lab
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as old:
        old.bind(str(control))
        old.listen()
        with pytest.raises(LabError, match="another Asterisk still answers"):
            lab._wait_control_socket_free(timeout=0.3)
    # Closed, the socket file stays behind as Asterisk's does after a kill: that is free.
    assert control.exists()
    lab._wait_control_socket_free(timeout=0.3)
