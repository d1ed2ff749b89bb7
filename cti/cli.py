"""The `cti` command: run the daemon, check config, manage the database and the Asterisk lab."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path

import structlog

from cti import config as config_module
from cti import logs

EXIT_CONFIG = 2

def _expected_errors() -> tuple[type[Exception], ...]:
    """Errors an operator can act on: printed as one line, no traceback."""
    from cti.lab import LabError
    from crm_bridge.embedded_pg import EmbeddedPostgresError
    from ivr import FlowError
    return (LabError, EmbeddedPostgresError, FlowError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if hasattr(args, "arguments"):
        args.arguments = extra + args.arguments
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_CONFIG
    try:
        config = _load_config(args)
    except config_module.ConfigError as error:
        source = _config_path(args) or "environment"
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


def _config_path(args: argparse.Namespace) -> str | None:
    """check-config's FILE, else --config, else $CTI_CONFIG; None: defaults and environment."""
    return getattr(args, "file", None) or args.config or os.environ.get("CTI_CONFIG")


def _load_config(args: argparse.Namespace) -> config_module.Config:
    path = _config_path(args)
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
    _add_crm_commands(commands)
    agent = commands.add_parser("agent", help="agents' desktop logins",
                                description="Manage agents' desktop logins (the agents come from acd.file).")
    agent_sub = agent.add_subparsers(title="commands", metavar="COMMAND", required=True)
    password = _command(agent_sub, "password", _agent_password, "set an agent's desktop password")
    password.add_argument("agent_id", metavar="AGENT")
    password.add_argument("--stdin", action="store_true", help="read the password from standard input")
    _passthrough(commands, "sim", "acd.sim", "run the real ACD engine on a simulated clock (Erlang C check)")
    _passthrough(commands, "ivr", "ivr.simulate", "validate and simulate IVR flow files (cti ivr --help)")
    return parser


def _passthrough(commands, name: str, module: str, summary: str) -> None:
    """A command whose own parser lives with its engine; its arguments are handed on as they are."""
    parser = commands.add_parser(name, help=summary, add_help=False)
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=lambda _config, args: import_module(module).run_cli(args.arguments))


def _add_crm_commands(commands) -> None:
    crm = commands.add_parser("crm", help="the CRM store: import, scoring, API clients",
                              description="Manage the CRM store's data and its API clients.")
    crm_sub = crm.add_subparsers(title="commands", metavar="COMMAND", required=True)
    load = _command(crm_sub, "import", _crm_import, "import customers from a CSV file (bad rows reported by line)")
    load.add_argument("csv_file", metavar="FILE")
    _command(crm_sub, "score", _crm_score, "recompute RFM value scores and tiers")
    client = _command(crm_sub, "client", _crm_client, "create or revoke a REST API client token")
    client.add_argument("action", choices=("create", "revoke"))
    client.add_argument("name")
    client.add_argument("--role", choices=("crm", "supervisor", "operator"), default="crm")


def _add_lab_commands(commands) -> None:
    from cti.lab import commands as lab_commands
    from cti.lab.sipp import DTMF_MODES
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
    call.add_argument("--dtmf", default="", help='DTMF groups, comma separated: "1,2,12345#"')
    call.add_argument("--dtmf-mode", choices=DTMF_MODES, default="info",
                      help="DTMF as SIP INFO, or as RFC 4733 events in the RTP (sipp pcap play, needs root)")
    call.add_argument("--hold", type=float, default=3.0, help="seconds to stay on the line before hanging up")
    phone = _command(lab_sub, "phone", lab_commands.phone, "run a SIP phone (sipp) the lab can dial, until Ctrl-C")
    phone.add_argument("--port", type=int, help="UDP port on 127.0.0.1 (default: a free one)")
    answer = phone.add_mutually_exclusive_group()
    answer.add_argument("--answer-after-ms", type=int, default=300, help="ring this long, then answer")
    answer.add_argument("--no-answer", action="store_true", help="ring until Asterisk cancels")
    answer.add_argument("--busy", action="store_true", help="refuse every call with 486 Busy Here")


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
    async def upgrade(database) -> None:
        from crm_bridge import migrations
        async with database.pool.acquire() as connection:
            applied = await migrations.upgrade(connection)
        print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m.version:04d} {m.name}" for m in applied))
    return _with_database(config, upgrade, migrate=False)


def _db_status(config: config_module.Config, _args: argparse.Namespace) -> int:
    async def show(database) -> None:
        from crm_bridge import migrations
        async with database.pool.acquire() as connection:
            states = await migrations.status(connection)
        for state in states:
            where = f"applied {state.applied_at}" if state.applied_at else "pending"
            warning = "  (file changed since it was applied)" if state.changed_since_applied else ""
            print(f"{state.migration.version:04d} {state.migration.name:<30} {where}{warning}")
    return _with_database(config, show, migrate=False)


def _crm_import(config: config_module.Config, args: argparse.Namespace) -> int:
    async def load(database) -> None:
        from crm_bridge.importer import run_import
        report = await run_import(database, Path(args.csv_file), default_country=config.crm.default_country)
        print("\n".join(report.lines()))
    return _with_database(config, load)


def _crm_score(config: config_module.Config, _args: argparse.Namespace) -> int:
    async def score(database) -> None:
        from crm_bridge.scoring import run_scoring
        print("\n".join((await run_scoring(database)).lines()))
    return _with_database(config, score)


def _crm_client(config: config_module.Config, args: argparse.Namespace) -> int:
    async def manage(database) -> int:
        from crm_bridge.api_clients import create_client, revoke_client
        if args.action == "create":
            token = await create_client(database.pool, args.name, args.role)
            print(f"API client {args.name!r} ({args.role}); its token, shown only now:\n{token}")
            return 0
        revoked = await revoke_client(database.pool, args.name)
        print(f"API client {args.name!r} " + ("revoked" if revoked else "not found"))
        return 0 if revoked else 1
    return _with_database(config, manage)


def _agent_password(config: config_module.Config, args: argparse.Namespace) -> int:
    secret = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass(f"password for {args.agent_id}: ")
    if len(secret) < 8:
        print("cti: a password needs at least 8 characters", file=sys.stderr)
        return 2

    async def store(database) -> int:
        from crm_bridge.agents import AgentRepository
        if await AgentRepository(database.pool).set_secret(args.agent_id, secret):
            print(f"password set for agent {args.agent_id}")
            return 0
        print(f"cti: no agent {args.agent_id!r} in the store (the daemon imports them from acd.file)",
              file=sys.stderr)
        return 1
    return _with_database(config, store)


def _with_database(config: config_module.Config, work: Callable, migrate: bool = True) -> int:
    from crm_bridge.database import Database

    async def session() -> int:
        database = Database.from_config(config)
        await database.open(migrate=migrate)
        try:
            return await work(database) or 0
        finally:
            await database.close()
    return asyncio.run(session())
