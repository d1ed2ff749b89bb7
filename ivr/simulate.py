"""Simulated calls for flow authors: a script of key presses, canned CRM answers, no Asterisk.

    cti ivr validate config/flows
    cti ivr simulate config/flows --dnis 100 --digits "1,12345#,1,1" \\
        --at 2025-03-14T10:00-04:00 --lookup account=12345:name=Jane,balance=1234

The digits script answers the questions in order, one comma-separated group each: an empty
group is a timeout, ``hangup`` hangs up, and once the script runs out every question times
out. A ``--lookup KEY_NAME=KEY:FIELD=VALUE,...`` record answers every lookup of that key as
found with those fields (the key included); any other lookup is not found.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from ivr.actions import (Action, CallbackRequest, CollectDigits, Hangup, Lookup, Play, SayDigits,
                         SayNumber, ToQueue, Transfer, Voicemail)
from ivr.engine import Clock, IvrSession
from ivr.flow import FlowError, FlowSet, NoFlowForDnis, load_flows, validate_flows
from ivr.inputs import CallerHangup, Digits, Input, LookupResult, Timeout
from ivr.result import IvrResult

Records = Mapping[str, Mapping[str, object]]  # lookup key -> the fields found for it


@dataclass
class Simulation:
    result: IvrResult
    prompts: list[str] = field(default_factory=list)  # every sound file, in the order played
    transcript: list[str] = field(default_factory=list)

    @property
    def path(self) -> list[str]:
        return self.result.path

    def __str__(self) -> str:
        result = self.result
        summary = [
            f"path: {' -> '.join(result.path)}",
            f"choices: {', '.join(f'{node}={digit}' for node, digit in result.choices) or '-'}",
            f"values: {result.values or '-'}",
            f"scores: {result.scores or '-'}",
            f"customer: {result.customer or '-'}" + (f" (account {result.customer_account})"
                                                     if result.customer_account else ""),
            f"outcome: {_describe_outcome(result)}",
            *(f"note: {note}" for note in result.notes),
        ]
        return "\n".join([*self.transcript, "", *summary])


def _describe_outcome(result: IvrResult) -> str:
    details = [f"{name} {' '.join(value) if isinstance(value, tuple) else value}"
               for name, value in asdict(result.outcome).items() if value and name != "kind"]
    return " ".join([result.outcome.kind, *(["(" + ", ".join(details) + ")"] if details else []),
                     *(["(partial)"] if result.partial else [])])


def simulate(flow_set: FlowSet, dnis: str, digits_script: str, now: Clock, lookups: Records | None = None,
             *, ani: str = "5550100", flow: str | None = None,
             customer: Mapping[str, object] | None = None) -> Simulation:
    answers = deque(_parse_script(digits_script))
    session = IvrSession(flow_set, dnis, ani, now, customer=customer, flow=flow)
    simulation = Simulation(session.result)
    actions = session.start()
    while True:
        for action in actions:
            _record(action, simulation)
        if session.finished:
            return simulation
        reply = _reply(actions[-1], answers, lookups or {})
        simulation.transcript.append(_describe_reply(reply))
        actions = session.feed(reply, now)


def _parse_script(script: str) -> list[Input]:
    if not script.strip():
        return []
    groups = [group.strip() for group in script.split(",")]
    return [CallerHangup() if group.lower() == "hangup" else Digits(group) if group else Timeout()
            for group in groups]


def _reply(request: Action, answers: deque[Input], lookups: Records) -> Input:
    if isinstance(request, Lookup):
        fields = lookups.get(request.key)
        return LookupResult(request.kind, found=fields is not None, fields=dict(fields or {}))
    return answers.popleft() if answers else Timeout()


def _describe_reply(reply: Input) -> str:
    match reply:
        case Digits(value):
            return f"  caller presses {value}"
        case LookupResult(found=True, fields=fields):
            return f"  CRM finds {dict(fields)}"
        case LookupResult():
            return "  CRM finds nothing"
        case CallerHangup():
            return "  caller hangs up"
    return "  caller presses nothing"


def _record(action: Action, simulation: Simulation) -> None:
    if isinstance(action, Play | CollectDigits):
        simulation.prompts += action.prompts
    line = _describe(action)
    if line:
        simulation.transcript.append(line)


def _describe(action: Action) -> str:
    match action:
        case Play(prompts):
            return f"play {' '.join(prompts)}"
        case SayNumber(number):
            return f"say number {number}"
        case SayDigits(digits):
            return f"say digits {digits}"
        case CollectDigits(prompts, min_len, max_len, terminator):
            keys = f"{min_len}-{max_len} keys" if min_len != max_len else f"{max_len} key{'s' * (max_len > 1)}"
            return f"ask {' '.join(prompts)} ({keys}{f', ends with {terminator}' if terminator else ''})"
        case Lookup(kind, key):
            return f"lookup {kind} {key}"
        case ToQueue(queue, skills, priority):
            return f"to queue {queue} (skills {', '.join(skills) or '-'}, priority {priority})"
        case Voicemail(mailbox):
            return f"voicemail {mailbox}"
        case CallbackRequest(number):
            return f"callback request to {number}"
        case Transfer(number):
            return f"transfer to {number}"
        case Hangup():
            return "hang up"
    return ""  # Finish: the summary follows


# -- command line ---------------------------------------------------------------------------

def run_cli(argv: list[str]) -> int:
    """``cti ivr validate|simulate ...``; 0 when fine, 2 on invalid flows or arguments."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "validate":
            return _validate(args.paths)
        return _simulate(args, parser)
    except SystemExit as exit:  # argparse's way to reject arguments or finish --help
        return exit.code if isinstance(exit.code, int) else 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cti ivr", description="Check and try IVR flow files.")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="report every problem of the flows, by file and line")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="flow files, or folders of them")
    run = commands.add_parser("simulate", help="run a call through the flows with scripted key presses")
    run.add_argument("paths", nargs="+", metavar="PATH", help="flow files, or folders of them")
    run.add_argument("--dnis", default="", help="the number dialled; picks the entry flow")
    run.add_argument("--ani", default="5550100", help="the caller's number (default %(default)s)")
    run.add_argument("--flow", help="start this flow by name, whatever the DNIS")
    run.add_argument("--digits", default="", help='one group per question: "1,,12345#,hangup"')
    run.add_argument("--at", type=_aware_datetime, help="the call's time, ISO with offset (default: now)")
    run.add_argument("--lookup", action="append", default=[], type=_lookup_record, metavar="NAME=KEY:FIELD=V,...",
                     help="a CRM record: account=12345:name=Jane,balance=1234 (repeatable)")
    run.add_argument("--customer", type=_fields, default=None, metavar="FIELD=V,...",
                     help="the customer the CRM found by caller number, e.g. tier=gold,name=Jane")
    return parser


