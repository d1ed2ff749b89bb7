"""Typed third-party call control: hang up, redirect, transfer, originate, hold, over AMI actions.

Every value is checked before it reaches the AMI socket: a CR or LF in a header value would let the
caller inject extra headers or a whole extra action, and a Hangup channel written ``/regex/`` makes
Asterisk hang up every channel matching it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from cti.ami.message import Message

# tech/resource, e.g. PJSIP/trunk-00000000, Local/agent1@agents-00000000;1, SIP/100.
_CHANNEL = re.compile(r"[A-Za-z][A-Za-z0-9_-]*/\S+")
# Contexts, extensions (patterns included), music classes: one token, no spaces.
_TOKEN = re.compile(r"\S+")
# Channel variables and dialplan functions: NAME, __INHERITED, CDR(userfield).
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\([^()\s]*\))?")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# A synchronous Originate is answered only once the call is answered or its own timeout expired.
_ORIGINATE_RESPONSE_MARGIN_S = 5.0


class AmiActionSender(Protocol):
    """What the AMI client offers: send one action, get its response."""

    async def action(
        self,
        name: str,
        headers: dict[str, str],
        *,
        idempotent: bool | None = None,
        timeout: float | None = None,
    ) -> Message: ...


class CallControlError(Exception):
    """Asterisk refused the action (``Response: Error``)."""

    def __init__(self, action: str, response: Message) -> None:
        self.action = action
        self.response = response
        super().__init__(f"{action} failed: {response.get('Message', 'no reason given')}")


def _check_text(field: str, value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError(f"{field} must not contain control characters (CR, LF...): {value!r}")
    return value


def _check(field: str, value: str, pattern: re.Pattern[str], what: str) -> str:
    _check_text(field, value)
    if not pattern.fullmatch(value):
        raise ValueError(f"{field} must be {what}, got {value!r}")
    return value


def _channel(field: str, value: str) -> str:
    return _check(field, value, _CHANNEL, "a channel name like PJSIP/100-00000001")


def _token(field: str, value: str) -> str:
    return _check(field, value, _TOKEN, "non-empty and without spaces")


def _positive(field: str, value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field} must be a positive integer, got {value!r}")
    return str(value)


def _hangup_cause(cause: int) -> str:
    if isinstance(cause, bool) or not isinstance(cause, int) or not 0 <= cause <= 127:
        raise ValueError(f"cause must be a Q.850 cause code (0-127), got {cause!r}")
    return str(cause)


def _variables(variables: Mapping[str, str]) -> str:
    # Asterisk splits each Variable header on commas, so one header carries them all, and a comma
    # inside a value would silently split it.
    pairs = []
    for name, value in variables.items():
        _check("variable name", name, _VARIABLE_NAME, "a variable or function name")
        _check_text(f"variable {name}", str(value))
        if "," in str(value):
            raise ValueError(f"variable {name} must not contain a comma: {value!r}")
        pairs.append(f"{name}={value}")
    return ",".join(pairs)


class CallControl:
    """Call-control operations of one Asterisk server, reached through ``sender``.

    Hold: Asterisk has no AMI action that puts a bridged call on hold (no MusicOnHold action;
    MuteAudio only silences; Park hands the call to a parking lot, whose retrieval is a dialplan
    matter). ``hold`` therefore redirects both parties out of their bridge at once, the held party
    to a context running MusicOnHold() and the holding party to one that keeps it alive (Wait());
    redirecting only one would let Asterisk dissolve the bridge and hang up the other. ``unhold``
    bridges them back with the AMI Bridge action. The two contexts are a deployment's dialplan.
    """

    def __init__(
        self,
        sender: AmiActionSender,
        *,
        hold_context: str = "cti-hold",
        holding_context: str = "cti-holding",
        hold_exten: str = "s",
    ) -> None:
        self._sender = sender
        self._hold_context = _token("hold_context", hold_context)
        self._holding_context = _token("holding_context", holding_context)
        self._hold_exten = _token("hold_exten", hold_exten)

    async def hangup(self, channel: str, cause: int = 16) -> Message:
        headers = {"Channel": _channel("channel", channel), "Cause": _hangup_cause(cause)}
        # Hanging up twice is harmless: the client may retry it.
        return await self._send("Hangup", headers, idempotent=True)

    async def redirect(
        self,
        channel: str,
        context: str,
        exten: str,
        priority: int = 1,
        extra_channel: str | None = None,
        extra_context: str | None = None,
        extra_exten: str | None = None,
        extra_priority: int | None = None,
    ) -> Message:
        """Send ``channel``, and ``extra_channel`` (same place by default), to the dialplan."""
        headers = {
            "Channel": _channel("channel", channel),
            "Context": _token("context", context),
            "Exten": _token("exten", exten),
            "Priority": _positive("priority", priority),
        }
        if extra_channel is not None:
            headers |= {
                "ExtraChannel": _channel("extra_channel", extra_channel),
                "ExtraContext": _token("extra_context", extra_context or context),
                "ExtraExten": _token("extra_exten", extra_exten or exten),
                "ExtraPriority": _positive("extra_priority", extra_priority or priority),
            }
        return await self._send("Redirect", headers)

    async def blind_transfer(self, channel: str, context: str, exten: str) -> Message:
        headers = {
            "Channel": _channel("channel", channel),
            "Context": _token("context", context),
            "Exten": _token("exten", exten),
        }
        return await self._send("BlindTransfer", headers)

    async def attended_transfer(self, channel: str, exten: str, context: str) -> Message:
        """Start an attended transfer from ``channel`` (the transferring agent) to ``exten``."""
        headers = {
            "Channel": _channel("channel", channel),
            "Exten": _token("exten", exten),
            "Context": _token("context", context),
        }
        return await self._send("Atxfer", headers)

    async def originate(
        self,
        channel: str,
        context: str,
        exten: str,
        priority: int = 1,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        timeout_ms: int = 30_000,
        async_: bool = True,
        action_id: str | None = None,
        channel_id: str | None = None,
    ) -> Message:
        """Call ``channel`` and, once it answers, run ``exten@context``.

        With ``async_`` (the default) Asterisk answers at once and reports the outcome later in an
        OriginateResponse event carrying ``action_id``, which the AMI client must send as given.
        ``channel_id`` sets the new channel's Uniqueid, hence its Linkedid: the call model's
        call_id is then known in advance.
        """
        headers = {
            "Channel": _channel("channel", channel),
            "Context": _token("context", context),
            "Exten": _token("exten", exten),
            "Priority": _positive("priority", priority),
            "Timeout": _positive("timeout_ms", timeout_ms),
            "Async": "true" if async_ else "false",
        }
        if caller_id is not None:
            headers["CallerID"] = _check_text("caller_id", caller_id)
        if variables:
            headers["Variable"] = _variables(variables)
        if action_id is not None:
            headers["ActionID"] = _token("action_id", action_id)
        if channel_id is not None:
            headers["ChannelId"] = _token("channel_id", channel_id)
        wait = None if async_ else timeout_ms / 1000 + _ORIGINATE_RESPONSE_MARGIN_S
        # Never retried: a retry after a lost response would place a second call.
        return await self._send("Originate", headers, timeout=wait)

    async def set_variable(self, channel: str, name: str, value: str) -> Message:
        """Set a channel variable (Setvar), e.g. for the dialplan a Redirect sends it to next."""
        headers = {
            "Channel": _channel("channel", channel),
            "Variable": _check("variable name", name, _VARIABLE_NAME, "a variable or function name"),
            "Value": _check_text(f"variable {name}", value),
        }
        return await self._send("Setvar", headers, idempotent=True)

    async def hold(self, channel: str, holding_channel: str) -> Message:
        """Put ``channel`` on music on hold while ``holding_channel`` (the agent) waits."""
        return await self.redirect(
            channel,
            self._hold_context,
            self._hold_exten,
            extra_channel=holding_channel,
            extra_context=self._holding_context,
        )

    async def unhold(self, channel: str, holding_channel: str) -> Message:
        headers = {
            "Channel1": _channel("channel", channel),
            "Channel2": _channel("holding_channel", holding_channel),
            "Tone": "no",
        }
        return await self._send("Bridge", headers)

    async def _send(
        self,
        name: str,
        headers: dict[str, str],
        *,
        idempotent: bool = False,
        timeout: float | None = None,
    ) -> Message:
        response = await self._sender.action(name, headers, idempotent=idempotent, timeout=timeout)
        if (response.response or "").lower() == "error":
            raise CallControlError(name, response)
        return response
