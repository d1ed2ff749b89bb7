"""Flow files: one TOML file per flow, loaded into a checked, immutable ``FlowSet``.

A flow's name is its file name without ``.toml``. A call enters the flow whose ``dnis`` list
holds the dialled number, else the one flow marked ``default``; a file without ``[flow]`` is
only reached as a sub-flow (or by name, e.g. a post-call survey). A minimal flow::

    [flow]
    dnis = ["100", "101"]        # the dialled numbers this flow answers
    default = true               # ...and every number no flow claims (one flow at most)
    start = "menu"               # optional: the file's first node otherwise
    operator_queue = "operator"  # optional (this default): where failed callers go
    max_steps = 200              # optional (this default): node visits before that fallback

    [defaults]                   # optional: for every menu, confirm, collect and rating
    timeout_ms = 5000
    retries = 2                  # tries after the first one
    invalid_prompts = ["pm-invalid-option", "please-try-again"]   # before every retry...
    timeout_prompts = [["please-try-again"], ["im-sorry", "please-try-again"]]  # ...or each its own
    fallback = "operator"        # a node of this file; the operator queue when left out

    [nodes.menu]
    kind = "menu"
    prompts = ["custom/main-menu"]
    options = { "1" = "sales", "0" = "operator" }

    [nodes.sales]
    kind = "queue"
    queue = "sales"
    skills = ["sales"]

    [nodes.operator]
    kind = "queue"
    queue = "operator"

A question that gets a wrong key, a bad entry or silence plays that retry's prompts and asks
again; after the last retry the call goes to ``fallback``.

Node kinds and their keys (``*`` required; ``next`` everywhere means the node that follows):

==========  ===========================================================================
play        prompts*, next*, barge_in (false: the caller cannot cut it short)
menu        prompts*, options* (digit = node), default (node for any other digit),
            timeout_ms, barge_in (true), retries, invalid_prompts, timeout_prompts, fallback
confirm     value*, yes*, no*, prompts (["you-entered"]), question (["if-correct-press",
            "digits/1"]): plays prompts, reads the value back digit by digit, asks the
            question; 1 goes to yes, 2 to no; same retry keys as menu
collect     prompts*, store*, next*, min_len (1), max_len (20), terminator ("#"),
            pattern (a regex the whole entry must match), luhn (true/false),
            lookup (a CRM lookup that must find the entry), timeout_ms, retry keys
rating      prompts*, store*, next*, lowest (1), highest (5), retry keys: one key on a
            scale, kept as an integer in the result's scores (surveys)
condition   branches* = [{ test..., goto = node }], else*: the first branch whose tests
            all hold wins. Tests: open = "calendar", holiday = "calendar",
            tier = ["gold"], dnis = ["100"], value = "name" with one of equals,
            one_of, matches (regex), present (true/false)
set         values* (a table of name = value), next*
lookup      lookup*, key* (the value to look up), next*, not_found*
say         as* (number, digits, money, date), value*, prompts (before), after,
            currency ("USD", money only), next*
queue       queue*, skills, priority (higher is served first), prompts
voicemail   mailbox*, prompts
callback    number_from (a value name, "ani" by default), prompts
transfer    number* (an outside number), prompts
hangup      prompts, outcome ("hangup" or "self_service_completed")
goto        target*
subflow     flow* (another flow file in the same folder), next* (where its return lands)
return      back to the node after the calling subflow node
==========  ===========================================================================

Lookups: customer_by_account (identifies the customer), balance, status (their fields become
values), validate_account. Values are named: digits collected by ``store``, ``set`` values,
lookup fields, and ``ani``, ``dnis``, ``customer.<field>`` (the identified customer's record).
Values are shared by a flow and the sub-flows it calls. Calendars: see ``ivr.calendar``.

Prompts are Asterisk sound names, relative to the language's sounds folder (e.g.
``/usr/share/asterisk/sounds/en``), without extension. Your own recordings go in a
``custom/`` folder there (``custom/main-menu.wav`` or ``.gsm``, 8 kHz mono) and are named
``custom/main-menu``. The examples in ``config/flows/`` use asterisk-core-sounds-en where a
file exists; the few ``custom/`` prompts they name must be recorded before going live.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ivr.calendar import BusinessCalendar, read_calendar
from ivr.nodes import NODE_READERS, Node, NodeReader, Reference
from ivr.reader import KeyPath, Problem, Report, SourceMap, TableReader

_TOP_LEVEL_TABLES = ("flow", "defaults", "calendars", "nodes")
_DEFAULTABLE_KEYS = ("timeout_ms", "retries", "invalid_prompts", "timeout_prompts", "fallback")
_TOML_ERROR_LINE = re.compile(r"\(at line (\d+), column \d+\)")


@dataclass(frozen=True)
class Flow:
    name: str
    file: str
    start: str
    nodes: Mapping[str, Node]
    dnis: tuple[str, ...]
    is_default: bool
    operator_queue: str
    max_steps: int


@dataclass(frozen=True)
class FlowSet:
    flows: Mapping[str, Flow]
    warnings: tuple[Problem, ...] = ()

    def entry_for(self, dnis: str) -> Flow:
        """The flow claiming ``dnis``, else the default flow."""
        for flow in self.flows.values():
            if dnis in flow.dnis:
                return flow
        for flow in self.flows.values():
            if flow.is_default:
                return flow
        raise NoFlowForDnis(f"no flow answers DNIS {dnis!r} and no flow is the default")


class NoFlowForDnis(LookupError):
    pass


class FlowError(Exception):
    """The flow files have errors; ``problems`` lists them (and the warnings) as file:line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def load_flows(*paths: str | os.PathLike[str]) -> FlowSet:
    """Every ``*.toml`` of each directory, and each file given; sub-flows they call are loaded
    from the calling file's folder. Raises ``FlowError`` unless every check passes."""
    problems, flows = _load(paths)
    if any(not problem.warning for problem in problems):
        raise FlowError(problems)
    return FlowSet(flows, tuple(problems))


