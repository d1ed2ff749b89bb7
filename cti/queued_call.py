"""A caller waiting in the ACD, held on its own FastAGI session (the pattern in DESIGN.md).

``EXEC StartMusicOnHold`` returns at once and the music plays while the session waits on its
inbox for the engine's decisions. An offer stops the music and runs ``EXEC Dial`` to the reserved
agent: the engine learns of the answer from the AMI (the call is bridged) and of a failed ring
from DIALSTATUS. When Dial returns after a talk the call is complete; a caller still on the line
(the agent hung up first) goes on to the queue's survey, if it has one (``after_talk``). A
caller who leaves while waiting is an abandon, recorded with the wait and the position reached.
Pressing the callback digit while waiting (seen over the AMI, as the session is not reading
digits) keeps their place as a callback.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import structlog

from acd import (Announce, CallAbandoned, CallArrived, CallbackRequested, CallCompleted, CallEnded, DispositionKind,
                 FinalAction, Offer, OfferFailed, Overflowed, PreQueueRejected)
from cti.acd_service import AcdService
from cti.agi.server import AgiHangup, AgiSession
from cti.callmodel.model import CallModel

log = structlog.get_logger(__name__)

# DIALSTATUS of a ring that did not connect -> the engine's OfferFailed reason.
_RING_FAILURES = {"NOANSWER": "no_answer", "BUSY": "busy", "CANCEL": "no_answer"}
_GOODBYE = ("auth-thankyou", "vm-goodbye")


@dataclass(frozen=True)
class CallerDigit:
    """A DTMF digit the caller pressed while the session was not reading digits (from the AMI)."""

    channel: str
    digit: str


class TalkCommand:
    """What an agent's desktop asks of a connected call, posted to its inbox (AcdService.post)
    *before* the AMI action that ends the current stretch of talk, so the session finds it there."""


@dataclass(frozen=True)
class Hold(TalkCommand):
    """The agent's channel is about to be redirected away: play music to the caller."""


@dataclass(frozen=True)
class Reconnect(TalkCommand):
    """Bridge the caller with ``channel``: back to the same agent (unhold) or to another one
    (attended transfer complete), whose desktop gets the call's data."""

    channel: str
    agent_id: str | None = None


@dataclass(frozen=True)
class DialAgent(TalkCommand):
    """Blind transfer to an agent."""

    agent_id: str


@dataclass(frozen=True)
class DialNumber(TalkCommand):
    """Blind transfer to an outside number."""

    number: str


@dataclass(frozen=True)
class Requeue(TalkCommand):
    """Blind transfer to a queue: the call waits again, keeping its data."""

    queue: str


@dataclass(frozen=True)
class QueueingSettings:
    moh_class: str = "default"
    # Dial string for numbers outside (external final actions, callbacks); "{number}" is replaced.
    outbound_interface: str = ""
    callback_digit: str = "1"
    # Played before hanging up a caller whose callback is booked.
    callback_confirmation: tuple[str, ...] = ("custom/callback-booked",) + _GOODBYE


@dataclass
class QueueTicket:
    """What the call's stay in the ACD was: attached to the call as ``data["acd"]``, read by the
    interaction recorder and the desktops. Times are epoch seconds."""

    queue: str
    priority: int | None
    tier: str | None
    queued_at: float
    agents: list[str] = field(default_factory=list)  # who answered (and got it by transfer), in order
    rung: list[str] = field(default_factory=list)  # every agent offered the call, answered or not
    offered_at: float | None = None
    answered_at: float | None = None
    talk_ended_at: float | None = None
    ring_seconds: float = 0.0
    outcome: str | None = None
    abandoned_position: int | None = None
    overflow_steps: list[int] = field(default_factory=list)
    final_action: str | None = None
    left_queue_at: float | None = None  # unanswered, sent on by a final action or a refusal: the wait's end
    callback_number: str | None = None


class _Finished(Exception):
    """The call's stay in the ACD is over: leave the wait loop."""


