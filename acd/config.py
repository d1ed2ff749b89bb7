"""ACD definitions (queues, agents, customer tiers) from a TOML file, checked before any use.

The format, annotated key by key, is ``config/acd.toml``; ``docs/ACD.md`` summarises it::

    [tiers]                        # optional: customer tier -> call priority
    gold = 10

    [queues.support]               # one table per queue; its keys are QueueSettings' fields
    skills = "support>=50"
    final_action = { kind = "callback" }
    [[queues.support.overflow]]    # steps, in the order they expire
    after_seconds = 60
    lower_thresholds = { support = 20 }

    [agents.1001]
    name = "Alice"
    interface = "PJSIP/1001"
    skills = { support = 80 }

The same shape as JSON (``queue_to_dict``, ``agent_to_dict``) is how the database keeps a queue
or an agent and how the REST API shows one, so one parser checks a file, a database row and a
supervisor's change alike, and ``parse_acd(definitions_to_dict(d), src) == d``.

Every problem is reported, not only the first, as ``SOURCE: key.path: message``
(``acd.toml: queues.support.ring_timeout: expected a number > 0, got 'abc'``); a TOML syntax error
as ``acd.toml:LINE: not valid TOML: ...`` (tomllib gives lines for syntax errors only). Beyond
each value's own checks: overflow steps and final actions name defined queues, a step lowers
only skills its queue requires, no two agents share an interface, and the whole builds an
``AcdEngine``.

An agent's ``device`` is the device-state name watched to know it is busy with a call the ACD
did not give it. By default it is the interface up to its second ``/``: "PJSIP/1001" for
"PJSIP/1001", "PJSIP/trunk" for "PJSIP/trunk/sip:agent1@127.0.0.1:5071" (a dial string through an
endpoint has that endpoint's state). ``device = ""`` watches nothing: for agents reached through
a shared endpoint, whose state says nothing about any one of them.

Pure: reads a file at most; no database, no sockets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from acd.engine import AcdEngine
from acd.model import (
    DEFAULT_TIER_PRIORITIES,
    AcdError,
    AcdSettings,
    AgentSettings,
    CallbackPolicy,
    Disposition,
    DispositionKind,
    OverflowStep,
    QueueSettings,
    Strategy,
)
from acd.skills import MAX_LEVEL, MIN_LEVEL, AtLeast, SkillExpr, SkillExpressionError, parse_skills
from ivr.calendar import calendar_from_table

# Queue names and agent ids travel in URLs, dial plans and logs: keep them plain.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_ERROR_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)")
# Dispositions whose target says where the call goes: without one it would go nowhere.
_NEEDS_TARGET = (DispositionKind.VOICEMAIL, DispositionKind.QUEUE, DispositionKind.EXTERNAL)


class AcdConfigError(ValueError):
    """Invalid ACD definitions; ``problems`` holds one ``key.path: message`` line each."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))
        self.source = source
        self.problems = tuple(problems)


# --- the definitions ------------------------------------------------------------------------


def default_device(interface: str) -> str:
    """The device-state name of an interface: up to its second '/' (see the module docstring)."""
    return "/".join(interface.split("/")[:2])


@dataclass(frozen=True)
class AgentDefinition:
    agent_id: str
    name: str
    interface: str  # the dial string the glue rings, e.g. "PJSIP/1001"
    device: str | None = None  # None: default_device(interface); "": watch no device
    skills: Mapping[str, int] = field(default_factory=dict)  # skill -> proficiency 1-100

    def __post_init__(self) -> None:
        if self.device is None:
            object.__setattr__(self, "device", default_device(self.interface))

    def settings(self) -> AgentSettings:
        return AgentSettings(self.agent_id, self.interface, dict(self.skills))


@dataclass(frozen=True)
class AcdDefinitions:
    queues: tuple[QueueSettings, ...] = ()
    agents: tuple[AgentDefinition, ...] = ()
    tier_priorities: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_TIER_PRIORITIES))

    def settings(self, **engine_kwargs: Any) -> AcdSettings:
        """Engine settings; ``engine_kwargs`` are AcdSettings' other fields (is_open, day_start...)."""
        return AcdSettings(**{"queues": self.queues, "agents": tuple(agent.settings() for agent in self.agents),
                              "tier_priorities": dict(self.tier_priorities), **engine_kwargs})

    def queue(self, name: str) -> QueueSettings | None:
        return next((queue for queue in self.queues if queue.name == name), None)

    def agent(self, agent_id: str) -> AgentDefinition | None:
        return next((agent for agent in self.agents if agent.agent_id == agent_id), None)


