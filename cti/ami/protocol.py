"""Sans-IO AMI: bytes in, messages out; actions out as bytes. No sockets, no asyncio.

The wire format, as Asterisk's ``main/manager.c`` writes it:

* On connect: one banner line, ``Asterisk Call Manager/<AMI version>``, with no blank line
  after it.
* Then messages: ``Name: value`` lines ending in CRLF, a blank line after the last one.
  Names repeat (``ChanVariable``, ``Output``) and their case varies.
* Command output comes in two shapes. Asterisk 14.2 and later (22 included) answer the
  Command action with ``Response: Success`` and one ``Output: <line>`` header per line.
  Older versions answer ``Response: Follows``, ``Privilege: Command``, ``ActionID``, then the
  raw output (bare LF, blank lines possible, the last line may lack its LF) and
  ``--END COMMAND--`` followed by the blank line. Both land in ``Message.output``.

Peers typed by hand end lines with a bare LF; that is accepted everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from cti.ami.message import LINE_END, MARK, Message, header_lines, uncut_event

MAX_MESSAGE_BYTES = 1 << 20

_FOLLOWS = b"Response: Follows\n"
_FOLLOWS_TEXT = _FOLLOWS.decode()
# Where a legacy command response can start in a region: after a blank line (and maybe more LFs),
# or at the region's start (after maybe one LF left of a run of them; two are a blank line). The
# longer needle is found faster than _FOLLOWS alone, and every read pays for one search.
_FOLLOWS_AFTER_BLANK = b"\n\n" + _FOLLOWS
_FOLLOWS_AT_START = (_FOLLOWS, b"\n" + _FOLLOWS)
_END_COMMAND = b"--END COMMAND--"
_END_COMMAND_TEXT = _END_COMMAND.decode()
# The headers Asterisk writes before the raw output of a legacy command response.
_COMMAND_HEADERS = frozenset({"Privilege", "ActionID"})
_BANNER_MARK = b"Call Manager/"
_LF = ord("\n")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII but colon and space
_LINE_BREAKERS = re.compile(r"[\r\n]")
_SHOWN_CHARS = 80  # how much of a bad line an error record quotes
# Messages are cut with their line ends marked (message.LINE_END); text holding the mark, NUL,
# is read line by line.
_BLANK_LINE = LINE_END * 2
_MARK_BYTE = MARK.encode()
_LINE_END_BYTES = LINE_END.encode()
_EVENT_LINE = "Event: "


@dataclass(slots=True)
class Banner:
    """The greeting line, e.g. ``Asterisk Call Manager/9.0.0``."""

    text: str

    @property
    def version(self) -> str:
        return self.text.partition("/")[2]


@dataclass(slots=True)
class ProtocolError:
    """Something the peer sent that the parser skipped; parsing went on after it."""

    kind: Literal["malformed", "oversized", "decode_error"]
    reason: str


Event = Message | Banner | ProtocolError


@dataclass(slots=True)
class ParserCounters:
    messages: int = 0
    malformed: int = 0  # header lines without "Name: value", wherever found
    malformed_on_read: int = 0  # of those, found in an event cut when first read (message.py)
    oversized: int = 0  # messages dropped for exceeding max_message_bytes
    decode_errors: int = 0  # messages with bytes that are not UTF-8


class AmiParser:
    """The client side of one AMI connection at a time: feed it bytes, get events back.

    Messages are cut on their blank line before they are decoded, so a UTF-8 character split
    across two reads decodes as if it came in one: any split of the stream gives the same
    events. Nothing raises: what cannot be parsed becomes a ProtocolError and is counted.
    """

    def __init__(self, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self.counters = ParserCounters()
        self._buffer = bytearray()  # what came and is not parsed yet, without its CRs
        self._awaiting_banner = True
        self._skip_to: bytes | None = None  # set while dropping the rest of an oversized message

    def reset(self) -> None:
        """Forget the last connection's bytes before a new one; the counters go on."""
        self._buffer.clear()
        self._awaiting_banner = True
        self._skip_to = None

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        # No terminator can hide in bytes already searched, except one closed by the new data.
        search_from = max(len(self._buffer) - 1, 0)
        # CR means nothing in AMI: Asterisk ends lines with CRLF, peers typed by hand with LF,
        # and no value holds a CR (action() refuses one). Dropping them all costs a fifth of
        # folding CRLF to LF, and leaves nothing to carry over between reads.
        self._buffer += data.replace(b"\r", b"")
        if self._awaiting_banner:
            if not self._take_banner(events):
                return events
            search_from = 0
        if self._skip_to is not None:
            if not self._skip_oversized():
                return events
            search_from = 0
        end = self._buffer.rfind(b"\n\n", search_from)
        if end >= 0:
            end = _start_of_lf_run(self._buffer, end)
            region = bytes(self._buffer[:end])
            del self._buffer[:end + 2]
            unfinished = self._parse_region(region, events)
            if unfinished:  # a legacy command output whose end has not come yet
                self._buffer[:0] = unfinished + b"\n\n"
        if self._holds_oversized():
            self._start_skipping(events)
        return events

    def _holds_oversized(self) -> bool:
        # The buffer holds the start of one message, maybe after a blank line and before the
        # first LF of the blank line that will end it: neither LF is part of the message.
        limit = self.max_message_bytes + 1
        return len(self._buffer) > limit and len(self._buffer.lstrip(b"\n")) > limit

    def _take_banner(self, events: list[Event]) -> bool:
        """Consume the banner if the stream starts with one; False while its line is partial."""
        line_end = self._buffer.find(b"\n")
        if line_end < 0 and len(self._buffer) <= self.max_message_bytes:
            return False
        self._awaiting_banner = False
        if line_end < 0 or line_end > self.max_message_bytes:
            return True  # too long for a banner: it is parsed (and dropped) as a message
        line = bytes(self._buffer[:line_end])
        if _BANNER_MARK in line and b": " not in line:
            del self._buffer[:line_end + 1]
            events.append(Banner(self._decode(line, events)))
        return True

    def _start_skipping(self, events: list[Event]) -> None:
        # Blank lines before the message go first: they would pass for its end.
        del self._buffer[:len(self._buffer) - len(self._buffer.lstrip(b"\n"))]
        # A legacy command output may hold blank lines: only its end marker ends it.
        follows = self._buffer.startswith(_FOLLOWS)
        self._skip_to = _END_COMMAND + b"\n\n" if follows else b"\n\n"
        self._skip_oversized()  # trims the buffer: its end marker is not in it yet
        self.counters.oversized += 1
        events.append(ProtocolError(
            "oversized", f"message larger than {self.max_message_bytes} bytes dropped"))

    def _skip_oversized(self) -> bool:
        """Drop bytes up to the end of the oversized message; True once it has ended."""
        marker = self._skip_to
        end = self._buffer.find(marker)
        if end < 0:
            del self._buffer[:-(len(marker) - 1)]  # keep what may be a split marker's start
            return False
        del self._buffer[:end + len(marker)]
        self._skip_to = None
        return True

    def _parse_region(self, region: bytes, events: list[Event]) -> bytes:
        """Parse complete messages; return an unfinished legacy command response, if any."""
        if (_FOLLOWS_AFTER_BLANK in region or region.startswith(_FOLLOWS_AT_START)
                or len(region) > self.max_message_bytes):
            return self._parse_blocks(region, events)
        cuttable = _MARK_BYTE not in region  # else the mark would pass for a line end
        try:
            # One decode for all the messages of a read: the region ends on a message boundary,
            # so this decodes exactly as message by message would, only faster. Line ends are
            # marked before it, where that costs a third less: LF is never part of a multi-byte
            # UTF-8 character, so the decode is the same.
            text = (region.replace(b"\n", _LINE_END_BYTES) if cuttable else region).decode()
        except UnicodeDecodeError:
            return self._parse_blocks(region, events)
        if cuttable:
            self._cut_messages(text, events)
        else:  # cut line by line
            for block in text.split("\n\n"):
                self._take_message(block, events)
        return b""

    def _cut_messages(self, text: str, events: list[Event]) -> None:
        """Cut ``text``, its line ends turned into LINE_END, into messages. An event whose first
        line is a clean ``Event: <name>`` goes out uncut (Message cuts it when first read); any
        other block (a response, blank lines, a first line that is no header) is read now, line
        by line."""
        cut, append, counters, start = 0, events.append, self.counters, len(_EVENT_LINE)
        for block in text.split(_BLANK_LINE):
            if block.startswith(_EVENT_LINE):
                end = block.find(": ", start)  # the first line's end, unless its value holds ": "
                if end < 0 or block.startswith(LINE_END, end):
                    append(uncut_event(block, block[start:end] if end >= 0 else block[start:],
                                       counters))
                    cut += 1
                    continue
            self._take_message(block.replace(LINE_END, "\n"), events)
        counters.messages += cut

    def _parse_blocks(self, region: bytes, events: list[Event]) -> bytes:
        """The careful path: legacy command output, oversized or undecodable messages."""
        blocks = iter(region.split(b"\n\n"))
        for block in blocks:
            if block.lstrip(b"\n").startswith(_FOLLOWS) and not block.endswith(_END_COMMAND):
                block = _join_command_output(block, blocks)
                if not block.endswith(_END_COMMAND):
                    return block
            block = block.strip(b"\n")  # blank lines around a message are not part of it
            if len(block) > self.max_message_bytes:
                self.counters.oversized += 1
                events.append(ProtocolError(
                    "oversized", f"message of {len(block)} bytes dropped"))
            else:
                self._take_message(self._decode(block, events), events)
        return b""

    def _decode(self, raw: bytes, events: list[Event]) -> str:
        try:
            return raw.decode()
        except UnicodeDecodeError as error:
            self.counters.decode_errors += 1
            events.append(ProtocolError("decode_error", f"not UTF-8 ({error.reason}), replaced"))
            return raw.decode(errors="replace")

    def _take_message(self, text: str, events: list[Event]) -> None:
        text = text.strip("\n")  # blank lines beyond the one that ends a message
        if not text:
            return
        if text.startswith(_FOLLOWS_TEXT):
            message = _legacy_command_response(text)
        else:
            headers = self._headers(text, events)
            if not headers:
                return
            output = _command_output(headers) if headers[0][0] == "Response" else ()
            message = Message(headers, output)
        self.counters.messages += 1
        events.append(message)

    def _headers(self, text: str, events: list[Event]) -> list[tuple[str, str]]:
        headers, bad_lines = header_lines(text)
        self.counters.malformed += len(bad_lines)
        events.extend(ProtocolError("malformed", f"not a header line: {line[:_SHOWN_CHARS]!r}")
                      for line in bad_lines)
        return headers


