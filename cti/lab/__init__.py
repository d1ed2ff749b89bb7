"""The Asterisk lab: a real Asterisk 22 from Debian sid, run in a chroot on the host's loopback.

Debian 12 ships no Asterisk, and nothing from sid may be installed on the host (it would
replace the host's libc), so the lab debootstraps a minimal sid root once, installs Asterisk
into it, and keeps it as a tarball: later setups unpack it in seconds, and a day when sid is
uninstallable does not break the tests. Configs come from config/lab/ and dialplans/ at every
start, so what is tested is what ships.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from cti.config import LabConfig

log = structlog.get_logger(__name__)

PACKAGES = ("asterisk", "asterisk-core-sounds-en", "asterisk-core-sounds-en-gsm", "asterisk-moh-opsound-gsm")
# Bump when the recipe below changes, so cached roots built by an older recipe are not reused.
RECIPE_VERSION = "1"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ASTERISK = "/usr/sbin/asterisk"
# astrundir is /var/run/asterisk, and sid's var/run is a link to an absolute /run: from the
# host, the root's own run/ is the way in.
CONTROL_SOCKET = "run/asterisk/asterisk.ctl"


class LabError(RuntimeError):
    pass


@dataclass
class LabStatus:
    running: bool
    pid: int | None
    root_ready: bool
    detail: str


class Lab:
    def __init__(self, settings: LabConfig, base: Path, cache_dir: Path, agi_port: int) -> None:
        self.settings = settings
        self.agi_port = agi_port
        self.base = base
        self.root = base / "root"
        self.pidfile = base / "asterisk.pid"
        self.console_log = base / "asterisk.out"
        self.cache_dir = cache_dir.expanduser()
        # The Asterisk this object started, reaped on stop (another `cti lab` may have started it).
        self._process: subprocess.Popen | None = None

    @classmethod
    def from_config(cls, config) -> Lab:
        return cls(config.lab, config.path(config.lab.dir), Path(config.lab.cache_dir), config.agi.port)

    # --- root file system -------------------------------------------------------------------

    @property
    def tarball(self) -> Path:
        key = hashlib.sha256(f"{RECIPE_VERSION} {self.settings.suite} {' '.join(PACKAGES)}".encode())
        return self.cache_dir / f"asterisk-lab-{self.settings.suite}-{key.hexdigest()[:10]}.tar.zst"

    def root_ready(self) -> bool:
        return (self.root / ASTERISK.lstrip("/")).is_file()

    def setup(self) -> None:
        """Make the root ready: unpack the cached tarball, or build it (about two minutes)."""
        _require_root_and_tools("debootstrap", "zstd")
        if self.root_ready():
            return
        if not self.tarball.is_file():
            self._build_tarball()
        self._unpack()

    def _build_tarball(self) -> None:
        staging = self.cache_dir / "build-root"
        shutil.rmtree(staging, ignore_errors=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        log.info("lab.building_root", suite=self.settings.suite, mirror=self.settings.mirror)
        _run(["debootstrap", "--variant=minbase", self.settings.suite, str(staging), self.settings.mirror],
             "debootstrap of Debian sid")
        _configure_apt(staging)
        with _proc_mounted(staging):
            _run(["chroot", str(staging), "apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
                 "installing Asterisk in the sid root")
            _run(["chroot", str(staging), "apt-get", "clean"], "cleaning the apt cache")
        _isolate_network_lookups(staging)
        partial = self.tarball.with_suffix(".partial")
        _run(["tar", "-C", str(staging), "-I", "zstd -T0", "-cf", str(partial), "."], "packing the root")
        partial.rename(self.tarball)
        shutil.rmtree(staging, ignore_errors=True)
        log.info("lab.root_cached", tarball=str(self.tarball))

    def _unpack(self) -> None:
        staging = self.base / "root.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        _run(["tar", "-C", str(staging), "-I", "zstd", "-xf", str(self.tarball)], "unpacking the lab root")
        staging.rename(self.root)
        log.info("lab.root_ready", root=str(self.root))

    # --- Asterisk ---------------------------------------------------------------------------

    def start(self) -> None:
        """Set up if needed, write the configs, start Asterisk and wait until FullyBooted."""
        self.setup()
        self.stop()
        self._wait_control_socket_free()
        self._install_configs()
        with self.console_log.open("ab") as output:
            process = subprocess.Popen(
                ["chroot", str(self.root), ASTERISK, "-f", "-C", "/etc/asterisk/asterisk.conf"],
                stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True)
        self.pidfile.write_text(str(process.pid))
        self._process = process
        self._wait_fully_booted(process)
        log.info("lab.started", pid=process.pid, sip_port=self.settings.sip_port, ami_port=self.settings.ami_port)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the Asterisk named by the PID file (never by process name)."""
        pid = self.live_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not _wait_exit(pid, timeout):
                log.warning("lab.kill", pid=pid, reason=f"still running {timeout:g} s after SIGTERM")
                os.kill(pid, signal.SIGKILL)
                _wait_exit(pid, 5.0)
            log.info("lab.stopped", pid=pid)
        self._reap()
        self.pidfile.unlink(missing_ok=True)

    def _reap(self) -> None:
        # Also after a kill from outside: a dead child is reaped only once all its threads are
        # gone, and until then they may still hold the AMI port and the control socket.
        if self._process is not None:
            self._process.wait(5.0)
            self._process = None

    def _wait_control_socket_free(self, timeout: float = 10.0) -> None:
        # A new Asterisk that finds the control socket answering exits "already running", and
        # `asterisk -rx` would talk to the old one: so none may be listening before we start.
        control = self.root / CONTROL_SOCKET
        deadline = time.monotonic() + timeout
        while _accepts_connections(control):
            if time.monotonic() > deadline:
                raise LabError(f"another Asterisk still answers on {control}; stop it first")
            time.sleep(0.05)

    def status(self) -> LabStatus:
        pid = self.live_pid()
        if pid is None:
            return LabStatus(False, None, self.root_ready(), "not running")
        answer = self.cli("core show version")
        return LabStatus(True, pid, True, answer.strip())

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run an Asterisk CLI command on the running lab (asterisk -rx)."""
        result = subprocess.run(["chroot", str(self.root), ASTERISK, "-rx", command],
                                capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise LabError(f"asterisk -rx {command!r} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def _wait_fully_booted(self, process: subprocess.Popen, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LabError(f"Asterisk exited with code {process.returncode}; see {self.console_log}")
            with contextlib.suppress(LabError, subprocess.TimeoutExpired):
                # `asterisk -rx` exits 0 even when the Asterisk it reached went away before
                # answering: only this line says the boot finished.
                if "Asterisk has fully booted." in self.cli("core waitfullybooted", timeout=5):
                    return
            time.sleep(0.1)
        self.stop()
        raise LabError(f"Asterisk did not reach FullyBooted within {timeout:g} s; see {self.console_log}")

    def _install_configs(self) -> None:
        # The package's own configs stay pristine in asterisk.dist: modules such as app_queue
        # decline to load without their file, and ours are laid over them at every start.
        etc, pristine = self.root / "etc/asterisk", self.root / "etc/asterisk.dist"
        if not pristine.exists():
            etc.rename(pristine)
        shutil.rmtree(etc, ignore_errors=True)
        shutil.copytree(pristine, etc, symlinks=True)
        (etc / "cti-dialplans").mkdir()
        values = {"@SIP_PORT@": self.settings.sip_port, "@AMI_PORT@": self.settings.ami_port,
                  "@AMI_SECRET@": self.settings.ami_secret, "@AGI_PORT@": self.agi_port}
        for source in sorted((PROJECT_ROOT / "config/lab").glob("*.conf")):
            (etc / source.name).write_text(_render(source.read_text(), values))
        for source in sorted((PROJECT_ROOT / "dialplans").glob("*.conf")):
            shutil.copyfile(source, etc / "cti-dialplans" / source.name)
        for folder in ("run/asterisk", "var/log/asterisk", "var/spool/asterisk", "var/lib/asterisk"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def live_pid(self) -> int | None:
        """The PID of the Asterisk the PID file names, if it is running."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        # A stale PID file may name a recycled PID: only an asterisk process counts.
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"asterisk" in command else None


