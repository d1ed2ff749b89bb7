"""A durable, append-only spool of JSON documents on local disk.

The interaction logger writes here while PostgreSQL is unreachable and replays the file, in
order, when it is back. Each line is one JSON object carrying a CRC-32 of its record's exact
bytes::

    {"crc32":"1c291ca3","record":{...}}

A crash can leave the last line half-written. It was never acknowledged (the fsync did not
return), so it is cut off when the spool is opened, before anything is appended after it; a
damaged line elsewhere is skipped and logged when read. Blocking I/O: call from a thread.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import structlog

log = structlog.get_logger(__name__)

_HEAD = b'{"crc32":"'
_MIDDLE = b'","record":'
_RECORD_START = len(_HEAD) + 8 + len(_MIDDLE)
_TAIL_SEARCH_BLOCK = 64 * 1024


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cut_torn_tail()

    def pending(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def append(self, documents: Sequence[dict[str, Any]]) -> None:
        """Add documents and return only once they are on disk."""
        created = not self.path.exists()
        with open(self.path, "ab") as spool:
            spool.write(b"".join(_encode(document) for document in documents))
            spool.flush()
            os.fsync(spool.fileno())
        if created:
            _fsync_directory(self.path.parent)

    def batches(self, size: int) -> Iterator[list[dict[str, Any]]]:
        """The intact documents in the order they were appended, ``size`` at a time."""
        if not self.path.exists():
            return
        batch = []
        with open(self.path, "rb") as spool:
            for line_number, line in enumerate(spool, start=1):
                document = _decode(line)
                if document is None:
                    log.warning("spool.damaged_line_skipped", path=str(self.path), line=line_number)
                    continue
                batch.append(document)
                if len(batch) == size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def clear(self) -> None:
        """Forget everything: called once every document has reached its destination."""
        with open(self.path, "r+b") as spool:
            spool.truncate(0)
            os.fsync(spool.fileno())

    def _cut_torn_tail(self) -> None:
        if not self.pending():
            return
        with open(self.path, "r+b") as spool:
            size = spool.seek(0, os.SEEK_END)
            keep = _end_of_last_line(spool, size)
            if keep < size:
                spool.truncate(keep)
                os.fsync(spool.fileno())
                log.warning("spool.torn_tail_dropped", path=str(self.path), bytes=size - keep)


def _encode(document: dict[str, Any]) -> bytes:
    # default=str: a value JSON has no type for is kept as its text rather than failing the batch.
    record = orjson.dumps(document, default=str)
    return b"%s%08x%s%s}\n" % (_HEAD, zlib.crc32(record), _MIDDLE, record)


def _decode(line: bytes) -> dict[str, Any] | None:
    """The record of an intact line, else None."""
    if not (line.startswith(_HEAD) and line.endswith(b"}\n") and line[len(_HEAD) + 8:_RECORD_START] == _MIDDLE):
        return None
    record = line[_RECORD_START:-2]
    try:
        if int(line[len(_HEAD):len(_HEAD) + 8], 16) != zlib.crc32(record):
            return None
        return orjson.loads(record)
    except (ValueError, orjson.JSONDecodeError):
        return None


def _end_of_last_line(spool, size: int) -> int:
    """Offset just past the file's last newline (0 when there is none)."""
    position = size
    while position > 0:
        start = max(0, position - _TAIL_SEARCH_BLOCK)
        spool.seek(start)
        newline = spool.read(position - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


def _fsync_directory(directory: Path) -> None:
    # A new file's name is durable only once its directory is synced.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