def _command_output(headers: list[tuple[str, str]]) -> list[str]:
    """Asterisk 14.2+ sends command output as Output headers of a response."""
    return [value for name, value in headers if name == "Output"]


def _start_of_lf_run(buffer: bytearray, index: int) -> int:
    """Where the run of LFs around ``buffer[index:index + 2]`` starts. Its first two LFs end
    the message; the others start what follows, just as ``bytes.split(b"\\n\\n")`` pairs them,
    so that where reads happen to end never changes how blank lines are counted."""
    while index > 0 and buffer[index - 1] == _LF:
        index -= 1
    return index


def _join_command_output(first: bytes, blocks: Iterator[bytes]) -> bytes:
    """Put back the blank lines a legacy command output had, up to its end marker."""
    pieces = [first]
    for block in blocks:
        pieces.append(block)
        if block.endswith(_END_COMMAND):
            break
    return b"\n\n".join(pieces)


def _legacy_command_response(text: str) -> Message:
    lines = text.split("\n")
    headers = [("Response", "Follows")]
    start = 1
    for line in lines[1:]:
        name, colon, value = line.partition(": ")
        if not colon or name not in _COMMAND_HEADERS:
            break
        headers.append((name, value))
        start += 1
    output = lines[start:]
    # The marker has a line of its own, or ends the last line when the output lacked an LF.
    last = output.pop().removesuffix(_END_COMMAND_TEXT) if output else ""
    if last:
        output.append(last)
    return Message(headers, output)


