"""One AMI message: an ordered list of headers, repeated names kept, looked up case-insensitively.

Asterisk is not consistent about header case (it sends ``ServicelevelPerf`` where the docs say
``ServiceLevelPerf``) and repeats headers in some events (``ChanVariable``), so a plain dict loses
information.

Headers are held as two parallel lists, ``names`` and ``values``: one split cuts a message into
them, and a (name, value) tuple per header would cost nearly as much again. ``headers`` gives
the pairs. They are the message as received: read them, do not change them.

An event off the wire stays uncut, as its text, until something reads one of its headers. Most
of an AMI stream (VarSet, Newexten, AGIExec...) is events that no handler reads beyond their
name, and cutting some forty header strings out of each is most of the parsing. ``event``, the
name, is known without cutting. A line found bad when the message is cut is counted in the
parser's counters then (``malformed`` and ``malformed_on_read``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cti.ami.protocol import ParserCounters

# How an uncut message's text marks its line ends: ": <mark>: ", so that one split cuts all its
# lines at ": ". The mark is NUL, which Asterisk's C strings cannot hold; the parser leaves text
# holding one to the line-by-line reading.
MARK = "\x00"
LINE_END = f": {MARK}: "
_NAMES, _VALUES, _MARKS = slice(0, None, 3), slice(1, None, 3), slice(2, None, 3)


class Message:
    __slots__ = ("event", "_names", "_values", "_output", "_text", "_counters", "_index")
    event: str | None  # the Event header's value; None for responses
    _index: dict[str, int] | None

    def __init__(self, headers: Iterable[tuple[str, str]], output: Iterable[str] = ()) -> None:
        pairs = list(headers)
        self._names: list[str] = [name for name, _ in pairs]
        self._values: list[str] = [value for _, value in pairs]
        # Lines of command output (Response: Follows / Output: headers), in order.
        self._output: list[str] | None = list(output)
        self._text: str | None = None
        self._counters: ParserCounters | None = None
        self._index = None
        # Asterisk writes Event first: no index needed for the header every consumer reads.
        names = self._names
        self.event = self._values[0] if names and names[0] == "Event" else self.get("Event")

    @classmethod
    def from_mapping(cls, mapping: dict[str, str]) -> Message:
        return cls(mapping.items())

    @property
    def names(self) -> list[str]:
        if self._text is not None:
            self._cut()
        return self._names

    @property
    def values(self) -> list[str]:
        if self._text is not None:
            self._cut()
        return self._values

    @property
    def output(self) -> list[str]:
        return [] if self._output is None else self._output

    @property
    def headers(self) -> list[tuple[str, str]]:
        """(name, value) pairs in arrival order."""
        return list(zip(self.names, self.values))

    def _cut(self) -> None:
        text, self._text = self._text, None
        # A well-formed message splits into name, value, mark, name, value, ...: 3 k + 2 parts
        # for k line ends, every third a mark, no name empty.
        parts = text.split(": ")
        size = len(parts)
        if (size % 3 == 2 and parts[_MARKS].count(MARK) == size // 3
                and "" not in (names := parts[_NAMES])):
            self._names, self._values = names, parts[_VALUES]
            return
        # A value holding ": ", or a line that is no header: read it line by line.
        headers, bad_lines = header_lines(text.replace(LINE_END, "\n"))
        self._names = [name for name, _ in headers]
        self._values = [value for _, value in headers]
        if bad_lines:
            self._counters.malformed += len(bad_lines)
            self._counters.malformed_on_read += len(bad_lines)

    def _build_index(self) -> dict[str, int]:
        # Built lazily: most events are read for a handful of headers, many never at all.
        # Messages of one kind mostly carry the same names in the same order, so the index made
        # for one serves the next ones: found by the first header's value (an event's name, its
        # hash usually computed already by whoever dispatched on it) and one list comparison.
        names = self.names
        if not names:
            self._index = {}
            return self._index
        key = self._values[0]
        seen = _INDEXES.get(key)
        if seen is None:
            if len(_INDEXES) >= _KEYS_MAX:
                _INDEXES.clear()
            seen = _INDEXES[key] = []
        for seen_names, index in seen:
            if seen_names == names:
                self._index = index
                return index
        self._index = index = _new_index(names)
        seen.insert(0, (names.copy(), index))
        del seen[_VARIANTS_MAX:]
        return index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), or ``default``."""
        index = self._index if self._index is not None else self._build_index()
        position = index.get(name)
        if position is None:
            position = index.get(name.lower())  # a spelling this message does not use
            if position is None:
                return default
        return self._values[position]

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in arrival order."""
        wanted = name.lower()
        return [value for key, value in zip(self.names, self.values) if key.lower() == wanted]

    def __getitem__(self, name: str) -> str:
        # get() inlined: handlers read most headers this way, one call each matters.
        index = self._index if self._index is not None else self._build_index()
        position = index.get(name)
        if position is None:
            position = index.get(name.lower())
            if position is None:
                raise KeyError(name)
        return self._values[position]

    def __contains__(self, name: object) -> bool:
        index = self._index if self._index is not None else self._build_index()
        return isinstance(name, str) and (name in index or name.lower() in index)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self.names, self.values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.names == other.names and self.values == other.values
                and self.output == other.output)

    def __repr__(self) -> str:
        return f"Message({self.headers!r}, output={self.output!r})"

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def as_dict(self) -> dict[str, str]:
        """First value per header, original case: for logs and JSON."""
        result: dict[str, str] = {}
        for name, value in zip(self.names, self.values):
            result.setdefault(name, value)
        return result


def uncut_event(text: str, event: str, counters: ParserCounters) -> Message:
    """The parser's constructor for an event it hands over uncut: ``text`` with its line ends
    marked by LINE_END, ``event`` its first line's value."""
    message = _new_message(Message)
    message.event = event
    message._text = text
    message._counters = counters
    message._output = message._index = None
    return message


def header_lines(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The headers of a message's text read line by line, each cut at its first ": ", and the
    lines that are no header (no ": ", or no name before it)."""
    headers, bad_lines = [], []
    for line in text.split("\n"):
        name, colon, value = line.partition(": ")
        if colon and name:
            headers.append((name, value))
        else:
            bad_lines.append(line)
    return headers, bad_lines


_new_message = Message.__new__
# The indexes of the header name lists seen lately, by the first header's value ("Newchannel"),
# a few each: optional headers vary the names of one kind of event. Read them, never change them.
_INDEXES: dict[str, list[tuple[list[str], dict[str, int]]]] = {}
_KEYS_MAX = 1024  # kinds of messages; then start over
_VARIANTS_MAX = 8  # name lists per kind; then the least recently made goes


def _new_index(names: list[str]) -> dict[str, int]:
    """Header name -> position of its first value, case-insensitively: under each name's
    lowercase form and under every spelling the message uses, so that a name asked for in the
    spelling Asterisk sends is found without lowering it."""
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name.lower(), position)
    for name in names:
        index.setdefault(name, index[name.lower()])
    return index
