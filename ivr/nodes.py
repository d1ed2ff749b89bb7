"""The node kinds of a flow file, read from TOML into frozen dataclasses.

Each ``kind`` in a file has a reader here that checks its keys and builds its node; the
behaviour of each node lives in ``ivr.engine``. ``confirm`` is read into a ``MenuNode`` with a
read-back, and ``rating`` into a ``CollectNode`` that records a score: the engine runs them as
the menu and collect nodes they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from ivr.actions import DTMF_KEYS
from ivr.calendar import BusinessCalendar
from ivr.reader import REQUIRED, KeyPath, Report, Required, TableReader
from ivr.result import OutcomeKind
from ivr.say import CURRENCIES

LOOKUP_KINDS = ("customer_by_account", "balance", "status", "validate_account")
SAY_AS = ("number", "digits", "money", "date")
DEFAULT_TIMEOUT_MS = 5000
DEFAULT_RETRIES = 2
DEFAULT_INVALID_PROMPTS = (("pm-invalid-option", "please-try-again"),)
DEFAULT_TIMEOUT_PROMPTS = (("please-try-again",),)


class Failure(StrEnum):
    INVALID = "invalid"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class RetryPolicy:
    """How many more tries a question gets, what is played before each, and where to go after.

    Prompt lists are per retry; when there are fewer lists than retries the last one repeats.
    An empty ``fallback`` means the flow's operator queue.
    """

    retries: int
    invalid_prompts: tuple[tuple[str, ...], ...]
    timeout_prompts: tuple[tuple[str, ...], ...]
    fallback: str

    def prompts_before_retry(self, failure: Failure, retry_number: int) -> tuple[str, ...]:
        per_retry = self.invalid_prompts if failure is Failure.INVALID else self.timeout_prompts
        return per_retry[min(retry_number, len(per_retry)) - 1] if per_retry else ()


# -- tests a condition branch can make ------------------------------------------------------

ValueOf = Callable[[str], object]  # a value's name -> its value, None when unset


@dataclass(frozen=True)
class CalendarOpen:
    calendar: BusinessCalendar

    def holds(self, now: datetime, value_of: ValueOf) -> bool:
        return self.calendar.is_open(now)


@dataclass(frozen=True)
class OnHoliday:
    calendar: BusinessCalendar

    def holds(self, now: datetime, value_of: ValueOf) -> bool:
        return self.calendar.is_holiday(now)


@dataclass(frozen=True)
class ValueIn:
    name: str
    allowed: frozenset[str]

    def holds(self, now: datetime, value_of: ValueOf) -> bool:
        value = value_of(self.name)
        return value is not None and str(value) in self.allowed


@dataclass(frozen=True)
class ValueMatches:
    name: str
    pattern: re.Pattern[str]

    def holds(self, now: datetime, value_of: ValueOf) -> bool:
        value = value_of(self.name)
        return value is not None and self.pattern.fullmatch(str(value)) is not None


@dataclass(frozen=True)
class ValuePresent:
    name: str
    present: bool

    def holds(self, now: datetime, value_of: ValueOf) -> bool:
        return (value_of(self.name) not in (None, "")) == self.present


Test = CalendarOpen | OnHoliday | ValueIn | ValueMatches | ValuePresent


@dataclass(frozen=True)
class Branch:
    tests: tuple[Test, ...]  # all must hold
    target: str


# -- checks a collected entry must pass -----------------------------------------------------

@dataclass(frozen=True)
class MatchesPattern:
    pattern: re.Pattern[str]

    def accepts(self, digits: str) -> bool:
        return self.pattern.fullmatch(digits) is not None


@dataclass(frozen=True)
class PassesLuhn:
    """The mod-10 check digit of card and many account numbers."""

    def accepts(self, digits: str) -> bool:
        if not digits.isdigit():
            return False
        total = 0
        for position, digit in enumerate(int(d) for d in reversed(digits)):
            doubled = digit * 2 if position % 2 else digit
            total += doubled - 9 if doubled > 9 else doubled
        return total % 10 == 0


@dataclass(frozen=True)
class WithinScale:
    lowest: int
    highest: int

    def accepts(self, digits: str) -> bool:
        return digits.isdigit() and self.lowest <= int(digits) <= self.highest


Check = MatchesPattern | PassesLuhn | WithinScale


# -- nodes ----------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Node:
    id: str
    kind: str  # as written in the file
    # False when the engine passes through the node without waiting for the caller, so a
    # loop made only of such nodes would spin.
    waits_for_caller: ClassVar[bool] = False

    @property
    def label(self) -> str:
        return f"{self.kind} '{self.id}'"


@dataclass(frozen=True, kw_only=True)
class PlayNode(Node):
    prompts: tuple[str, ...]
    barge_in: bool
    next: str


@dataclass(frozen=True)
class Readback:
    value: str  # the name of the value read back, digit by digit
    prompts: tuple[str, ...]  # played before it


@dataclass(frozen=True, kw_only=True)
class MenuNode(Node):
    waits_for_caller: ClassVar[bool] = True
    # One key per answer, like the collect node's fields of the same names.
    min_len: ClassVar[int] = 1
    max_len: ClassVar[int] = 1
    terminator: ClassVar[str] = ""
    prompts: tuple[str, ...]
    options: Mapping[str, str]  # digit -> node
    default: str  # node for any other digit, "" to count it invalid
    timeout_ms: int
    barge_in: bool
    retry: RetryPolicy
    readback: Readback | None = None


@dataclass(frozen=True, kw_only=True)
class CollectNode(Node):
    waits_for_caller: ClassVar[bool] = True
    prompts: tuple[str, ...]
    store: str
    min_len: int
    max_len: int
    terminator: str
    timeout_ms: int
    barge_in: bool
    checks: tuple[Check, ...]
    verify_with: str  # a lookup kind the CRM must answer "found" to, or ""
    is_score: bool  # kept in result.scores as an integer rather than in values
    next: str
    retry: RetryPolicy


@dataclass(frozen=True, kw_only=True)
class ConditionNode(Node):
    branches: tuple[Branch, ...]  # the first that holds wins
    otherwise: str


@dataclass(frozen=True, kw_only=True)
class SetNode(Node):
    values: Mapping[str, object]
    next: str


@dataclass(frozen=True, kw_only=True)
class LookupNode(Node):
    lookup: str
    key: str  # the name of the value to look up
    next: str
    not_found: str


@dataclass(frozen=True, kw_only=True)
class SayNode(Node):
    prompts: tuple[str, ...]
    say_as: str
    value: str
    currency: str
    after: tuple[str, ...]
    next: str


@dataclass(frozen=True, kw_only=True)
class QueueNode(Node):
    prompts: tuple[str, ...]
    queue: str
    skills: tuple[str, ...]
    priority: int


@dataclass(frozen=True, kw_only=True)
class VoicemailNode(Node):
    prompts: tuple[str, ...]
    mailbox: str


@dataclass(frozen=True, kw_only=True)
class CallbackNode(Node):
    prompts: tuple[str, ...]
    number_from: str  # the name of the value holding the number to call back


@dataclass(frozen=True, kw_only=True)
class TransferNode(Node):
    prompts: tuple[str, ...]
    number: str


@dataclass(frozen=True, kw_only=True)
class HangupNode(Node):
    prompts: tuple[str, ...]
    outcome: OutcomeKind


@dataclass(frozen=True, kw_only=True)
class GotoNode(Node):
    target: str


@dataclass(frozen=True, kw_only=True)
class SubflowNode(Node):
    waits_for_caller: ClassVar[bool] = True  # conservatively: the called flow is checked on its own
    flow: str
    next: str


@dataclass(frozen=True, kw_only=True)
class ReturnNode(Node):
    pass


# -- reading --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    """A node naming another node of its flow, kept to check it exists and to walk the graph."""

    source: str
    target: str
    path: KeyPath  # where the name is written, for the line number
    label: str  # "menu 'main': option 1"


class NodeReader(TableReader):
    """A node's table, with what its kind reader needs beyond typed values."""

    def __init__(self, node_id: str, kind: str, table: Mapping[str, object], report: Report, defaults: TableReader,
                 calendars: Mapping[str, BusinessCalendar]) -> None:
        super().__init__(table, ("nodes", node_id), report, f"{kind} '{node_id}'", inherited=defaults)
        self.node_id = node_id
        self.kind = kind
        self.calendars = calendars
        self.references: list[Reference] = []
        self.subflows: list[tuple[str, KeyPath]] = []

    def common(self) -> dict[str, str]:
        return {"id": self.node_id, "kind": self.kind}

    def target(self, key: str, default: str | Required = REQUIRED) -> str:
        """A node name under ``key``; the default "" means none."""
        name = self.text(key, default)
        self.refer(name, self.location(key), key)
        return name

    def refer(self, name: str, where: KeyPath, what: str) -> None:
        """Records that this node names node ``name`` at ``where``, the full key path."""
        if name:
            self.references.append(Reference(self.node_id, name, where, f"{self.label}: {what}"))

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            retries=self.integer("retries", DEFAULT_RETRIES, minimum=0),
            invalid_prompts=self._prompts_per_retry("invalid_prompts", DEFAULT_INVALID_PROMPTS),
            timeout_prompts=self._prompts_per_retry("timeout_prompts", DEFAULT_TIMEOUT_PROMPTS),
            fallback=self.target("fallback", ""),
        )

    def _prompts_per_retry(self, key: str, default: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        """One list of prompts for every retry, or a list of lists, one per retry."""
        value = self._get(key, default, _is_prompts_per_retry, "a list of prompts, or a list of such lists")
        if value is None or value is default:
            return default
        if isinstance(value, str):
            return ((value,),)
        if value and all(isinstance(item, list) for item in value):
            return tuple(tuple(prompts) for prompts in value)
        return (tuple(value),)


def _is_prompts_per_retry(value: object) -> bool:
    def is_prompt_list(item: object) -> bool:
        return isinstance(item, list) and all(isinstance(prompt, str) for prompt in item)
    return isinstance(value, str) or is_prompt_list(value) or (
        isinstance(value, list) and all(is_prompt_list(item) for item in value))


def _read_play(r: NodeReader) -> PlayNode:
    return PlayNode(**r.common(), prompts=r.text_list("prompts"), barge_in=r.boolean("barge_in", False),
                    next=r.target("next"))


def _read_menu(r: NodeReader) -> MenuNode:
    options = r.mapping("options")
    for digit, target in options.items():
        if len(digit) != 1 or digit not in DTMF_KEYS:
            r.error(("options", digit), f"option '{digit}' is not one key of {DTMF_KEYS}")
        if isinstance(target, str):
            r.refer(target, (*r.path, "options", digit), f"option {digit}")
        else:
            r.error(("options", digit), f"option {digit} must name a node, got {target!r}")
    menu = MenuNode(**r.common(), prompts=r.text_list("prompts"), options=dict(options),
                    default=r.target("default", ""), timeout_ms=_timeout(r), barge_in=r.boolean("barge_in", True),
                    retry=r.retry_policy())
    _warn_of_skipped_digit(r, menu)
    return menu


def _warn_of_skipped_digit(r: NodeReader, menu: MenuNode) -> None:
    """Options 1, 2, 4 usually mean option 3 was deleted and the prompt still offers it."""
    numbered = sorted(int(digit) for digit in menu.options if len(digit) == 1 and digit in "123456789")
    skipped = sorted(set(range(numbered[0], numbered[-1] + 1)) - set(numbered)) if numbered else []
    if skipped and not menu.default:
        r.report.warning((*r.path, "options"), f"{r.label} has no option for digit {skipped[0]} and no default")


def _read_confirm(r: NodeReader) -> MenuNode:
    readback = Readback(value=r.text("value"), prompts=r.text_list("prompts", ("you-entered",)))
    options = {"1": r.target("yes"), "2": r.target("no")}
    return MenuNode(**r.common(), prompts=r.text_list("question", ("if-correct-press", "digits/1")),
                    options=options, default="", timeout_ms=_timeout(r), barge_in=r.boolean("barge_in", True),
                    retry=r.retry_policy(), readback=readback)


def _read_collect(r: NodeReader) -> CollectNode:
    min_len = r.integer("min_len", 1, minimum=1)
    max_len = r.integer("max_len", 20, minimum=1)
    if min_len > max_len:
        r.error("min_len", f"min_len {min_len} is more than max_len {max_len}")
    terminator = r.text("terminator", "#")
    if terminator not in ("", "#", "*"):
        r.error("terminator", f"terminator must be '#', '*' or '', got '{terminator}'")
    checks: list[Check] = []
    if r.has("pattern") and (pattern := _regex(r, "pattern")):
        checks.append(MatchesPattern(pattern))
    if r.boolean("luhn", False):
        checks.append(PassesLuhn())
    return CollectNode(**r.common(), prompts=r.text_list("prompts"), store=r.text("store"), min_len=min_len,
                       max_len=max_len, terminator=terminator, timeout_ms=_timeout(r),
                       barge_in=r.boolean("barge_in", True), checks=tuple(checks), verify_with=_lookup_kind(r, ""),
                       is_score=False, next=r.target("next"), retry=r.retry_policy())


def _read_rating(r: NodeReader) -> CollectNode:
    """A survey question: one key on a scale, kept as a score."""
    lowest = r.integer("lowest", 1, minimum=0, maximum=9)
    highest = r.integer("highest", 5, minimum=0, maximum=9)
    if lowest >= highest:
        r.error("lowest", f"lowest {lowest} must be below highest {highest}")
    return CollectNode(**r.common(), prompts=r.text_list("prompts"), store=r.text("store"), min_len=1,
                       max_len=1, terminator="", timeout_ms=_timeout(r), barge_in=r.boolean("barge_in", True),
                       checks=(WithinScale(lowest, highest),), verify_with="", is_score=True,
                       next=r.target("next"), retry=r.retry_policy())


def _regex(r: TableReader, key: str) -> re.Pattern[str] | None:
    text = r.text(key)
    try:
        return re.compile(text)
    except re.error as error:
        r.error(key, f"bad regular expression '{text}': {error}")
        return None


def _timeout(r: NodeReader) -> int:
    return r.integer("timeout_ms", DEFAULT_TIMEOUT_MS, minimum=1)


def _lookup_kind(r: NodeReader, default: str | Required = REQUIRED) -> str:
    kind = r.text("lookup", default)
    if kind and kind not in LOOKUP_KINDS:
        r.error("lookup", f"unknown lookup '{kind}'; known: {', '.join(LOOKUP_KINDS)}")
    return kind


def _read_condition(r: NodeReader) -> ConditionNode:
    branches = tuple(
        _read_branch(r, TableReader(raw, (*r.path, "branches", index), r.report, f"{r.label} branch {index + 1}"))
        for index, raw in enumerate(r.table_list("branches")))
    if not branches:
        r.report.error((*r.path, "branches"), f"{r.label} has no branches")
    return ConditionNode(**r.common(), branches=branches, otherwise=r.target("else"))


_VALUE_TESTS = ("equals", "one_of", "matches", "present")


def _read_branch(owner: NodeReader, r: TableReader) -> Branch:
    tests: list[Test] = []
    for key in ("open", "holiday"):
        if key in r.table:
            calendar = owner.calendars.get(name := r.text(key))
            if calendar is None:
                r.error(key, f"no calendar '{name}' in this file")
            else:
                tests.append(CalendarOpen(calendar) if key == "open" else OnHoliday(calendar))
    if "tier" in r.table:
        tests.append(ValueIn("customer.tier", frozenset(r.text_list("tier"))))
    if "dnis" in r.table:
        tests.append(ValueIn("dnis", frozenset(r.text_list("dnis"))))
    if "value" in r.table:
        tests.append(_read_value_test(r))
    elif any(key in r.table for key in _VALUE_TESTS):
        r.error((), f"{', '.join(_VALUE_TESTS)} need a 'value' to test")
    if not tests:
        r.error((), "tests nothing: give open, holiday, tier, dnis or value")
    target = r.text("goto")
    owner.refer(target, (*r.path, "goto"), f"branch {r.path[-1] + 1} goto")
    r.reject_unknown_keys(known=("open", "holiday", "tier", "dnis", "value", *_VALUE_TESTS, "goto"))
    return Branch(tuple(tests), target)


def _read_value_test(r: TableReader) -> Test:
    name = r.text("value")
    given = [key for key in _VALUE_TESTS if key in r.table]
    if len(given) != 1:
        r.error("value", f"'value' needs exactly one of {', '.join(_VALUE_TESTS)}")
        return ValuePresent(name, True)
    if given[0] in ("equals", "one_of"):
        return ValueIn(name, frozenset(r.text_list(given[0])))
    if given[0] == "matches":
        pattern = _regex(r, "matches")
        return ValueMatches(name, pattern) if pattern else ValuePresent(name, True)
    return ValuePresent(name, r.boolean("present", True))


def _read_set(r: NodeReader) -> SetNode:
    values = r.mapping("values")
    for name, value in values.items():
        if not isinstance(value, str | int | bool):
            r.error(("values", name), f"value '{name}' must be text, an integer or true/false, got {value!r}")
    return SetNode(**r.common(), values=dict(values), next=r.target("next"))


def _read_lookup(r: NodeReader) -> LookupNode:
    return LookupNode(**r.common(), lookup=_lookup_kind(r), key=r.text("key"), next=r.target("next"),
                      not_found=r.target("not_found"))


def _read_say(r: NodeReader) -> SayNode:
    say_as = r.text("as")
    if say_as and say_as not in SAY_AS:
        r.error("as", f"cannot say as '{say_as}'; choose one of {', '.join(SAY_AS)}")
    currency = r.text("currency", "USD") if say_as == "money" else ""
    if say_as == "money" and currency not in CURRENCIES:
        r.error("currency", f"no prompts for currency '{currency}'; known: {', '.join(CURRENCIES)}")
    return SayNode(**r.common(), prompts=r.text_list("prompts", ()), say_as=say_as, value=r.text("value"),
                   currency=currency, after=r.text_list("after", ()), next=r.target("next"))


def _read_queue(r: NodeReader) -> QueueNode:
    return QueueNode(**r.common(), prompts=r.text_list("prompts", ()), queue=r.text("queue"),
                     skills=r.text_list("skills", ()), priority=r.integer("priority", 0, minimum=0))


def _read_voicemail(r: NodeReader) -> VoicemailNode:
    return VoicemailNode(**r.common(), prompts=r.text_list("prompts", ()), mailbox=r.text("mailbox"))


def _read_callback(r: NodeReader) -> CallbackNode:
    return CallbackNode(**r.common(), prompts=r.text_list("prompts", ()), number_from=r.text("number_from", "ani"))


def _read_transfer(r: NodeReader) -> TransferNode:
    return TransferNode(**r.common(), prompts=r.text_list("prompts", ()), number=r.text("number"))


_HANGUP_OUTCOMES = (OutcomeKind.HANGUP, OutcomeKind.SELF_SERVICE_COMPLETED)


def _read_hangup(r: NodeReader) -> HangupNode:
    outcome = r.text("outcome", OutcomeKind.HANGUP)
    if outcome not in _HANGUP_OUTCOMES:
        r.error("outcome", f"outcome must be one of {', '.join(_HANGUP_OUTCOMES)}, got '{outcome}'")
        outcome = OutcomeKind.HANGUP
    return HangupNode(**r.common(), prompts=r.text_list("prompts", ()), outcome=OutcomeKind(outcome))


def _read_goto(r: NodeReader) -> GotoNode:
    return GotoNode(**r.common(), target=r.target("target"))


_FLOW_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def _read_subflow(r: NodeReader) -> SubflowNode:
    flow = r.text("flow")
    if flow and not _FLOW_NAME.match(flow):
        r.error("flow", f"'{flow}' is not a flow name: the file name without '.toml', in the same folder")
    elif flow:
        r.subflows.append((flow, (*r.path, "flow")))
    return SubflowNode(**r.common(), flow=flow, next=r.target("next"))


def _read_return(r: NodeReader) -> ReturnNode:
    return ReturnNode(**r.common())


NODE_READERS: Mapping[str, Callable[[NodeReader], Node]] = {
    "play": _read_play,
    "menu": _read_menu,
    "confirm": _read_confirm,
    "collect": _read_collect,
    "rating": _read_rating,
    "condition": _read_condition,
    "set": _read_set,
    "lookup": _read_lookup,
    "say": _read_say,
    "queue": _read_queue,
    "voicemail": _read_voicemail,
    "callback": _read_callback,
    "transfer": _read_transfer,
    "hangup": _read_hangup,
    "goto": _read_goto,
    "subflow": _read_subflow,
    "return": _read_return,
}