HeaderValue = str | int | float
Headers = Mapping[str, HeaderValue | Iterable[HeaderValue]] | Iterable[tuple[str, HeaderValue]]


def action(name: str, headers: Headers | None = None, action_id: str | None = None) -> bytes:
    """One action on the wire. ``headers`` is a mapping (a list or tuple value repeats its
    header: ``{"Variable": ["a=1", "b=2"]}``) or a list of (name, value) pairs.

    Raises ValueError for a CR or LF in any value: it would let the value inject headers,
    or whole actions, into the stream.
    """
    pairs = [("Action", name)]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    for header, value in header_pairs(headers or ()):
        if header.lower() == "actionid" and action_id is not None:
            raise ValueError("ActionID given twice: as a header and as action_id")
        pairs.append((header, value))
    return "".join(_header_line(header, value) for header, value in pairs).encode() + b"\r\n"


def header_pairs(headers: Headers) -> Iterator[tuple[str, HeaderValue]]:
    """(name, value) pairs of a mapping or list of headers, a list value repeating its header."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    for header, value in items:
        if isinstance(value, list | tuple):
            yield from ((header, each) for each in value)
        else:
            yield header, value


def _header_line(header: str, value: HeaderValue) -> str:
    if not _HEADER_NAME.fullmatch(header):
        raise ValueError(f"invalid AMI header name {header!r}")
    text = str(value)
    if _LINE_BREAKERS.search(text):
        raise ValueError(f"header {header}: CR or LF in the value would inject AMI headers")
    return f"{header}: {text}\r\n"