def _validate(paths: list[str]) -> int:
    problems = validate_flows(*paths)
    for problem in problems:
        print(problem, file=sys.stderr)
    errors = sum(not problem.warning for problem in problems)
    if errors:
        print(f"cti ivr: {errors} error(s) in the flows", file=sys.stderr)
        return 2
    print(f"flows ok ({len(problems)} warning(s))")
    return 0


def _simulate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        flow_set = load_flows(*args.paths)
    except FlowError as error:
        print(error, file=sys.stderr)
        return 2
    if args.flow and args.flow not in flow_set.flows:
        parser.error(f"no flow named '{args.flow}'; loaded: {', '.join(flow_set.flows)}")
    try:
        simulation = simulate(flow_set, args.dnis, args.digits, args.at or datetime.now(timezone.utc),
                              dict(args.lookup), ani=args.ani, flow=args.flow, customer=args.customer)
    except NoFlowForDnis as error:
        parser.error(str(error))
    print(simulation)
    return 0


def _aware_datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an ISO date and time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"'{text}' needs a UTC offset, e.g. 2025-03-14T09:30-05:00")
    return moment


def _fields(text: str) -> dict[str, str]:
    pairs = [pair.partition("=") for pair in text.split(",") if pair]
    if not pairs or any(not name or not sep for name, sep, _ in pairs):
        raise argparse.ArgumentTypeError(f"'{text}' is not FIELD=VALUE,FIELD=VALUE")
    return {name.strip(): value.strip() for name, _, value in pairs}


def _lookup_record(text: str) -> tuple[str, dict[str, str]]:
    key_part, _, field_part = text.partition(":")
    try:
        [(key_name, key)] = _fields(key_part).items()
        return key, {key_name: key, **(_fields(field_part) if field_part else {})}
    except (argparse.ArgumentTypeError, ValueError):  # ValueError: not exactly one key
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=KEY:FIELD=VALUE,...") from None
