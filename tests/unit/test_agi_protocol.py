"""The sans-IO FastAGI protocol: environment, replies, errors, command encoding."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.agi.protocol import (
    AgiArgumentError,
    AgiEnvironment,
    AgiParser,
    AgiResult,
    AsyncHangup,
    ProtocolError,
    encode_command,
    encode_environment,
    parse_command_line,
)

pytestmark = pytest.mark.unit

# What Asterisk 20 sends for exten => s,1,AGI(agi://127.0.0.1:4573/inbound?flow=main&x=%20y,a b,)
ASTERISK_ENVIRONMENT = {
    "agi_network": "yes",
    "agi_network_script": "inbound?flow=main&x=%20y",
    "agi_request": "agi://127.0.0.1:4573/inbound?flow=main&x=%20y",
    "agi_channel": "PJSIP/alice-00000001",
    "agi_language": "en",
    "agi_type": "PJSIP",
    "agi_uniqueid": "1700000000.1",
    "agi_version": "20.5.0",
    "agi_callerid": "+4930123456",
    "agi_calleridname": "Zoë Ünal 日本",
    "agi_callingpres": "0",
    "agi_dnid": "100",
    "agi_rdnis": "unknown",
    "agi_context": "cti-inbound",
    "agi_extension": "100",
    "agi_priority": "3",
    "agi_enhanced": "0.0",
    "agi_accountcode": "",
    "agi_threadid": "140234",
    "agi_arg_1": "a b",
    "agi_arg_2": "",
}

REPLIES = (
    b"200 result=1\n"
    b"200 result= (timeout)\n"
    b"200 result=49 endpos=8640\n"
    b"100 result=0 Trying...\n"
    b"200 result=0 Gosub complete\n"
    b"200 result=1 (Zo\xc3\xab (VIP)) \n"
    b"HANGUP\n"
    b"510 Invalid or unknown command\n"
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b" Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"
    b"520 End of proper usage.\n"
    b"511 Command Not Permitted on a dead channel or intercept routine\n"
)

STREAM = encode_environment(ASTERISK_ENVIRONMENT) + REPLIES


def feed_all(chunks: list[bytes], parser: AgiParser | None = None) -> list:
    parser = parser or AgiParser()
    return [event for chunk in chunks for event in parser.feed(chunk)] + parser.feed_eof()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    return [data[start:end] for start, end in pairwise(bounds)]


def environment_of(variables: dict[str, str]) -> AgiEnvironment:
    events = AgiParser().feed(encode_environment(variables))
    assert len(events) == 1 and isinstance(events[0], AgiEnvironment), events
    return events[0]


def reply_to(line: bytes) -> AgiResult | AsyncHangup:
    parser = AgiParser()
    parser.feed(encode_environment({"agi_network": "yes"}))
    (event,) = parser.feed(line)
    return event


def test_environment_request_is_taken_apart() -> None:
    env = environment_of(ASTERISK_ENVIRONMENT)

    assert env.variables == ASTERISK_ENVIRONMENT
    assert env.path == "inbound"
    assert env.params == {"flow": "main", "x": " y"}
    assert env.args == ("a b", "")


def test_path_comes_from_agi_request_when_there_is_no_network_script() -> None:
    env = environment_of({"agi_request": "agi://pbx:4573/ivr/main%20menu/?lang=de&caller=+4930"})

    assert env.path == "ivr/main menu"
    # "+" is a literal plus in telephony, not a form-encoded space.
    assert env.params == {"lang": "de", "caller": "+4930"}


@pytest.mark.parametrize("request_url", ["agi://pbx", "agi://[::1", "/var/lib/asterisk/agi-bin/x"])
def test_request_without_script_has_empty_path(request_url: str) -> None:
    env = environment_of({"agi_request": request_url})

    assert (env.path, env.params) == ("", {})


def test_arguments_stop_at_the_first_gap() -> None:
    env = environment_of({"agi_arg_1": "one", "agi_arg_2": "two", "agi_arg_4": "four"})

    assert env.args == ("one", "two")


def test_value_keeps_colons_and_empty_values_are_empty() -> None:
    env = environment_of({"agi_request": "agi://h:1/x", "agi_accountcode": ""})

    assert env.variables == {"agi_request": "agi://h:1/x", "agi_accountcode": ""}


def test_crlf_line_ends_are_tolerated() -> None:
    (env,) = AgiParser().feed(b"agi_channel: SIP/1\r\nagi_network_script: a\r\n\r\n")

    assert env.variables == {"agi_channel": "SIP/1", "agi_network_script": "a"}


DEAD_CHANNEL = "Command Not Permitted on a dead channel or intercept routine"


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "endpos"),
    [
        ("200 result=0", 200, "0", None, None),
        ("200 result=-1", 200, "-1", None, None),
        ("200 result= (timeout)", 200, "", "timeout", None),
        ("200 result=1234 (timeout)", 200, "1234", "timeout", None),
        ("200 result=49 endpos=8640", 200, "49", None, 8640),
        ("200 result=1 (speech) endpos=9834523 results=5", 200, "1", "speech", 9834523),
        ("200 result=1 (a (nested) value)", 200, "1", "a (nested) value", None),
        ("100 result=0 Trying...", 100, "0", "Trying...", None),
        ("200 result=-1 Gosub label not found", 200, "-1", "Gosub label not found", None),
        ("510 Invalid or unknown command", 510, None, "Invalid or unknown command", None),
        (f"511 {DEAD_CHANNEL}", 511, None, DEAD_CHANNEL, None),
        ("520 Invalid command syntax.  Proper usage not available.", 520, None,
         "Invalid command syntax.  Proper usage not available.", None),
        # An absurd endpos is not a number to parse: it stays text.
        ("200 result=1 endpos=99999999999999999999999", 200, "1",
         "endpos=99999999999999999999999", None),
    ],
)
def test_reply_lines(line: str, code: int, result: str | None, data: str | None,
                     endpos: int | None) -> None:
    assert reply_to(line.encode() + b"\n") == AgiResult(code, result, data, endpos, (line,))


def test_hangup_line() -> None:
    assert reply_to(b"HANGUP\n") == AsyncHangup()


def test_multiline_usage_reply_is_one_result_with_the_usage_text() -> None:
    parser = AgiParser()
    parser.feed(encode_environment({"agi_network": "yes"}))

    events = parser.feed(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: WAIT FOR DIGIT <timeout>\n"
        b"\tWaits up to 'timeout' milliseconds for channel to receive a DTMF digit.\n"
        b"520 End of proper usage.\n"
    )

    assert len(events) == 1
    assert events[0].code == 520
    assert events[0].data == (
        " Usage: WAIT FOR DIGIT <timeout>\n"
        "\tWaits up to 'timeout' milliseconds for channel to receive a DTMF digit.")
    assert len(events[0].lines) == 4


@pytest.mark.parametrize(
    ("result", "digit", "failed"),
    [("49", "1", False), ("35", "#", False), ("42", "*", False), ("0", None, False),
     ("-1", None, True), ("-2", None, True), ("", None, False), (None, None, False)],
)
def test_digit_and_failed_helpers(result: str | None, digit: str | None, failed: bool) -> None:
    reply = AgiResult(200, result, None, None, ())

    assert (reply.digit, reply.failed) == (digit, failed)


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not an AGI environment line"),
        (b"\n", "empty AGI environment"),
        (b"agi_channel SIP/1\n\n", "not an AGI environment line"),
        (b"agi_x: 1\n\nSSH-2.0-OpenSSH\n", "not an AGI reply"),
        (b"agi_x: 1\n\n200 result=" + b"9" * 40_000 + b"\n", "line longer than"),
        (b"agi_x: " + b"y" * 40_000, "line longer than"),
        (b"agi_x: 1\n" * 10_000, "block of lines larger than"),
        (b"agi_x: 1\n\n520-Invalid\n" + b"usage\n" * 20_000, "block of lines larger than"),
        (b"agi_channel: SIP/1\n", "connection closed before the end of the AGI environment"),
        (b"agi_x: 1\n\n200 result=", "connection closed in the middle of a reply"),
        (b"agi_x: 1\n\n520-Invalid\nusage\n", "connection closed in the middle of a reply"),
    ],
)
def test_bad_streams_end_in_one_protocol_error(stream: bytes, reason: str) -> None:
    events = feed_all([stream])

    assert isinstance(events[-1], ProtocolError)
    assert events[-1].reason.startswith(reason)
    assert sum(isinstance(event, ProtocolError) for event in events) == 1


def test_after_an_error_the_parser_ignores_everything() -> None:
    parser = AgiParser()
    parser.feed(b"garbage\n")

    assert parser.feed(encode_environment({"agi_x": "1"}) + b"200 result=0\n") == []
    assert parser.feed_eof() == []


def test_clean_close_between_replies_is_no_error() -> None:
    assert feed_all([STREAM])[-1] == AgiResult(511, None, DEAD_CHANNEL, None,
                                               (f"511 {DEAD_CHANNEL}",))


def test_invalid_utf8_is_replaced_not_raised() -> None:
    (broken,) = AgiParser().feed(b"agi_calleridname: \xff\xfe caf\xc3\n\n")

    assert broken.variables["agi_calleridname"] == "\ufffd\ufffd caf\ufffd"


@given(st.lists(st.integers(min_value=0), max_size=30))
def test_any_split_of_the_stream_gives_the_same_events(cuts: list[int]) -> None:
    assert feed_all(split_at(STREAM, cuts)) == feed_all([STREAM])


@given(st.dictionaries(st.from_regex(r"agi_[a-z0-9_]{1,12}", fullmatch=True),
                       st.text(st.characters(blacklist_characters="\r\n",
                                             blacklist_categories=("Cs",))),
                       min_size=1, max_size=20),
       st.lists(st.integers(min_value=0), max_size=20))
def test_any_environment_survives_any_split(variables: dict[str, str], cuts: list[int]) -> None:
    (env,) = feed_all(split_at(encode_environment(variables), cuts))

    assert env.variables == variables


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=10))
def test_garbage_never_raises_and_splits_do_not_matter(garbage: bytes, cuts: list[int]) -> None:
    parser_limits = {"max_line_bytes": 64, "max_block_bytes": 256}

    whole = feed_all([garbage], AgiParser(**parser_limits))
    pieces = feed_all(split_at(garbage, cuts), AgiParser(**parser_limits))

    assert whole == pieces
    assert sum(isinstance(event, ProtocolError) for event in whole) <= 1


@given(st.lists(st.sampled_from([b"agi_", b"x", b":", b" ", b"\n", b"\r", b"200", b" result=",
                                 b"-", b"(", b")", b"HANGUP", b"520", b"endpos=", b"\xc3\xab",
                                 b"\xff"]), max_size=60),
       st.lists(st.integers(min_value=0), max_size=10))
def test_near_miss_streams_never_raise_and_splits_do_not_matter(tokens: list[bytes],
                                                                  cuts: list[int]) -> None:
    stream = b"".join(tokens)

    assert feed_all(split_at(stream, cuts)) == feed_all([stream])


@pytest.mark.parametrize(
    ("verb", "args", "wire"),
    [
        ("ANSWER", (), b"ANSWER\n"),
        ("STREAM FILE", ("welcome", "12#"), b'STREAM FILE "welcome" "12#"\n'),
        ("STREAM FILE", ("welcome", "", 8000), b'STREAM FILE "welcome" "" 8000\n'),
        ("GET DATA", ("enter-account", 5000, 6), b'GET DATA "enter-account" 5000 6\n'),
        ("WAIT FOR DIGIT", (-1,), b"WAIT FOR DIGIT -1\n"),
        ("SAY NUMBER", (42, "#"), b'SAY NUMBER 42 "#"\n'),
        ("EXEC", ("Dial", "PJSIP/100,30,tT"), b'EXEC "Dial" "PJSIP/100,30,tT"\n'),
        ("SET VARIABLE", ("NOTE", 'say "hi" \\o/'), b'SET VARIABLE "NOTE" "say \\"hi\\" \\\\o/"\n'),
        ("VERBOSE", ("caf\u00e9", 3), 'VERBOSE "caf\u00e9" 3\n'.encode()),
    ],
)
def test_command_wire_format(verb: str, args: tuple, wire: bytes) -> None:
    assert encode_command(verb, *args) == wire


AGI_TEXT = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)))


@given(st.sampled_from(["SET VARIABLE", "EXEC", "VERBOSE", "STREAM FILE", "GET FULL VARIABLE"]),
       st.lists(AGI_TEXT | st.integers(), max_size=5))
def test_arguments_round_trip_through_res_agi_parse_args(verb: str, args: list[str | int]) -> None:
    line = encode_command(verb, *args).decode()

    assert line.count("\n") == 1
    assert parse_command_line(line) == [*verb.split(), *map(str, args)]


@given(AGI_TEXT, st.sampled_from(["\r", "\n", "\0", "\r\n"]), AGI_TEXT)
def test_line_breaks_in_arguments_are_refused(before: str, breaker: str, after: str) -> None:
    with pytest.raises(AgiArgumentError):
        encode_command("VERBOSE", before + breaker + after)


@pytest.mark.parametrize("verb", ["ANSWER\nHANGUP", "GET VARIABLE 1", "", "exec;", "STREAM  FILE"])
def test_verbs_are_words_of_letters_only(verb: str) -> None:
    with pytest.raises(AgiArgumentError):
        encode_command(verb)


@pytest.mark.parametrize("argument", [1.5, True, None, b"bytes"])
def test_arguments_are_str_or_int(argument: object) -> None:
    with pytest.raises(TypeError):
        encode_command("VERBOSE", argument)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('STREAM FILE welcome ""\n', ["STREAM", "FILE", "welcome", ""]),
        ('EXEC Dial "PJSIP/1 x"', ["EXEC", "Dial", "PJSIP/1 x"]),
        ("SET VARIABLE a\\ b c", ["SET", "VARIABLE", "a b", "c"]),
        ('VERBOSE ab"c d"e', ["VERBOSE", 'abc de']),
        ("  ANSWER\t ", ["ANSWER"]),
    ],
)
def test_parse_command_line_follows_res_agi(line: str, words: list[str]) -> None:
    assert parse_command_line(line) == words
