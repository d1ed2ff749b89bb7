"""One AMI message: an ordered list of headers, repeated names kept, looked up case-insensitively.

Asterisk is not consistent about header case (it sends ``ServicelevelPerf`` where the docs say
``ServiceLevelPerf``) and repeats headers in some events (``ChanVariable``), so a plain dict loses
information.

Headers are held as two parallel lists, ``names`` and ``values``: the parser cuts a message into
them with a few whole-string operations, and a (name, value) tuple per header would cost it nearly
as much again. ``headers``, the pairs, is built from them when first read. All three are the
message as received: read them, do not change them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Message:
    __slots__ = ("names", "values", "output", "_headers", "_index")
    _index: dict[str, int] | None

    def __init__(self, headers: Iterable[tuple[str, str]], output: Iterable[str] = ()) -> None:
        pairs = list(headers)
        self.names: list[str] = [name for name, _ in pairs]
        self.values: list[str] = [value for _, value in pairs]
        # Lines of command output (Response: Follows / Output: headers), in order.
        self.output: list[str] = list(output)
        self._headers: list[tuple[str, str]] | None = pairs
        self._index = None

    @classmethod
    def from_mapping(cls, mapping: dict[str, str]) -> Message:
        return cls(mapping.items())

    @classmethod
    def from_columns(cls, names: list[str], values: list[str], output: list[str]) -> Message:
        """The parser's constructor: takes the lists as they are, builds nothing more."""
        message = cls.__new__(cls)
        message.names = names
        message.values = values
        message.output = output
        message._headers = message._index = None
        return message

    @property
    def headers(self) -> list[tuple[str, str]]:
        """(name, value) pairs in arrival order."""
        if self._headers is None:
            self._headers = list(zip(self.names, self.values))
        return self._headers

    def _build_index(self) -> dict[str, int]:
        # Built lazily: most events are read for a handful of headers, many never at all.
        # Messages of one kind mostly carry the same names in the same order, so the index made
        # for one serves the next ones: found by the first header's value (an event's name, its
        # hash usually computed already by whoever dispatched on it) and one list comparison.
        names = self.names
        if not names:
            self._index = {}
            return self._index
        key = self.values[0]
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
        return self.values[position]

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
        return self.values[position]

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
    def event(self) -> str | None:
        # Asterisk writes Event first: no index needed for the header every consumer reads.
        if self.names and self.names[0] == "Event":
            return self.values[0]
        return self.get("Event")

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
