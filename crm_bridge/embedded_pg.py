"""A private PostgreSQL cluster, run from Debian's server binaries when no DSN is configured.

PostgreSQL refuses to run as root, so a root daemon runs the cluster as an unprivileged user.
That user must be able to reach the data directory; when a parent folder (such as /root, mode
0700) blocks it, the cluster lives under /var/lib/cti-server instead, at a path derived from
the requested one so that data survives restarts.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

INSTALL_HINT = "install Debian's PostgreSQL server: apt-get install postgresql"
RELOCATION_ROOT = Path("/var/lib/cti-server/clusters")
DATABASE = "cti"


class EmbeddedPostgresError(RuntimeError):
    pass


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: pg_config's answer, else the newest versioned one."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        answer = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(answer.stdout.strip()))
    versioned = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                       key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    candidates.extend(versioned)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise EmbeddedPostgresError(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")


@dataclass
class EmbeddedPostgres:
    directory: Path
    port: int
    user: str = "postgres"

    def __post_init__(self) -> None:
        self.bindir = find_bindir()
        self.run_as = _unprivileged_user(self.user) if os.geteuid() == 0 else None
        self.directory = _reachable_directory(self.directory.resolve(), self.run_as)
        self.data = self.directory / "data"
        self.socket_dir = self.directory / "run"
        self.started_here = False

    @property
    def dsn(self) -> str:
        owner = self.run_as.pw_name if self.run_as else pwd.getpwuid(os.geteuid()).pw_name
        password = self.password_file.read_text().strip()
        return f"postgresql://{owner}:{password}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def password_file(self) -> Path:
        return self.directory / "superuser.password"

    def start(self) -> str:
        """Initialise on first use, start, and make sure the database exists; returns the DSN."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self._give_to_run_as(self.directory, self.socket_dir)
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self.started_here = not self.running()
        if self.started_here:
            self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.directory / "postgres.log"),
                         "-o", f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1")
            log.info("embedded_pg.started", directory=str(self.directory), port=self.port)
        self._ensure_database()
        return self.dsn

    def stop(self) -> None:
        """Stop the cluster if this object started it (a `cti db` beside `cti run` leaves it be)."""
        if self.started_here and self.running():
            self._pg_ctl("stop", "-w", "-t", "60", "-m", "fast")
            log.info("embedded_pg.stopped", directory=str(self.directory))

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        status = self._run([str(self.bindir / "pg_ctl"), "status", "-D", str(self.data)], check=False)
        return status.returncode == 0

    def _initdb(self) -> None:
        # Our own tools reach the cluster over its private socket (peer auth, as the cluster's
        # user); the daemon over loopback TCP with a generated password, never "trust".
        self.data.mkdir(exist_ok=True)
        self._give_to_run_as(self.data)
        self.password_file.write_text(secrets.token_urlsafe(24))
        self.password_file.chmod(0o600)
        self._give_to_run_as(self.password_file, mode=0o600)
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "--auth-local=peer",
                   "--auth-host=scram-sha-256", f"--pwfile={self.password_file}", "-E", "UTF8",
                   "--locale=C", "--no-sync"])
        log.info("embedded_pg.initialised", directory=str(self.data))

    def _ensure_database(self) -> None:
        psql = [str(self.bindir / "psql"), "-h", str(self.socket_dir), "-p", str(self.port),
                "-d", "postgres", "-tAc"]
        exists = self._run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"])
        if exists.stdout.strip() != "1":
            self._run([str(self.bindir / "createdb"), "-h", str(self.socket_dir), "-p", str(self.port), DATABASE])

    def _pg_ctl(self, *args: str) -> None:
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), *args])

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.run_as:
            kwargs = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        # A new session keeps a Ctrl-C on our terminal from reaching the postmaster directly:
        # the daemon stops the cluster itself, after the work that needs it.
        result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd="/",
                                start_new_session=True,
                                env=_clean_environment(), **kwargs)
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(f"{Path(argv[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def _give_to_run_as(self, *paths: Path, mode: int = 0o700) -> None:
        if self.run_as:
            for path in paths:
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
                path.chmod(mode)


def _clean_environment() -> dict[str, str]:
    # PG* variables of the caller's shell would redirect the tools to another server.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}


def _unprivileged_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise EmbeddedPostgresError(
            f"database.embedded_user: user {name!r} does not exist; PostgreSQL refuses to run as root, "
            f"so create it (useradd --system {name}) or {INSTALL_HINT}") from None


def _reachable_directory(wanted: Path, user: pwd.struct_passwd | None) -> Path:
    if user is None or _traversable_by(wanted, user):
        return wanted
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
    relocated = RELOCATION_ROOT / digest
    log.warning("embedded_pg.relocated", wanted=str(wanted), directory=str(relocated),
                reason=f"user {user.pw_name} cannot reach a parent folder")
    RELOCATION_ROOT.mkdir(parents=True, exist_ok=True)
    return relocated


def _traversable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can search every existing ancestor of ``path`` (ignoring ACLs)."""
    groups = {user.pw_gid} | set(os.getgrouplist(user.pw_name, user.pw_gid))
    for ancestor in reversed(path.parents):
        if not ancestor.exists():
            break
        info = ancestor.stat()
        if info.st_uid == user.pw_uid:
            allowed = info.st_mode & 0o100
        elif info.st_gid in groups:
            allowed = info.st_mode & 0o010
        else:
            allowed = info.st_mode & 0o001
        if not allowed:
            return False
    return True