def validate_flows(*paths: str | os.PathLike[str]) -> list[Problem]:
    """Every error and warning of the flows ``load_flows`` would load, by file and line."""
    return _load(paths)[0]


@dataclass
class _FlowFile:
    flow: Flow
    path: Path
    report: Report
    calls: list[tuple[str, KeyPath]]  # (sub-flow name, where it is named)


def _load(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Problem], dict[str, Flow]]:
    problems: list[Problem] = []
    files: dict[str, _FlowFile] = {}
    for path in _flow_paths(paths, problems):
        _add_file(path, files, problems)
    _load_called_flows(files, problems)
    _check_subflow_cycles(files)
    _check_entries(files)
    ordered = sorted(dict.fromkeys(problems), key=lambda problem: (problem.file, problem.line))
    return ordered, {name: flow_file.flow for name, flow_file in files.items()}


def _flow_paths(paths: Iterable[str | os.PathLike[str]], problems: list[Problem]) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths):
        in_folder = sorted(path.glob("*.toml")) if path.is_dir() else [path]
        if not in_folder:
            problems.append(Problem(str(path), 1, "no *.toml flow files in this folder"))
        found += in_folder
    return found


def _add_file(path: Path, files: dict[str, _FlowFile], problems: list[Problem]) -> None:
    if path.stem in files:
        if files[path.stem].path.resolve() != path.resolve():
            problems.append(Problem(str(path), 1, f"flow '{path.stem}' is also defined by {files[path.stem].path}"))
        return
    flow_file = _read_flow_file(path, problems)
    if flow_file is not None:
        files[path.stem] = flow_file


def _load_called_flows(files: dict[str, _FlowFile], problems: list[Problem]) -> None:
    """Sub-flows are found next to the file that calls them, until nothing new is called."""
    pending = list(files.values())
    while pending:
        caller = pending.pop()
        for name, where in caller.calls:
            candidate = caller.path.parent / f"{name}.toml"
            if name in files:
                continue
            if not candidate.is_file():
                caller.report.error(where, f"sub-flow '{name}' not found (looked for {candidate})")
                continue
            _add_file(candidate, files, problems)
            if name in files:
                pending.append(files[name])


def _read_flow_file(path: Path, problems: list[Problem]) -> _FlowFile | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(str(path), 1, f"cannot read the file: {error}"))
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = _TOML_ERROR_LINE.search(str(error))
        message = _TOML_ERROR_LINE.sub("", str(error)).strip()
        problems.append(Problem(str(path), int(line[1]) if line else 1, f"not valid TOML: {message}"))
        return None
    report = Report(str(path), SourceMap(text), problems)
    return _read_flow(path, data, report)


def _read_flow(path: Path, data: dict[str, object], report: Report) -> _FlowFile:
    for key in data:
        if key not in _TOP_LEVEL_TABLES:
            report.error((key,), f"unknown table '{key}'; a flow file has {', '.join(_TOP_LEVEL_TABLES)}")
    top = TableReader(data, (), report, path.name)
    settings = top.child("flow", "[flow]")
    readers = _node_readers(top, report, _read_calendars(top, report))
    nodes = {reader.node_id: node for reader in readers if (node := _read_node(reader)) is not None}
    start = settings.text("start", readers[0].node_id if readers else "")
    flow = Flow(name=path.stem, file=str(path), start=start, nodes=nodes,
                dnis=settings.text_list("dnis", ()), is_default=settings.boolean("default", False),
                operator_queue=settings.text("operator_queue", "operator"),
                max_steps=settings.integer("max_steps", 200, minimum=1))
    settings.reject_unknown_keys()
    references = [ref for reader in readers for ref in reader.references]
    references.append(Reference("", start, ("flow", "start"), "[flow]: start"))
    _check_graph({reader.node_id: reader.label for reader in readers}, nodes, start, references, report)
    return _FlowFile(flow, path, report, [call for reader in readers for call in reader.subflows])


