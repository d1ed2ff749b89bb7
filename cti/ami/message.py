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

    def __init__(self, headers: Iterable[tuple[str, str]], output: Iterable[str] = ()) -> None:
        pairs = list(headers)
        self.names: list[str] = [name for name, _ in pairs]
        self.values: list[str] = [value for _, value in pairs]
        # Lines of command output (Response: Follows / Output: headers), in order.
        self.output: list[str] = list(output)
        self._headers: list[tuple[str, str]] | None = pairs
        self._index: dict[str, str] | None = None

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

    def _build_index(self) -> dict[str, str]:
        # Built lazily: most events are read for a handful of headers, many never at all. Built
        # from the end, so that the first of repeated headers is the one that stays.
        self._index = dict(zip(map(str.lower, reversed(self.names)), reversed(self.values)))
        return self._index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), or ``default``."""
        index = self._index if self._index is not None else self._build_index()
        return index.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in arrival order."""
        wanted = name.lower()
        return [value for key, value in zip(self.names, self.values) if key.lower() == wanted]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        index = self._index if self._index is not None else self._build_index()
        return isinstance(name, str) and name.lower() in index

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
