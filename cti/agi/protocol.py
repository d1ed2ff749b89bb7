"""Sans-IO FastAGI: bytes in, events out; commands out as bytes. No sockets, no asyncio.

The wire format, as Asterisk's ``res/res_agi.c`` writes and reads it:

* On connect Asterisk sends ``agi_network: yes``, ``agi_network_script: <script>`` (what follows
  the first ``/`` of ``agi://host[:port]/script?query``, raw), then ``setup_env``'s
  ``agi_key: value`` lines (``agi_request`` first, ``agi_arg_N`` last) and a blank line.
* Each command gets one reply line, ``<code> result=<x> [(data)] [endpos=<n>]``. 510 (unknown
  command) and 511 (not permitted on a dead channel) carry text only; a 520 with usage text spans
  lines: ``520-Invalid command syntax.  Proper usage follows:`` ... ``520 End of proper usage.``.
* ``100 result=0 Trying...`` is provisional (GOSUB); the final reply follows it.
* ``HANGUP`` alone on a line may come at any time: the channel hung up (FastAGI's SIGHUP).
* Commands are split into words by ``parse_args``: blanks separate words, double quotes group,
  a backslash makes the next character literal. A line ends at LF, a word at NUL.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

MAX_LINE_BYTES = 32 * 1024
MAX_BLOCK_BYTES = 64 * 1024

# Not an AGI command: run_agi() reads a line starting with "failure" as "the script could not
# start", ends the AGI and sets AGISTATUS=FAILURE, which the dialplan can branch on. Asterisk
# versions without that special case answer 510 and see the connection close instead.
FAILURE_LINE = b"failure\n"

_ENV_VARIABLE = re.compile(r"(agi_\w+): ?([^\n]*)\n", re.ASCII)
_MULTILINE_START = re.compile(r"(\d{3})-")
# "<code> [result=<x>] [(<data>)] [endpos=<n>] [<text>]". The greedy data group closes at the
# last ")": a variable's value may hold parentheses. Digit counts are capped so that int()
# never meets an absurd (or DoS-sized) number.
_REPLY = re.compile(r"(\d{3})(?: result=(\S*))?(?: \((.*)\))?(?: endpos=(-?\d{1,18}))?(?: (.*))?")
_INTEGER = re.compile(r"-?\d{1,18}")
_VERB = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")


# Events are plain slotted dataclasses, not frozen ones: one is built for every reply, and a
# frozen dataclass costs about three times as much to build.
@dataclass(slots=True)
class AgiEnvironment:
    """The ``agi_*`` block that opens every session, with the request already taken apart."""

    variables: dict[str, str]
    path: str  # script path, URL-decoded, without surrounding slashes: "inbound", "ivr/main"
    params: dict[str, str]  # the script's query parameters, URL-decoded
    args: tuple[str, ...]  # agi_arg_1 .. agi_arg_N


@dataclass(slots=True)
class AgiResult:
    """One reply to a command. ``data`` is the text in parentheses, the free text after the
    result (``Trying...``), the message of a 5xx line, or the usage text of a 520."""

    code: int
    result: str | None
    data: str | None
    endpos: int | None
    lines: tuple[str, ...]

    @property
    def digit(self) -> str | None:
        """The DTMF digit that ended STREAM FILE, WAIT FOR DIGIT, SAY ... (whose result is the
        digit's ASCII code): None when no digit was pressed (0) or the command failed (-1)."""
        code = _as_int(self.result)
        return chr(code) if code is not None and 0 < code < 128 else None

    @property
    def failed(self) -> bool:
        """A negative result: -1 is an error or a hangup, -2 EXEC's unknown application."""
        value = _as_int(self.result)
        return value is not None and value < 0


@dataclass(slots=True)
class AsyncHangup:
    """Asterisk's unsolicited ``HANGUP`` line: the channel is gone."""


@dataclass(slots=True)
class ProtocolError:
    """The peer broke the protocol; the parser ignores everything after it."""

    reason: str


Event = AgiEnvironment | AgiResult | AsyncHangup | ProtocolError


class AgiArgumentError(ValueError):
    """A command or argument that cannot be sent safely."""


class _State(enum.Enum):
    ENVIRONMENT = enum.auto()
    REPLIES = enum.auto()
    FAILED = enum.auto()


class AgiParser:
    """The server side of one FastAGI connection: feed it bytes, get events back.

    Lines are cut on LF before they are decoded, so a UTF-8 character split across two reads
    decodes as if it came in one: any split of the stream gives the same events. Nothing raises:
    bad input becomes one ProtocolError, after which the parser ignores the rest.
    """

    def __init__(self, *, max_line_bytes: int = MAX_LINE_BYTES,
                 max_block_bytes: int = MAX_BLOCK_BYTES) -> None:
        self._max_line_bytes = max_line_bytes
        # Bounds the agi_* block and a multi-line reply: what one peer can make us hold.
        self._max_block_bytes = max_block_bytes
        self._partial = bytearray()  # the start of a line whose LF has not come yet
        self._state = _State.ENVIRONMENT
        self._variables: list[tuple[str, str]] = []
        self._usage_lines: list[str] = []
        self._block_bytes = 0
        self._multiline_code: str | None = None

    def feed(self, data: bytes) -> list[Event]:
        if self._state is _State.FAILED:
            return []
        events: list[Event] = []
        if b"\n" not in data:  # no line completed: keep the piece, rescan nothing
            self._partial += data
        else:
            if self._partial:  # a line split across reads: join it once, now that it is whole
                data = bytes(self._partial) + data
                self._partial.clear()
            self._take_lines(data, events)
        if len(self._partial) > self._max_line_bytes:
            self._fail_long_line(events)
        return events

    def _take_lines(self, data: bytes, events: list[Event]) -> None:
        start = self._take_environment(data, events) if self._state is _State.ENVIRONMENT else 0
        while self._state is _State.REPLIES and (end := data.find(b"\n", start)) >= 0:
            line = data[start:end]
            start = end + 1
            if len(line) > self._max_line_bytes:
                self._fail_long_line(events)
            else:
                self._take_reply_line(line, events)
        if self._state is not _State.FAILED:
            self._partial += data[start:]

    def feed_eof(self) -> list[Event]:
        """The peer closed its side. An error unless it closed between two replies."""
        if self._state is _State.FAILED:
            return []
        events: list[Event] = []
        if self._state is _State.ENVIRONMENT:
            self._fail("connection closed before the end of the AGI environment", events)
        elif self._partial or self._multiline_code is not None:
            self._fail("connection closed in the middle of a reply", events)
        return events

    def _fail(self, reason: str, events: list[Event]) -> None:
        self._state = _State.FAILED
        self._partial.clear()
        self._variables.clear()
        self._usage_lines.clear()
        events.append(ProtocolError(reason))

    def _fail_long_line(self, events: list[Event]) -> None:
        self._fail(f"line longer than {self._max_line_bytes} bytes", events)

    def _count_block_bytes(self, size: int, events: list[Event]) -> bool:
        self._block_bytes += size
        if self._block_bytes > self._max_block_bytes:
            self._fail(f"block of lines larger than {self._max_block_bytes} bytes", events)
            return False
        return True

    def _take_environment(self, data: bytes, events: list[Event]) -> int:
        """Take the complete agi_* lines at the start of ``data`` and, if it came, the blank
        line after them; return how far. Two regex calls cover the ~20 lines every call opens
        with: valid lines are taken as a run, and only the line that stops it is looked at."""
        run_end = _environment_run(self._max_line_bytes).match(data).end()
        if not self._count_block_bytes(run_end, events):
            return run_end
        # Whole lines decode as they would one by one: LF never ends a UTF-8 sequence.
        text = _text(data[:run_end])
        variables = _ENV_VARIABLE.findall(text)
        if "\r" in text:  # Asterisk ends lines with a bare LF; CRLF is for peers typed by hand
            variables = [(key, value.removesuffix("\r")) for key, value in variables]
        self._variables += variables
        line_end = data.find(b"\n", run_end)
        if line_end < 0:
            return run_end
        line = data[run_end:line_end]
        if len(line) > self._max_line_bytes:
            self._fail_long_line(events)
        elif line in (b"", b"\r"):
            self._finish_environment(events)
        else:
            self._fail(f"not an AGI environment line: {_text(line)[:80]!r}", events)
        return line_end + 1

    def _finish_environment(self, events: list[Event]) -> None:
        if not self._variables:
            self._fail("empty AGI environment", events)
            return
        variables = dict(self._variables)
        self._variables = []
        self._block_bytes = 0
        self._state = _State.REPLIES
        events.append(_environment(variables))

    def _take_reply_line(self, raw: bytes, events: list[Event]) -> None:
        line = _text(raw).removesuffix("\r")
        if self._multiline_code is not None:
            self._take_continuation_line(line, len(raw), events)
        elif reply := _REPLY.fullmatch(line):
            code, result, data, endpos, text = reply.groups()
            events.append(AgiResult(int(code), result, data if data is not None else text or None,
                                    int(endpos) if endpos else None, (line,)))
        elif line == "HANGUP":
            events.append(AsyncHangup())
        elif multiline := _MULTILINE_START.match(line):
            if self._count_block_bytes(len(raw) + 1, events):
                self._multiline_code = multiline.group(1)
                self._usage_lines = [line]
        elif line:  # a stray blank line carries nothing and breaks nothing
            self._fail(f"not an AGI reply: {line[:80]!r}", events)

    def _take_continuation_line(self, line: str, line_bytes: int, events: list[Event]) -> None:
        if not self._count_block_bytes(line_bytes + 1, events):
            return
        self._usage_lines.append(line)
        code = self._multiline_code
        if line.startswith(f"{code} "):
            lines = tuple(self._usage_lines)
            events.append(AgiResult(int(code), None, "\n".join(lines[1:-1]) or None, None, lines))
            self._usage_lines = []
            self._block_bytes = 0
            self._multiline_code = None


@functools.cache
def _environment_run(max_line_bytes: int) -> re.Pattern[bytes]:
    """Matches a run of complete agi_* lines, none longer than max_line_bytes."""
    return re.compile(rb"(?:(?=[^\n]{0,%d}\n)agi_\w+:[^\n]*\n)*" % max_line_bytes)


def _text(raw: bytes) -> str:
    # Asterisk writes UTF-8, but caller names may come from anywhere: never fail on them.
    return raw.decode("utf-8", "replace")


def _environment(variables: dict[str, str]) -> AgiEnvironment:
    script = variables.get("agi_network_script")
    if script is None:
        script = _script_of_request(variables.get("agi_request", ""))
    raw_path, _, query = script.partition("?")
    return AgiEnvironment(variables, unquote(raw_path).strip("/"), _query_params(query),
                          _arguments(variables))


def _script_of_request(request: str) -> str:
    # Asterisk's own rule (launch_netscript): the script is what follows the first "/" after
    # "agi://". Not urlsplit(), which raises on some malformed hosts.
    _, scheme_separator, rest = request.partition("://")
    return rest.partition("/")[2] if scheme_separator else ""


def _query_params(query: str) -> dict[str, str]:
    # %XX is decoded but "+" is kept: dialplans pass E.164 numbers (?caller=+4930...) unencoded,
    # and parse_qsl would turn their "+" into a space.
    params: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            params[unquote(key)] = unquote(value)
    return params


def _arguments(variables: Mapping[str, str]) -> tuple[str, ...]:
    args: list[str] = []
    while (value := variables.get(f"agi_arg_{len(args) + 1}")) is not None:
        args.append(value)
    return tuple(args)


def _as_int(text: str | None) -> int | None:
    return int(text) if text is not None and _INTEGER.fullmatch(text) else None


def _quote(text: str) -> str:
    """``text`` as one parse_args word: always quoted, so that an empty string (no escape digits)
    and blanks survive; quotes and backslashes escaped. CR, LF and NUL are refused: LF ends the
    command line early (the rest would run as a second command) and NUL cuts the word short."""
    if "\n" in text or "\r" in text or "\0" in text:
        raise AgiArgumentError(f"CR, LF or NUL in an AGI argument: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encode_argument(value: str | int) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"AGI arguments are str or int, got {type(value).__name__}")


def encode_command(verb: str, *args: str | int) -> bytes:
    """One command line: ``verb`` (words of letters, e.g. ``"STREAM FILE"``) then each argument,
    strings quoted and integers bare: ``STREAM FILE "welcome" "12#"``."""
    if not _VERB.fullmatch(verb):
        raise AgiArgumentError(f"not an AGI command verb: {verb!r}")
    return " ".join([verb, *map(_encode_argument, args)]).encode() + b"\n"


def parse_command_line(line: str) -> list[str]:
    """Split a command line into words exactly as res_agi's parse_args() does: the Asterisk side
    of the wire, for simulators and tests."""
    words: list[list[str]] = []
    word: list[str] | None = None
    quoted = escaped = False
    for char in line.removesuffix("\n"):
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and word is None:  # an opening quote after blanks starts a (maybe empty) word
                word = []
                words.append(word)
        elif char in " \t" and not quoted and not escaped:
            word = None
        elif char == "\\" and not escaped:
            escaped = True
            continue
        else:
            if word is None:
                word = []
                words.append(word)
            word.append(char)
        escaped = False
    return ["".join(word) for word in words]


def encode_environment(variables: Mapping[str, str]) -> bytes:
    """The block Asterisk sends on connect, for simulators and tests."""
    return "".join(f"{key}: {value}\n" for key, value in variables.items()).encode() + b"\n"
