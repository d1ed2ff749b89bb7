"""Run the real `cti run` as a child process, as an operator would, for the tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


class Daemon:
    def __init__(self, environ: dict[str, str], *args: str) -> None:
        self.environ = environ
        self.data_dir = Path(environ["CTI_DATA_DIR"])
        self.port = int(environ["CTI_HTTP__PORT"])
        self.log = self.data_dir / "daemon.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cti", "run", *args], stdout=output, stderr=subprocess.STDOUT,
                env={**os.environ, "CTI_LOG__FORMAT": "json", **environ})

    def wait_started(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cti run exited with {self.process.returncode}:\n{self.log.read_text()}")
            if b'"cti.started"' in self.log.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"cti run did not start within {timeout:g} s:\n{self.log.read_text()}")

    @property
    def token(self) -> str:
        return (self.data_dir / "operator.token").read_text().strip()

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get_json(self, path: str, token: str | None = None) -> tuple[int, dict]:
        status, body = self.get(path, token)
        return status, json.loads(body)

    def terminate(self, timeout: float = 60.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log_events(self) -> list[dict]:
        events = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (e.g. a data directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (proc / "stat").read_text().split(") ", 1)[1][0]
            except (OSError, IndexError):
                continue
            if text in command and state != "Z":
                found.append(command)
    return found


@contextlib.contextmanager
def running_daemon(prefix: str, *args: str, environ: dict[str, str] | None = None, **extra_ports: bool):
    """A started `cti run` in a scratch data dir with free ports; stopped and removed after.

    ``extra_ports`` names more port settings to pick freely, e.g. CTI_LAB__SIP_PORT=True.
    """
    from tests.conftest import _scratch_dir, free_tcp_port

    data_dir = _scratch_dir(prefix)
    ports = ["CTI_HTTP__PORT", "CTI_DATABASE__EMBEDDED_PORT", "CTI_AGI__PORT", *extra_ports]
    settings = {"CTI_DATA_DIR": str(data_dir)} | {name: str(free_tcp_port()) for name in ports}
    instance = Daemon(settings | (environ or {}), *args)
    try:
        instance.wait_started()
        yield instance
    finally:
        if instance.process.poll() is None:
            instance.terminate()
        shutil.rmtree(data_dir, ignore_errors=True)
