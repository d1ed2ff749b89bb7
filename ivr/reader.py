"""Reading TOML tables with every mistake reported at its file and line.

tomllib gives values without positions, so ``SourceMap`` scans the text once for table headers
and ``key =`` lines; a problem about a nested key falls back to the closest enclosing line found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]  # TOML key path; an int indexes an array of tables

_KEY_PART = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED_KEY = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = re.compile(rf"^\s*(?P<open>\[\[?)\s*(?P<key>{_DOTTED_KEY})\s*\]\]?\s*(?:#.*)?$")
_ASSIGNMENT = re.compile(rf"^\s*(?P<key>{_DOTTED_KEY})\s*=")
_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)')


def _split_key(dotted: str) -> tuple[str, ...]:
    return tuple(next(group for group in match.groups() if group is not None)
                 for match in _PART.finditer(dotted))


class SourceMap:
    """The first line of every table header and ``key =`` in a TOML text."""

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        table: KeyPath = ()
        array_lengths: dict[KeyPath, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if header := _HEADER.match(line):
                table = _split_key(header["key"])
                for length in range(1, len(table) + 1):  # [a.b] also defines a, implicitly
                    self._lines.setdefault(table[:length], number)
                if header["open"] == "[[":
                    index = array_lengths.get(table, 0)
                    array_lengths[table] = index + 1
                    table = (*table, index)
                    self._lines[table] = number
            elif assignment := _ASSIGNMENT.match(line):
                self._lines.setdefault((*table, *_split_key(assignment["key"])), number)

    def line_of(self, path: KeyPath) -> int:
        for length in range(len(path), 0, -1):
            if path[:length] in self._lines:
                return self._lines[path[:length]]
        return 1


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {'warning: ' if self.warning else ''}{self.message}"


class Report:
    """Collects the problems of one file."""

    def __init__(self, file: str, source: SourceMap, problems: list[Problem]) -> None:
        self.file = file
        self._source = source
        self._problems = problems

    def error(self, path: KeyPath, message: str) -> None:
        self._problems.append(Problem(self.file, self._source.line_of(path), message))

    def warning(self, path: KeyPath, message: str) -> None:
        self._problems.append(Problem(self.file, self._source.line_of(path), message, warning=True))


class Required:
    """Marks a key without a default."""


REQUIRED = Required()


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # a TOML boolean is no number


def _is_text_or_text_list(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(item, str) for item in value))


def _is_table_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


class TableReader:
    """Typed reads from one table. A missing or mistyped value is reported and replaced by an
    empty one of the right type, so one pass finds every problem; callers must not build
    anything runnable from a file that has errors.

    ``inherited`` supplies keys this table lacks (a flow's ``[defaults]`` for its nodes).
    """

    def __init__(self, table: Mapping[str, object], path: KeyPath, report: Report, label: str,
                 inherited: TableReader | None = None) -> None:
        self.table = table
        self.path = path
        self.report = report
        self.label = label
        self._inherited = inherited
        self._read: set[str] = set()

    def error(self, key: str | KeyPath, message: str) -> None:
        """A problem about ``key``, or about a path below this table."""
        path = self.location(key) if isinstance(key, str) else (*self.path, *key)
        self.report.error(path, f"{self.label}: {message}")

    def location(self, key: str) -> KeyPath:
        """Where the value of ``key`` is written: in this table, or in the one it inherits from."""
        return self._inherited.location(key) if self._inherits(key) else (*self.path, key)

    def has(self, key: str) -> bool:
        return key in self.table or self._inherits(key)

    def _inherits(self, key: str) -> bool:
        return key not in self.table and self._inherited is not None and self._inherited.has(key)

    def _get(self, key: str, default: object, accepts: Callable[[object], bool], description: str) -> object:
        """The value, the default when absent, or None once a problem is reported."""
        if self._inherits(key):
            return self._inherited._get(key, default, accepts, description)
        self._read.add(key)
        if key not in self.table:
            if isinstance(default, Required):
                self.error((), f"missing '{key}'")
                return None
            return default
        value = self.table[key]
        if not accepts(value):
            self.error(key, f"'{key}' must be {description}, got {value!r}")
            return None
        return value

    def text(self, key: str, default: str | Required = REQUIRED) -> str:
        value = self._get(key, default, lambda value: isinstance(value, str), "text")
        return "" if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        return bool(self._get(key, default, lambda value: isinstance(value, bool), "true or false"))

    def integer(self, key: str, default: int | Required = REQUIRED, minimum: int | None = None,
                maximum: int | None = None) -> int:
        value = self._get(key, default, _is_integer, "an integer")
        if value is None:
            return 0
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"{minimum}-{maximum}" if maximum is not None else f">= {minimum}"
            self.error(key, f"'{key}' must be {bounds}, got {value}")
        return value

    def text_list(self, key: str, default: tuple[str, ...] | Required = REQUIRED) -> tuple[str, ...]:
        """A list of strings; a single string counts as a list of one."""
        value = self._get(key, default, _is_text_or_text_list, "a list of text")
        return (value,) if isinstance(value, str) else tuple(value or ())

    def mapping(self, key: str, default: Mapping[str, object] | Required = REQUIRED) -> Mapping[str, object]:
        return self._get(key, default, lambda value: isinstance(value, dict), "a table") or {}

    def table_list(self, key: str) -> list[Mapping[str, object]]:
        return self._get(key, [], _is_table_list, "a list of tables") or []

    def child(self, key: str, label: str) -> TableReader:
        return TableReader(self.mapping(key, {}), (*self.path, key), self.report, label)

    def reject_unknown_keys(self, known: Iterable[str] | None = None) -> None:
        """Reports the keys not in ``known``, by default the keys not read so far."""
        accepted = self._read if known is None else set(known)
        for key in self.table:
            if key not in accepted:
                self.error(key, f"unknown key '{key}'")