# --- reading --------------------------------------------------------------------------------


def read_acd_file(path: str | Path) -> tuple[AcdDefinitions, str]:
    """The file's definitions and its content hash (see ``content_sha256``)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AcdConfigError(source, [f"cannot read the file: {error}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = _TOML_ERROR_LINE.search(str(error))
        where = f"{source}:{line[1]}" if line else source
        raise AcdConfigError(where, [f"not valid TOML: {_TOML_ERROR_LINE.sub('', str(error))}"]) from None
    return parse_acd(data, source), content_sha256(data)


def load_acd_file(path: str | Path) -> AcdDefinitions:
    return read_acd_file(path)[0]


def content_sha256(data: Mapping[str, Any]) -> str:
    """A hash of what a file says, not how: editing a comment or the layout keeps it."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_acd(data: Mapping[str, Any], source: str) -> AcdDefinitions:
    """Check a whole document (a TOML file, or the database's rows in the same shape)."""
    problems: list[str] = []
    top = _Table(data, "", problems, ("tiers", "queues", "agents"))
    tiers = top.read("tiers", _tier_priorities)
    queues = tuple(queue for name, body, path in top.named_tables("queues")
                   if (queue := _queue(name, body, path, problems)) is not None)
    agents = tuple(agent for agent_id, body, path in top.named_tables("agents")
                   if (agent := _agent(agent_id, body, path, problems)) is not None)
    _check_queue_references(queues, problems)
    _check_interfaces_unique(agents, problems)
    if problems:
        raise AcdConfigError(source, problems)
    definitions = AcdDefinitions(queues, agents, **({} if tiers is _ABSENT else {"tier_priorities": tiers}))
    try:
        AcdEngine(definitions.settings())  # whatever else the engine refuses, refuse it now
    except AcdError as error:
        raise AcdConfigError(source, [str(error)]) from None
    return definitions


def parse_queue(name: str, body: Mapping[str, Any], source: str) -> QueueSettings:
    """One queue's table on its own, e.g. a supervisor's change; references to other queues are
    checked once it joins the others (``parse_acd``)."""
    return _parse_one(_queue, name, body, f"queues.{_key(name)}", source)


def parse_agent(agent_id: str, body: Mapping[str, Any], source: str) -> AgentDefinition:
    return _parse_one(_agent, agent_id, body, f"agents.{_key(agent_id)}", source)


def _parse_one(parse: Callable, name: str, body: Mapping[str, Any], path: str, source: str) -> Any:
    problems: list[str] = []
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(f"{path}: {_NAME_EXPECTATION}")
    parsed = parse(name, body, path, problems)
    if problems:
        raise AcdConfigError(source, problems)
    return parsed


# --- writing (the same shape) ---------------------------------------------------------------


def queue_to_dict(queue: QueueSettings) -> dict[str, Any]:
    """The queue's table, without its name (the key it is filed under); unset options left out."""
    return {key: value for key, value in _plain(queue).items() if key != "name"}


def agent_to_dict(agent: AgentDefinition) -> dict[str, Any]:
    return {key: value for key, value in _plain(agent).items() if key != "agent_id"}


def definitions_to_dict(definitions: AcdDefinitions) -> dict[str, Any]:
    return {"tiers": dict(definitions.tier_priorities),
            "queues": {queue.name: queue_to_dict(queue) for queue in definitions.queues},
            "agents": {agent.agent_id: agent_to_dict(agent) for agent in definitions.agents}}


def _plain(value: Any) -> Any:
    """JSON/TOML values: enums by value, tuples as lists, None (an unset option) left out."""
    if dataclasses.is_dataclass(value):
        return {item.name: _plain(getattr(value, item.name)) for item in dataclasses.fields(value)
                if getattr(value, item.name) is not None}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


# --- value checks: each returns the value to use or raises _Invalid -------------------------


