"""What the FastAGI glue tells an IVR session: the caller's answer, the CRM's answer, or a hang-up.

Every input answers the request that ended the previous batch of actions (see ``ivr.actions``):
``CollectDigits`` expects ``Digits`` or ``Timeout``; ``Lookup`` expects ``LookupResult`` or
``Timeout`` (the CRM did not answer). ``CallerHangup`` may arrive at any time. An input of the wrong
kind counts as the request timing out, so every input moves the session forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Digits:
    """The DTMF the caller pressed, as GET DATA returns it; the terminator may be included."""

    value: str


@dataclass(frozen=True)
class Timeout:
    """The caller pressed nothing in time, or the CRM lookup did not answer."""


@dataclass(frozen=True)
class LookupResult:
    """The CRM's answer to a ``Lookup`` of the same kind; ``fields`` is the record found."""

    kind: str
    found: bool
    fields: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class CallerHangup:
    """The caller hung up (not to be confused with the ``Hangup`` action, which we ask for)."""


Input = Digits | Timeout | LookupResult | CallerHangup
