"""What an IVR session asks the FastAGI glue to do, in order.

``IvrSession.start()`` and ``IvrSession.feed()`` return a list of actions. The glue runs them
one after the other; AGI commands that fit each one:

=================  ==============================================================
``Play``           STREAM FILE per prompt, with ``escape_digits`` (a digit pressed
                   only cuts the prompt short; it is not an answer)
``SayNumber``      SAY NUMBER
``SayDigits``      SAY DIGITS
``CollectDigits``  GET DATA (or STREAM FILE + WAIT FOR DIGIT when ``barge_in`` is false)
``Lookup``         a CRM query, off the call's audio path
``ToQueue``        hand the call and ``session.result`` to the ACD
``Voicemail``      EXEC VoiceMail
``CallbackRequest``  register a callback with the ACD, then the ``Hangup`` that follows
``Transfer``       EXEC Dial to the outside number
``Hangup``         HANGUP
``Finish``         nothing on the channel: the attached data is final
=================  ==============================================================

A batch ends in exactly one of: ``CollectDigits`` (answer with ``Digits`` or ``Timeout``),
``Lookup`` (answer with ``LookupResult`` or ``Timeout``), or ``Finish`` (the session is over).
Money and dates are spoken with the primitives above (see ``ivr.say``), so the glue needs no
SAY variant beyond SAY NUMBER and SAY DIGITS.

Prompts are Asterisk sound names without extension, relative to the language's sounds folder
(``welcome``, ``digits/1``, ``custom/main-menu``); see ``ivr.flow`` for adding your own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.result import IvrResult

DTMF_KEYS = "0123456789*#"


@dataclass(frozen=True)
class Play:
    prompts: tuple[str, ...]
    escape_digits: str = ""  # empty: the caller cannot cut the prompts short


@dataclass(frozen=True)
class SayNumber:
    number: int


@dataclass(frozen=True)
class SayDigits:
    digits: str


@dataclass(frozen=True)
class CollectDigits:
    prompts: tuple[str, ...]
    min_len: int
    max_len: int
    terminator: str  # "" when the entry ends only on max_len or the timeout
    timeout_ms: int
    barge_in: bool  # the first digit pressed stops the prompts


@dataclass(frozen=True)
class Lookup:
    kind: str  # customer_by_account | balance | status | validate_account
    key: str


@dataclass(frozen=True)
class ToQueue:
    queue: str
    skills: tuple[str, ...]
    priority: int  # higher is served first


@dataclass(frozen=True)
class Voicemail:
    mailbox: str


@dataclass(frozen=True)
class CallbackRequest:
    number: str


@dataclass(frozen=True)
class Transfer:
    number: str


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Finish:
    result: IvrResult


Action = (Play | SayNumber | SayDigits | CollectDigits | Lookup | ToQueue | Voicemail
          | CallbackRequest | Transfer | Hangup | Finish)
