"""The `cti` command: run the daemon, check config, manage the database and the Asterisk lab."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

import structlog

from cti import config as config_module
from cti import logs

EXIT_CONFIG = 2

def _expected_errors() -> tuple[type[Exception], ...]:
    """Errors an operator can act on: printed as one line, no traceback."""
    from cti.lab import LabError
    from crm_bridge.embedded_pg import EmbeddedPostgresError
    return (LabError, EmbeddedPostgresError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_CONFIG
    try:
        config = _load_config(args)
    except config_module.ConfigError as error:
        source = getattr(args, "file", None) or args.config or os.environ.get("CTI_CONFIG") or "environment"
        print(f"cti: invalid configuration ({source}):\n  " + "\n  ".join(error.problems), file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(config.log.format, config.log.level)
    try:
        return args.handler(config, args) or 0
    except KeyboardInterrupt:
        return 130
    except _expected_errors() as error:
        structlog.get_logger("cti").error("cti.failed", error=str(error))
        print(f"cti: {error}", file=sys.stderr)
        return 1


def _load_config(args: argparse.Namespace) -> config_module.Config:
    path = getattr(args, "file", None) or args.config or os.environ.get("CTI_CONFIG")
    environ = dict(os.environ)
    if getattr(args, "lab", False):
        environ["CTI_LAB__ENABLED"] = "true"
    return config_module.load(path, environ)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cti", description="CTI middleware for Asterisk call centers: AMI/FastAGI link, ACD, "
        "IVR, screen-pops and the CRM store.")
    parser.add_argument("-c", "--config", metavar="FILE",
                        help="TOML configuration file (default: $CTI_CONFIG, else built-in defaults)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = _command(commands, "run", _run, "run the daemon until SIGTERM or SIGINT")
    run.add_argument("--lab", action="store_true",
                     help="also start the real Asterisk lab and link to it (needs root)")

    check = _command(commands, "check-config", _check_config, "validate a configuration file and exit")
    check.add_argument("file", nargs="?", metavar="FILE", help="file to check (default: --config)")

    db = commands.add_parser("db", help="the CRM store's schema", description="Manage the CRM store's schema.")
    db_commands = db.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _command(db_commands, "upgrade", _db_upgrade, "apply pending migrations")
    _command(db_commands, "status", _db_status, "show applied and pending migrations")

    _add_lab_commands(commands)
    return parser


def _add_lab_commands(commands) -> None:
    from cti.lab import commands as lab_commands
    lab = commands.add_parser("lab", help="the real Asterisk lab (Debian sid chroot) for demos and tests",
                              description="Manage the Asterisk lab: a Debian sid root with Asterisk 22, "
                              "run in a chroot on 127.0.0.1. Needs root.")
    lab_sub = lab.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _command(lab_sub, "setup", lab_commands.setup, "build or unpack the lab root (cached as a tarball)")
    _command(lab_sub, "start", lab_commands.start, "start the lab's Asterisk and wait until it is fully booted")
    _command(lab_sub, "stop", lab_commands.stop, "stop the lab's Asterisk (by PID file)")
    _command(lab_sub, "status", lab_commands.status, "say whether the lab runs, and its Asterisk version")
    call = _command(lab_sub, "call", lab_commands.call, "place a SIP call into the lab with sipp")
    call.add_argument("--from", dest="caller", default="5551234", help="caller number (ANI)")
    call.add_argument("--name", default="Lab Caller", help="caller name")
    call.add_argument("--to", dest="dialled", default="100", help="number dialled (DNIS)")
    call.add_argument("--dtmf", default="", help='DTMF groups sent as SIP INFO, comma separated: "1,2,12345#"')
    call.add_argument("--hold", type=float, default=3.0, help="seconds to stay on the line before hanging up")


def _command(subparsers, name: str, handler: Callable, summary: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    parser.set_defaults(handler=handler)
    return parser


def _run(config: config_module.Config, _args: argparse.Namespace) -> int:
    import uvloop

    from cti.app import serve
    uvloop.run(serve(config))
    return 0


def _check_config(config: config_module.Config, args: argparse.Namespace) -> int:
    print(f"{args.file or args.config or 'built-in defaults'}: configuration is valid")
    return 0


def _db_upgrade(config: config_module.Config, _args: argparse.Namespace) -> int:
    async def upgrade(connection) -> None:
        from crm_bridge import migrations
        applied = await migrations.upgrade(connection)
        print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m.version:04d} {m.name}" for m in applied))
    return asyncio.run(_with_database(config, upgrade))


def _db_status(config: config_module.Config, _args: argparse.Namespace) -> int:
    async def show(connection) -> None:
        from crm_bridge import migrations
        for state in await migrations.status(connection):
            where = f"applied {state.applied_at}" if state.applied_at else "pending"
            warning = "  (file changed since it was applied)" if state.changed_since_applied else ""
            print(f"{state.migration.version:04d} {state.migration.name:<30} {where}{warning}")
    return asyncio.run(_with_database(config, show))


async def _with_database(config: config_module.Config, work: Callable) -> int:
    from crm_bridge.database import Database
    database = Database.from_config(config)
    await database.open(migrate=False)
    try:
        async with database.pool.acquire() as connection:
            await work(connection)
    finally:
        await database.close()
    return 0