def _render(text: str, values: dict[str, object]) -> str:
    for marker, value in values.items():
        text = text.replace(marker, str(value))
    return text


def _require_root_and_tools(*tools: str) -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root: it debootstraps and chroots a Debian sid root")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing {', '.join(missing)}: apt-get install {' '.join(missing)}")


def _configure_apt(root: Path) -> None:
    # sid's Release files can be past Valid-Until against a machine's clock; docs and
    # locales are dead weight in a lab.
    (root / "etc/apt/apt.conf.d/99cti-lab").write_text('Acquire::Check-Valid-Until "false";\n')
    (root / "etc/dpkg/dpkg.cfg.d/01cti-lab-nodoc").write_text(
        "path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\n"
        "path-exclude /usr/share/locale/*\npath-include /usr/share/locale/en*\n")
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")


def _isolate_network_lookups(root: Path) -> None:
    # Written after apt is done: Asterisk must not send DNS queries to the host's resolver.
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    (root / "etc/resolv.conf").write_text("nameserver 127.0.0.1\n")


@contextlib.contextmanager
def _proc_mounted(root: Path):
    # dpkg needs /proc. /dev is never bind-mounted: removing the root would then delete the
    # host's device nodes.
    proc = root / "proc"
    _run(["mount", "-t", "proc", "proc", str(proc)], "mounting /proc in the lab root")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(proc)], check=False)


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise LabError(f"{what} failed (exit {result.returncode}):\n{tail}")


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _has_exited(pid):
            return True
        time.sleep(0.05)
    return False


def _has_exited(pid: int) -> bool:
    # A killed leader turns zombie before its other threads are gone, and they keep its
    # sockets open: it has exited once it is a zombie with no thread left but itself.
    try:
        zombie = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
        return zombie and len(list(Path(f"/proc/{pid}/task").iterdir())) <= 1
    except (OSError, IndexError):
        return True


def _accepts_connections(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True
