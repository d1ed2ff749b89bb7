"""One AMI message: an ordered list of headers, repeated names kept, looked up case-insensitively.

Asterisk is not consistent about header case (it sends ``ServicelevelPerf`` where the docs say
``ServiceLevelPerf``) and repeats headers in some events (``ChanVariable``), so a plain dict loses
information.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Message:
    __slots__ = ("headers", "output", "_index")

    def __init__(self, headers: Iterable[tuple[str, str]], output: Iterable[str] = ()) -> None:
        self.headers: list[tuple[str, str]] = list(headers)
        # Lines of command output (Response: Follows / Output: headers), in order.
        self.output: list[str] = list(output)
        self._index: dict[str, str] | None = None

    @classmethod
    def from_mapping(cls, mapping: dict[str, str]) -> Message:
        return cls(mapping.items())

    def _lookup(self) -> dict[str, str]:
        # Built lazily: most events are read for a handful of headers, many never at all.
        if self._index is None:
            index: dict[str, str] = {}
            for name, value in self.headers:
                index.setdefault(name.lower(), value)
            self._index = index
        return self._index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), or ``default``."""
        return self._lookup().get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in arrival order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.headers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.headers == other.headers and self.output == other.output

    def __repr__(self) -> str:
        return f"Message({self.headers!r}, output={self.output!r})"

    @property
    def event(self) -> str | None:
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
        for name, value in self.headers:
            result.setdefault(name, value)
        return result
