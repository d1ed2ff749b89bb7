"""Runs a pure IVR session (ivr/) on a live call through its FastAGI session.

The engine says what to do; this module does it with AGI commands and feeds back what the
caller did. Prompts stop at the first digit when the flow allows barge-in (STREAM FILE's
escape digits), and that digit starts the entry. Lookups go to the CRM store.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from cti.agi.server import AgiHangup, AgiSession
from ivr.actions import CollectDigits, Finish, Lookup, Play, SayDigits, SayNumber
from ivr.engine import IvrSession
from ivr.inputs import CallerHangup, Digits, LookupResult, Timeout
from ivr.result import IvrResult

DTMF = "0123456789*#"
# Account number -> the customer's record, or None when no customer has it.
CustomerLookup = Callable[[str], Awaitable[dict | None]]


class IvrRunner:
    def __init__(self, agi: AgiSession, lookup_customer: CustomerLookup) -> None:
        self.agi = agi
        self.lookup_customer = lookup_customer

    async def run(self, session: IvrSession) -> IvrResult:
        """Drive ``session`` until it finishes; a hang-up leaves a result marked partial."""
        try:
            return await self._drive(session)
        except AgiHangup:
            session.feed(CallerHangup(), time.time())
            return session.result

    async def _drive(self, session: IvrSession) -> IvrResult:
        actions = session.start()
        while True:
            answer = None
            for action in actions:
                if isinstance(action, Finish):
                    return action.result
                answer = await self._perform(action)
            actions = session.feed(answer if answer is not None else Timeout(), time.time())

    async def _perform(self, action):
        if isinstance(action, Play):
            await self._play(action.prompts, action.escape_digits)
        elif isinstance(action, SayNumber):
            await self.agi.say_number(action.number)
        elif isinstance(action, SayDigits):
            await self.agi.say_digits(action.digits)
        elif isinstance(action, CollectDigits):
            return await self._collect(action)
        elif isinstance(action, Lookup):
            fields = await self.lookup_customer(action.key)
            return LookupResult(action.kind, fields is not None, _jsonable(fields or {}))
        # ToQueue, Voicemail, Transfer...: outcomes the engine reports in its Finish result.
        return None

    async def _play(self, prompts, escape_digits: str) -> str | None:
        for prompt in prompts:
            digit = (await self.agi.stream_file(prompt, escape_digits)).digit
            if digit:
                return digit
        return None

    async def _collect(self, request: CollectDigits) -> Digits | Timeout:
        entered = await self._play(request.prompts, DTMF if request.barge_in else "") or ""
        while len(entered) < request.max_len and not (request.terminator and entered.endswith(request.terminator)):
            result = await self.agi.wait_for_digit(request.timeout_ms)
            if result.failed:  # -1: the channel hung up while waiting (not a timeout, which is 0)
                raise AgiHangup("WAIT FOR DIGIT failed: the caller hung up")
            if result.digit is None:
                break
            digit = result.digit
            entered += digit
        return Digits(entered) if entered else Timeout()


def _jsonable(record: dict) -> dict:
    return {key: value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
            for key, value in record.items()}