def _read_calendars(top: TableReader, report: Report) -> dict[str, BusinessCalendar]:
    return {name: read_calendar(TableReader(table, ("calendars", name), report, f"calendar '{name}'"))
            for name, table in top.mapping("calendars", {}).items()
            if _is_table(table, ("calendars", name), report)}


def _node_readers(top: TableReader, report: Report, calendars: Mapping[str, BusinessCalendar]) -> list[NodeReader]:
    written = top.child("defaults", "[defaults]")
    written.reject_unknown_keys(known=_DEFAULTABLE_KEYS)
    defaults = TableReader({key: value for key, value in written.table.items() if key in _DEFAULTABLE_KEYS},
                           written.path, report, written.label)
    tables = top.mapping("nodes", {})
    if not tables:
        report.error(("nodes",), "the flow has no nodes")
    return [NodeReader(node_id, str(table.get("kind", "")), table, report, defaults, calendars)
            for node_id, table in tables.items() if _is_table(table, ("nodes", node_id), report)]


def _is_table(value: object, path: KeyPath, report: Report) -> bool:
    if not isinstance(value, dict):
        report.error(path, f"'{'.'.join(map(str, path))}' must be a table")
    return isinstance(value, dict)


def _read_node(reader: NodeReader) -> Node | None:
    kind = reader.text("kind")  # reports a missing or mistyped kind
    read = NODE_READERS.get(kind)
    if read is None:
        if kind:
            reader.error("kind", f"unknown kind '{kind}'; known: {', '.join(NODE_READERS)}")
        return None
    node = read(reader)
    reader.reject_unknown_keys()
    return node


def _check_graph(labels: Mapping[str, str], nodes: Mapping[str, Node], start: str,
                 references: list[Reference], report: Report) -> None:
    """``labels`` names every node written in the file, ``nodes`` those read without error."""
    graph: dict[str, list[str]] = {}
    for ref in references:
        if ref.target in labels:
            graph.setdefault(ref.source, []).append(ref.target)
        else:
            report.error(ref.path, f"{ref.label} points to unknown node '{ref.target}'")
    if start in labels:
        _check_reachable(labels, start, graph, report)
    _check_spinning_loops(labels, nodes, graph, report)


def _check_reachable(labels: Mapping[str, str], start: str, graph: Mapping[str, list[str]], report: Report) -> None:
    reached, frontier = {start}, [start]
    while frontier:
        for target in graph.get(frontier.pop(), []):
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    for node_id, label in labels.items():
        if node_id not in reached:
            report.error(("nodes", node_id), f"{label} is unreachable from the start node '{start}'")


def _check_spinning_loops(labels: Mapping[str, str], nodes: Mapping[str, Node],
                          graph: Mapping[str, list[str]], report: Report) -> None:
    """A loop through nodes that never wait for the caller would spin until the step limit."""
    passing = {node_id for node_id, node in nodes.items() if not node.waits_for_caller}
    passing_graph = {source: [target for target in targets if target in passing]
                     for source, targets in graph.items() if source in passing}
    for loop in _cycles(passing_graph):
        report.error(("nodes", loop[0]),
                     f"{labels[loop[0]]} loops through {' -> '.join(loop)} without waiting for the caller")


def _cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first walk, its first node repeated at the end."""
    on_path: set[str] = set()
    visited: set[str] = set()
    found: list[list[str]] = []

    def walk(path: list[str]) -> None:
        node = path[-1]
        visited.add(node)
        on_path.add(node)
        for target in graph.get(node, []):
            if target in on_path:
                found.append([*path[path.index(target):], target])
            elif target not in visited:
                walk([*path, target])
        on_path.discard(node)

    for node in graph:
        if node not in visited:
            walk([node])
    return found


def _check_subflow_cycles(files: Mapping[str, _FlowFile]) -> None:
    graph = {name: [called for called, _ in flow_file.calls if called in files] for name, flow_file in files.items()}
    for loop in _cycles(graph):
        caller = files[loop[0]]
        where = next(where for called, where in caller.calls if called == loop[1])
        caller.report.error(where, f"sub-flow cycle: {' -> '.join(loop)}")


def _check_entries(files: Mapping[str, _FlowFile]) -> None:
    claimed: dict[str, str] = {}
    default_flow = ""
    for name, flow_file in files.items():
        for dnis in flow_file.flow.dnis:
            if dnis in claimed:
                flow_file.report.error(("flow", "dnis"), f"DNIS '{dnis}' is already answered by flow '{claimed[dnis]}'")
            claimed.setdefault(dnis, name)
        if flow_file.flow.is_default:
            if default_flow:
                flow_file.report.error(("flow", "default"), f"flow '{default_flow}' is already the default")
            default_flow = default_flow or name