class QueuedCall:
    def __init__(self, acd: AcdService, agi: AgiSession, model: CallModel, call_id: str,
                 settings: QueueingSettings,
                 after_talk: Callable[[QueueTicket], Awaitable[None]] | None = None) -> None:
        self.acd = acd
        self.agi = agi
        self.model = model
        self.call_id = call_id
        self.settings = settings
        self.after_talk = after_talk
        self.ticket: QueueTicket | None = None

    async def run(self, arrival: CallArrived) -> QueueTicket:
        self.ticket = QueueTicket(arrival.queue, arrival.priority, arrival.customer_tier, self.acd.wall_clock())
        self.arrival_data = arrival.data
        self._inbox = self.acd.hold(self.call_id)
        self._hangup = asyncio.ensure_future(self.agi.wait_hangup())
        try:
            self._attach()
            self.acd.submit(arrival)
            await self._music(True)
            while True:
                await self._carry_out(await self._next(self._inbox, self._hangup))
        except _Finished:
            pass
        except AgiHangup:
            self._caller_left()
        finally:
            self._hangup.cancel()
            self.acd.release(self.call_id)
            self._attach()
        return self.ticket

    async def _next(self, inbox: asyncio.Queue, hangup: asyncio.Future) -> object:
        getter = asyncio.ensure_future(inbox.get())
        try:
            await asyncio.wait((getter, hangup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            got = getter.done()
            if not got:
                getter.cancel()  # also when the daemon stops this session
        if not got:
            raise AgiHangup("the caller hung up while waiting")
        return getter.result()

    async def _carry_out(self, item: object) -> None:
        if isinstance(item, Offer):
            await self._ring(item)
        elif isinstance(item, Announce):
            await self._announce(item)
        elif isinstance(item, FinalAction):
            await self._final_action(item)
        elif isinstance(item, PreQueueRejected):
            await self._rejected(item)
        elif isinstance(item, CallEnded) and item.outcome == "callback":
            await self._callback_booked()
        elif isinstance(item, Overflowed):
            self.ticket.overflow_steps.append(item.step_index)
            self._attach()
        elif isinstance(item, CallerDigit):
            self._caller_pressed(item)

    # --- the ring and the talk ---

    async def _ring(self, offer: Offer) -> None:
        ticket = self.ticket
        ticket.queue, ticket.offered_at = offer.queue, self.acd.wall_clock()
        ticket.rung.append(offer.agent_id)
        self._attach()
        await self._music(False)
        ring_started, status = self.acd.now(), ""
        try:
            await self.agi.exec("Dial", offer.interface, str(math.ceil(offer.ring_timeout)), "g")
            status = (await self.agi.get_variable("DIALSTATUS")) or ""
        finally:
            # Also on a hangup: a ring is counted, a talk that happened is completed by run().
            answered = self._answer_time(offer, status)
            ticket.ring_seconds += (answered or self.acd.now()) - ring_started
            if answered is not None:
                ticket.answered_at = self.acd.wall_time(answered)
                ticket.agents.append(offer.agent_id)
                self._attach()
        if answered is None:
            self.acd.submit(OfferFailed(self.call_id, offer.agent_id, _RING_FAILURES.get(status, "failed")))
            await self._music(True)
            return
        if await self._converse():
            await self._music(True)  # handed back to a queue: waiting again
            return
        self._talk_ended()
        await self._after_talk()

    def _answer_time(self, offer: Offer, status: str) -> float | None:
        """When the agent answered (engine clock), or None: from the AMI bridge, else DIALSTATUS."""
        if status == "ANSWER":
            self.acd.answer(self.call_id, offer.agent_id)  # the bridge event may trail the AGI reply
        accepted = self.acd.accepted.pop(self.call_id, None)
        return accepted[1] if accepted and accepted[0] == offer.agent_id else None

    async def _converse(self) -> bool:
        """A stretch of talk ended: the desktop may have asked to hold the caller or hand them on.
        Returns True when the caller went back to a queue."""
        command = self._talk_command()
        while command is not None:
            if isinstance(command, Hold):
                await self._music(True)
                command = await self._next_talk_command()
                await self._music(False)
                continue
            if await self._follow(command):
                return True
            command = self._talk_command()
        return False

    async def _follow(self, command: TalkCommand) -> bool:
        """Carry out a hand-on; True when the call went back to a queue."""
        if isinstance(command, Reconnect):
            if command.agent_id not in (None, self.ticket.agents[-1]):
                self._handed_to(command.agent_id)
            await self.agi.exec("Bridge", command.channel)
        elif isinstance(command, DialAgent):
            self._handed_to(command.agent_id)
            ring = self.acd.definitions.queue(self.ticket.queue).ring_timeout
            return await self._transfer_dial(command.agent_id, self.acd.agent_interface(command.agent_id),
                                             str(math.ceil(ring)), "g")
        elif isinstance(command, DialNumber):
            self._handed_to(None)
            return await self._transfer_dial(None, self.settings.outbound_interface.format(number=command.number))
        elif isinstance(command, Requeue):
            self._handed_to(None)
            self._requeue(command.queue)
            return True
        return False

    async def _transfer_dial(self, agent_id: str | None, *dial: str) -> bool:
        """A blind transfer's ring. Nobody answering is no reason to lose the caller: they wait in
        their queue again, their data kept. True when they did."""
        await self.agi.exec("Dial", *dial)
        if (await self.agi.get_variable("DIALSTATUS")) == "ANSWER":
            return False
        if agent_id is not None:  # rung, never answered: not one of the call's agents
            self.ticket.agents.remove(agent_id)
            self.ticket.rung.append(agent_id)
        self._requeue(self.ticket.queue)
        return True

    def _requeue(self, queue: str) -> None:
        self.ticket.queue = queue
        self._attach()
        self.acd.submit(CallArrived(self.call_id, queue, self.ticket.priority, self.ticket.tier,
                                    self.agi.caller_number, self.arrival_data))

    def _handed_to(self, agent_id: str | None) -> None:
        """A transfer: the first agent's part is over (wrap-up starts); the call goes on."""
        self.acd.submit(CallCompleted(self.call_id))  # ignored by the engine after the first time
        if agent_id is not None:
            self.ticket.agents.append(agent_id)
        self._attach()

    def _talk_command(self) -> TalkCommand | None:
        """The first talk command waiting in the inbox; stale decisions are dropped."""
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, TalkCommand):
                return item
        return None

    async def _next_talk_command(self) -> TalkCommand:
        while not isinstance(item := await self._next(self._inbox, self._hangup), TalkCommand):
            pass
        return item

    def _talk_ended(self) -> None:
        ticket = self.ticket
        ticket.talk_ended_at, ticket.outcome = self.acd.wall_clock(), "completed"
        self._attach()
        self.acd.submit(CallCompleted(self.call_id))

    async def _after_talk(self) -> None:
        if self.after_talk is not None:
            await self.after_talk(self.ticket)
        raise _Finished

    # --- while waiting ---

    async def _announce(self, announce: Announce) -> None:
        prompts: list[str | int] = (["queue-youarenext"] if announce.position == 1
                                    else ["queue-thereare", announce.position - 1, "queue-callswaiting"])
        if announce.expected_wait_seconds is not None:
            minutes = max(1, round(announce.expected_wait_seconds / 60))
            prompts += ["queue-holdtime", minutes, "queue-minutes"]
        await self._music(False)
        digit = await self._play(prompts, escape=self.settings.callback_digit)
        if digit:
            self._caller_pressed(CallerDigit(self.agi.channel, digit))
        await self._music(True)

    def _caller_pressed(self, pressed: CallerDigit) -> None:
        if pressed.channel == self.agi.channel and pressed.digit == self.settings.callback_digit:
            self.acd.submit(CallbackRequested(self.call_id, self.agi.caller_number))

    async def _callback_booked(self) -> None:
        self.ticket.outcome, self.ticket.callback_number = "callback_requested", self.agi.caller_number
        await self._leave(self.settings.callback_confirmation)

    def _caller_left(self) -> None:
        if self.ticket.outcome is not None:
            return
        if self.ticket.answered_at is not None:
            self._talk_ended()
            return
        self.ticket.abandoned_position = self.acd.position(self.call_id)
        self.ticket.outcome = "abandoned"
        self.acd.submit(CallAbandoned(self.call_id))

    # --- the wait ends without an agent ---

    async def _final_action(self, action: FinalAction, why: str = "") -> None:
        self.ticket.final_action = f"{why}{action.kind}:{action.target}"
        if action.kind not in (DispositionKind.QUEUE, DispositionKind.CALLBACK):
            self.ticket.left_queue_at = self.acd.wall_clock()
        if action.kind is DispositionKind.QUEUE:
            self.ticket.queue = action.target
            self._attach()
        elif action.kind is DispositionKind.VOICEMAIL:
            self.ticket.outcome = "voicemail"
            await self._music(False)
            await self.agi.exec("VoiceMail", action.target, "u")
            raise _Finished
        elif action.kind is DispositionKind.EXTERNAL:
            self.ticket.outcome = "overflowed"
            await self._music(False)
            await self.agi.exec("Dial", self.settings.outbound_interface.format(number=action.target))
            raise _Finished
        elif action.kind is DispositionKind.MESSAGE_HANGUP:
            self.ticket.outcome = "overflowed"  # left the queue for its final destination, unserved
            await self._leave((action.target or "ss-noservice", *_GOODBYE))
        # CALLBACK: the engine's CallEnded(callback) follows; _callback_booked tells the caller.

    async def _rejected(self, rejected: PreQueueRejected) -> None:
        if rejected.reason == "closed":
            closed = self.acd.definitions.queue(rejected.queue).closed_action
            await self._final_action(FinalAction(self.call_id, closed.kind, closed.target), why="closed:")
        self.ticket.final_action = f"rejected:{rejected.reason}"
        self.ticket.left_queue_at = self.acd.wall_clock()
        if rejected.reason == "ewt_too_high" and self.agi.caller_number:
            await self._music(False)
            digit = await self._play(["custom/callback-offer"], escape=self.settings.callback_digit)
            digit = digit or (await self.agi.wait_for_digit(5000)).digit
            if digit == self.settings.callback_digit:
                self.acd.submit(CallbackRequested(self.call_id, self.agi.caller_number, queue=rejected.queue))
                await self._callback_booked()
        self.ticket.outcome = "failed"
        await self._leave(("ss-noservice", *_GOODBYE))

    # --- AGI helpers ---

    async def _leave(self, prompts) -> None:
        await self._music(False)
        await self._play(list(prompts))
        await self.agi.hangup()
        raise _Finished

    async def _music(self, on: bool) -> None:
        if on:
            await self.agi.exec("StartMusicOnHold", self.settings.moh_class)
        else:
            await self.agi.exec("StopMusicOnHold")

    async def _play(self, prompts: list[str | int], escape: str = "") -> str | None:
        for prompt in prompts:
            if isinstance(prompt, int):
                result = await self.agi.say_number(prompt, escape)
            else:
                result = await self.agi.stream_file(prompt, escape)
            if result.digit:
                return result.digit
        return None

    def _attach(self) -> None:
        self.model.attach(self.call_id, acd=asdict(self.ticket))