class _Invalid(Exception):
    def __init__(self, message: str, at: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.at = at  # a key below the one being read, e.g. the skill in a skills table


def _expected(what: str, value: object) -> _Invalid:
    return _Invalid(f"expected {what}, got {value!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # TOML true is no number


def _number(minimum: float, inclusive: bool) -> Callable[[object], float]:
    what = f"a number {'>=' if inclusive else '>'} {minimum:g}"

    def check(value: object) -> float:
        if not _is_number(value) or value < minimum or (value == minimum and not inclusive):
            raise _expected(what, value)
        return float(value)
    return check


def _integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[object], int]:
    what = ("an integer" + (f" {minimum}-{maximum}" if maximum is not None else "")
            + (f" >= {minimum}" if maximum is None and minimum is not None else ""))

    def check(value: object) -> int:
        if (not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum)
                or (maximum is not None and value > maximum)):
            raise _expected(what, value)
        return value
    return check


def _optional(check: Callable[[object], Any]) -> Callable[[object], Any]:
    """JSON null reads as "not set" (TOML has no null: the key is left out)."""
    return lambda value: None if value is None else check(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _expected("text", value)
    return value


def _non_empty_text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _expected("non-empty text", value)
    return value


def _text_list(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _expected("a list of text", value)
    return tuple(value)


def _choice(kind: type[Enum]) -> Callable[[object], Any]:
    choices = ", ".join(member.value for member in kind)

    def check(value: object) -> Any:
        try:
            return kind(value)
        except ValueError:
            raise _expected(f"one of {choices}", value) from None
    return check


def _requirement(value: object) -> str:
    try:
        parse_skills(_text(value))
    except SkillExpressionError as error:
        raise _Invalid(f"not a skill requirement: {error}") from None
    return value


def _interface(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[^/\s]+/\S+", value):
        raise _expected('a dial string TECH/RESOURCE such as "PJSIP/1001"', value)
    return value


def _is_skill_name(name: object) -> bool:
    try:
        return isinstance(name, str) and parse_skills(name) == AtLeast(name, MIN_LEVEL)
    except SkillExpressionError:
        return False


_level = _integer(MIN_LEVEL, MAX_LEVEL)


def _skill_levels(value: object) -> dict[str, int]:
    """skill -> proficiency, as agents hold them and overflow steps lower them."""
    if not isinstance(value, dict):
        raise _expected(f"a table of skill = proficiency {MIN_LEVEL}-{MAX_LEVEL}", value)
    for skill, level in value.items():
        if not _is_skill_name(skill):
            raise _Invalid("not a skill name (a letter or _, then letters, digits, _ . -)", at=skill)
        try:
            _level(level)
        except _Invalid as error:
            raise _Invalid(error.message, at=skill) from None
    return dict(value)


def _calendar(value: object) -> dict[str, Any]:
    """Opening hours in an IVR flow's calendar shape, kept as written (see ivr.calendar)."""
    if not isinstance(value, dict):
        raise _expected("a table of timezone, hours and holidays", value)
    _, problems = calendar_from_table(value, "calendar")
    if problems:
        raise _Invalid("; ".join(problems))
    return value


def _tier_priorities(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise _expected("a table of tier = priority", value)
    for tier, priority in value.items():
        try:
            _integer()(priority)
        except _Invalid as error:
            raise _Invalid(error.message, at=tier) from None
    return dict(value)


# --- tables ---------------------------------------------------------------------------------

_ABSENT = object()
_NAME_EXPECTATION = "expected a name of letters, digits, _ . - (at most 64, not starting with _ . -)"


def _key(key: object) -> str:
    """A key as TOML writes it in a dotted path."""
    return key if isinstance(key, str) and _BARE_KEY.fullmatch(key) else json.dumps(str(key))


class _Table:
    """One table of the document: typed reads of its keys, each problem filed under its key path.
    Unknown keys are problems too."""

    def __init__(self, value: object, path: str, problems: list[str], allowed: Iterable[str]) -> None:
        self.path = path
        self.problems = problems
        self.is_table = isinstance(value, dict)
        self.values: Mapping[str, Any] = value if self.is_table else {}
        if not self.is_table:
            problems.append(f"{path or 'document'}: expected a table, got {value!r}")
        allowed = tuple(allowed)
        for key in [key for key in self.values if key not in allowed]:
            self.problem(key, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def where(self, key: str) -> str:
        return f"{self.path}.{_key(key)}" if self.path else _key(key)

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where(key)}: {message}")

    def read(self, key: str, check: Callable[[object], Any], required: bool = False) -> Any:
        """The checked value; ``_ABSENT`` when missing or invalid (the problem is recorded)."""
        if key not in self.values:
            if required and self.is_table:  # else the table's own problem says it all
                self.problem(key, "missing (required)")
            return _ABSENT
        try:
            return check(self.values[key])
        except _Invalid as error:
            where = self.where(key) + (f".{_key(error.at)}" if error.at else "")
            self.problems.append(f"{where}: {error.message}")
            return _ABSENT

    def read_all(self, checks: Mapping[str, Callable[[object], Any]], required: Iterable[str] = ()) -> dict[str, Any]:
        """The keys present (and valid) among ``checks``, for a dataclass's keyword arguments."""
        read = {key: self.read(key, check, key in required) for key, check in checks.items()}
        return {key: value for key, value in read.items() if value is not _ABSENT}

    def child(self, key: str, allowed: Iterable[str]) -> _Table:
        return _Table(self.values.get(key, {}), self.where(key), self.problems, allowed)

    def named_tables(self, key: str) -> list[tuple[str, Any, str]]:
        """(name, table, path) of a [key.NAME] section, names checked."""
        section = self.values.get(key, {})
        if not isinstance(section, dict):
            self.problem(key, f"expected tables [{key}.NAME], got {section!r}")
            return []
        entries = []
        for name, body in section.items():
            path = f"{self.where(key)}.{_key(name)}"
            if _NAME.fullmatch(name):
                entries.append((name, body, path))
            else:
                self.problems.append(f"{path}: {_NAME_EXPECTATION}")
        return entries

    def table_list(self, key: str) -> list[tuple[Any, str]]:
        """(table, path) of a [[key]] array of tables."""
        items = self.values.get(key, [])
        if not isinstance(items, list):
            self.problem(key, f"expected a list of tables ([[{self.where(key)}]]), got {items!r}")
            return []
        return [(item, f"{self.where(key)}[{index}]") for index, item in enumerate(items)]


def _fields(cls: type, *excluded: str) -> tuple[str, ...]:
    return tuple(item.name for item in dataclasses.fields(cls) if item.name not in excluded)


# --- queues ---------------------------------------------------------------------------------

_positive = _number(0, inclusive=False)
_non_negative = _number(0, inclusive=True)

_QUEUE_VALUES: Mapping[str, Callable[[object], Any]] = {
    "skills": _requirement,
    "strategy": _choice(Strategy),
    "weight": _positive,
    "ring_timeout": _positive,
    "wrap_up_seconds": _non_negative,
    "max_waiting": _optional(_integer(0)),  # 0 refuses every call (queue_full)
    "max_wait_seconds": _optional(_positive),
    "ewt_limit_seconds": _optional(_positive),
    "announce_first_after": _optional(_non_negative),
    "announce_every": _optional(_positive),
    "service_level_seconds": _positive,
    "short_abandon_seconds": _non_negative,
    "initial_aht_seconds": _positive,
    "survey_flow": _text,
    "calendar": _optional(_calendar),
}
# A call to a closed queue never joined it: it can only be told, or sent on.
_CLOSED_KINDS = (DispositionKind.MESSAGE_HANGUP, DispositionKind.VOICEMAIL, DispositionKind.EXTERNAL)
_CALLBACK_VALUES: Mapping[str, Callable[[object], Any]] = {
    "retry_after_busy": _positive, "retry_after_no_answer": _positive, "retry_after_failed": _positive,
    "max_attempts": _integer(1),
}
_STEP_VALUES: Mapping[str, Callable[[object], Any]] = {
    "after_seconds": _positive, "lower_thresholds": _skill_levels,
    "add_skills": lambda value: value if value == "" else _requirement(value), "add_queues": _text_list,
}


def _queue(name: str, body: object, path: str, problems: list[str]) -> QueueSettings | None:
    found_before = len(problems)
    table = _Table(body, path, problems, _fields(QueueSettings, "name"))
    values = table.read_all(_QUEUE_VALUES, required=("skills",))
    for key in ("final_action", "closed_action"):
        if key in table.values:
            values[key] = _final_action(table.child(key, _fields(Disposition)))
    if "closed_action" in values and values["closed_action"].kind not in _CLOSED_KINDS:
        table.problem("closed_action", f"kind: expected one of {', '.join(_CLOSED_KINDS)}, "
                                       f"got {values['closed_action'].kind.value!r}")
    if "callback" in table.values:
        callback = table.child("callback", _fields(CallbackPolicy))
        values["callback"] = CallbackPolicy(**callback.read_all(_CALLBACK_VALUES))
    values["overflow"] = tuple(_overflow_step(_Table(step, step_path, problems, _fields(OverflowStep)))
                               for step, step_path in table.table_list("overflow"))
    if len(problems) > found_before:
        return None
    queue = QueueSettings(name=name, **values)
    _check_overflow_order(queue, path, problems)
    return queue


def _final_action(table: _Table) -> Disposition:
    values = table.read_all({"kind": _choice(DispositionKind), "target": _text}, required=("kind",))
    if values.get("kind") in _NEEDS_TARGET and not values.get("target"):
        table.problem("target", f"missing (required by kind {values['kind'].value})")
    return Disposition(**values) if "kind" in values else Disposition(DispositionKind.MESSAGE_HANGUP)


def _overflow_step(table: _Table) -> OverflowStep:
    values = table.read_all(_STEP_VALUES, required=("after_seconds",))
    return OverflowStep(**{"after_seconds": 0.0, **values})


def _check_overflow_order(queue: QueueSettings, path: str, problems: list[str]) -> None:
    """Steps expire in order, and a step lowers only thresholds the queue has (else: a typo)."""
    required = _skill_names(parse_skills(queue.skills))
    previous = 0.0
    for index, step in enumerate(queue.overflow):
        where = f"{path}.overflow[{index}]"
        if step.after_seconds <= previous:
            problems.append(f"{where}.after_seconds: expected more than {previous:g} (the step before), "
                            f"got {step.after_seconds:g}")
        previous = step.after_seconds
        for skill in step.lower_thresholds.keys() - required:
            problems.append(f"{where}.lower_thresholds.{_key(skill)}: not a skill of the queue's "
                            f"requirement {queue.skills!r}")


def _skill_names(expression: SkillExpr) -> set[str]:
    if isinstance(expression, AtLeast):
        return {expression.skill}
    return set().union(*(_skill_names(term) for term in expression.terms))


def _check_queue_references(queues: Sequence[QueueSettings], problems: list[str]) -> None:
    names = {queue.name for queue in queues}
    for queue in queues:
        path = f"queues.{_key(queue.name)}"
        for index, step in enumerate(queue.overflow):
            for unknown in [name for name in step.add_queues if name not in names]:
                problems.append(f"{path}.overflow[{index}].add_queues: no queue named {unknown!r}")
        action = queue.final_action
        if action.kind is DispositionKind.QUEUE and action.target not in names:
            problems.append(f"{path}.final_action.target: no queue named {action.target!r}")


# --- agents ---------------------------------------------------------------------------------

_AGENT_VALUES: Mapping[str, Callable[[object], Any]] = {
    "name": _non_empty_text, "interface": _interface, "device": _text, "skills": _skill_levels,
}


def _agent(agent_id: str, body: object, path: str, problems: list[str]) -> AgentDefinition | None:
    table = _Table(body, path, problems, _fields(AgentDefinition, "agent_id"))
    values = table.read_all(_AGENT_VALUES, required=("name", "interface"))
    if not {"name", "interface"} <= values.keys():
        return None
    return AgentDefinition(agent_id=agent_id, **values)


def _check_interfaces_unique(agents: Sequence[AgentDefinition], problems: list[str]) -> None:
    """One interface rings one phone: two agents on it would both be offered its calls."""
    owner: dict[str, str] = {}
    for agent in agents:
        first = owner.setdefault(agent.interface, agent.agent_id)
        if first != agent.agent_id:
            problems.append(f"agents.{_key(agent.agent_id)}.interface: {agent.interface!r} is also the "
                            f"interface of agent {first!r}")
