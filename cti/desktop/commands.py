"""What an agent's desktop asks (docs/API.md, "Agent desktop"): each command checked (arguments, the
call is the agent's own, the call's state) and carried out, or refused with a code and a reason.

A queued caller is held by its FastAGI session (cti.queued_call): a command posts a TalkCommand
to that session *before* the AMI action that ends the current stretch of talk (redirecting or
hanging up the agent's leg), and the session plays music, bridges the caller back, or hands
them on. Click-to-dial calls have no session: they are held with CallControl's hold/unhold.

Attended transfer: the customer goes on hold in the session, the first agent's leg is
redirected to the dialplan's ``cti-consult`` context, which dials the second agent's interface
(set on the leg with Setvar first: a Redirect cannot carry variables). Complete bridges the
customer with the second agent's leg, then hangs up the first agent's; cancel hangs up the
consultation and bridges the customer back with the first agent.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from acd import AgentState, WrapUpDone
from cti.callmodel.control import CallControl
from cti.desktop.desk import CallKind, CallState, Consult, Desk, DeskCall, Refused
from cti.queued_call import DialAgent, DialNumber, Hold, Reconnect, Requeue, TalkCommand
from crm_bridge.interactions import InteractionOutcome

if TYPE_CHECKING:
    from cti.desktop.service import AgentDesks

HOLDING_CONTEXT = "cti-holding"
CONSULT_CONTEXT = "cti-consult"
DIAL_OUT_CONTEXT = "cti-dial-out"
OUTBOUND_REASON = "outbound"
READY = ("ready", "")
NUMBER = re.compile(r"\+?[0-9*#]{2,32}")
MAX_NOTES = 4000

Handler = Callable[[Desk, dict], Awaitable[dict | None]]


class DeskCommands:
    def __init__(self, desks: AgentDesks) -> None:
        self.desks = desks
        self.pbx = desks.pbx
        self.handlers: dict[str, Handler] = {
            "ready": self._ready, "not_ready": self._not_ready, "hangup": self._hangup, "hold": self._hold,
            "unhold": self._unhold, "transfer": self._transfer, "consult": self._consult,
            "complete_transfer": self._complete_transfer, "cancel_transfer": self._cancel_transfer,
            "dial": self._dial, "disposition": self._disposition, "end_wrapup": self._end_wrapup,
            "snapshot": self._snapshot,
        }

    async def run(self, desk: Desk, command: dict[str, Any]) -> dict[str, Any]:
        handler = self.handlers.get(command["type"])
        if handler is None:
            raise Refused("unknown_command", f"unknown command {command['type']!r}; "
                                             f"known: {', '.join(sorted(self.handlers))}")
        return await handler(desk, command) or {}

    async def _ready(self, desk: Desk, command: dict) -> dict | None:
        return self._choose_state(desk, READY)

    async def _not_ready(self, desk: Desk, command: dict) -> dict | None:
        reason, reasons = _text(command, "reason"), self.desks.settings.not_ready_reasons
        if reason not in reasons:
            raise Refused("unknown_reason", f"reason must be one of {', '.join(reasons)}")
        return self._choose_state(desk, ("not_ready", reason))

    def _choose_state(self, desk: Desk, state: tuple[str, str]) -> dict | None:
        if desk.restore_to is not None:
            desk.restore_to = state  # applied once the call the engine does not know is over
            self.desks.save(desk)
            return {"after_call": True}
        self.desks.submit_state(desk.agent_id, state)
        return None

    async def _hangup(self, desk: Desk, command: dict) -> None:
        call = self._own_call(desk, command, CallState.RINGING, CallState.CONNECTED, CallState.HELD)
        leg = _leg(call)
        if call.state is CallState.HELD and call.customer_channel:
            # The agent ends the call: the held customer goes, not back to a queue.
            call.customer_left = True
            await self.pbx.act(call.call_id, lambda control: control.hangup(call.customer_channel))
        await self.pbx.act(call.call_id, lambda control: control.hangup(leg))

    async def _hold(self, desk: Desk, command: dict) -> None:
        call = self._own_call(desk, command, CallState.CONNECTED)
        leg = _leg(call)
        if self.desks.acd.post(call.call_id, Hold()):
            await self._redirect_away(desk, call, lambda control: control.redirect(leg, HOLDING_CONTEXT, "s"))
        elif call.kind is CallKind.OUTBOUND and call.customer_channel:
            await self.pbx.act(call.call_id, lambda control: control.hold(call.customer_channel, leg))
        else:
            raise Refused("unavailable", "this call cannot be held from the desktop")
        self._now_held(desk, call, CallState.HELD, "held")

    async def _unhold(self, desk: Desk, command: dict) -> None:
        call = self._own_call(desk, command, CallState.HELD)
        await self._reconnect(desk, call)

    async def _transfer(self, desk: Desk, command: dict) -> None:
        """Blind transfer to an agent, a queue or a number."""
        call = self._own_call(desk, command, CallState.CONNECTED, CallState.HELD)
        self._needs_session(call)
        target, talk_command = self._transfer_target(desk, command)
        leg = _leg(call)
        if target is not None:
            self.desks.hand_to(target, desk, call, _optional_text(command, "note") or call.notes, attended=False)
        self.desks.acd.post(call.call_id, talk_command)
        self.desks.end(desk, "transferred")
        await self.pbx.act(call.call_id, lambda control: control.hangup(leg))

    def _transfer_target(self, desk: Desk, command: dict) -> tuple[Desk | None, TalkCommand]:
        given = [key for key in ("agent", "queue", "number") if key in command]
        if len(given) != 1:
            raise Refused("bad_request", "name exactly one of agent, queue or number")
        value = _text(command, given[0])
        if given[0] == "agent":
            return self._free_desk(value, desk), DialAgent(value)
        if given[0] == "queue":
            if self.desks.acd.definitions.queue(value) is None:
                raise Refused("unknown_queue", f"no queue {value!r}")
            return None, Requeue(value)
        return None, DialNumber(self._outside_number(value))

    async def _consult(self, desk: Desk, command: dict) -> None:
        """Attended transfer, first step: the customer on hold, the agent rings the other agent."""
        call = self._own_call(desk, command, CallState.CONNECTED, CallState.HELD)
        self._needs_session(call)
        target = self._free_desk(_text(command, "agent"), desk)
        note = _optional_text(command, "note") or call.notes
        leg = _leg(call)
        was_talking = call.state is CallState.CONNECTED
        if was_talking:
            self.desks.acd.post(call.call_id, Hold())
        self.desks.hand_to(target, desk, call, note, attended=True)
        call.consult = Consult(target.agent_id)
        self._now_held(desk, call, CallState.CONSULTING, "consult_ringing")

        async def ring_the_other_agent(control: CallControl) -> None:
            await control.set_variable(leg, "CTI_CONSULT_TARGET", target.interface)
            await control.redirect(leg, CONSULT_CONTEXT, "s")

        try:
            await self.pbx.act(call.call_id, ring_the_other_agent)
        except Refused:
            call.consult = None
            self.desks.drop(target, "cancelled")
            if was_talking:  # still bridged with the customer: the posted Hold must go nowhere
                self.desks.acd.post(call.call_id, Reconnect(leg, desk.agent_id))
                call.state, call.held_since = CallState.CONNECTED, None
                self.desks.push_call(desk, "resumed")
            raise

    async def _complete_transfer(self, desk: Desk, command: dict) -> None:
        call = self._own_call(desk, command, CallState.CONSULTING)
        target = self._consulted(call)
        if call.customer_left:
            raise Refused("customer_left", "the customer has hung up")
        if not call.consult.answered or target is None or target.call.channel is None:
            raise Refused("wrong_state", "the other agent has not answered yet: wait, or cancel")
        call.state = CallState.COMPLETING
        # The session bridges the customer with the other agent's leg; once that bridge is up
        # (on_call_event) this agent's leg is hung up.
        self.desks.acd.post(call.call_id, Reconnect(target.call.channel, target.agent_id))

    async def _cancel_transfer(self, desk: Desk, command: dict) -> None:
        call = self._own_call(desk, command, CallState.CONSULTING)
        target = self._consulted(call)
        call.consult = None
        call.state = CallState.HELD
        if target is not None:
            other_leg = target.call.channel
            self.desks.drop(target, "cancelled")
            if other_leg:
                await self.pbx.act(call.call_id, lambda control: control.hangup(other_leg))
        await self._reconnect(desk, call)

    async def _dial(self, desk: Desk, command: dict) -> dict:
        """Click-to-dial: ring the agent's phone, then the number."""
        number = self._outside_number(_text(command, "number"))
        if desk.call is not None:
            raise Refused("wrong_state", "you are on a call")
        if desk.wrapup and desk.wrapup.closed_at is None:
            raise Refused("wrong_state", "finish the wrap-up of your last call first")
        if self.desks.engine_state(desk.agent_id) not in (AgentState.AVAILABLE, AgentState.NOT_READY):
            raise Refused("wrong_state", "finish your current call and its wrap-up first")
        system, control = self.pbx.any_control()
        channel_id = f"cti-dial-{secrets.token_hex(8)}"
        call = DeskCall(f"{system}:{channel_id}", CallKind.OUTBOUND, None, engine_call=False,
                        offered_at=self.desks.clock())
        self.desks.begin(desk, call, self.desks.pops.build(call.call_id, CallKind.OUTBOUND, {"ani": number}))
        self.desks.out_of_routing(desk, OUTBOUND_REASON)
        self.desks.amend_record(call.call_id, direction="out", dnis=number, ani=None, agents=(desk.agent_id,),
                                outcome=InteractionOutcome.FAILED)
        try:
            await control.originate(
                desk.interface, DIAL_OUT_CONTEXT, "s", caller_id=f'"{number}" <{number}>',
                variables={"CTI_DIAL_OUT": self.desks.settings.outbound_interface.format(number=number),
                           "CTI_AGENT": desk.agent_id},
                channel_id=channel_id)
        except Exception as error:
            self.desks.drop(desk, "failed")
            raise Refused("failed", f"Asterisk refused the call: {error}") from None
        return {"call_id": call.call_id}

    async def _disposition(self, desk: Desk, command: dict) -> None:
        call_id = _text(command, "call_id")
        call = next((c for c in (desk.call, desk.wrapup and desk.wrapup.call) if c and c.call_id == call_id), None)
        if call is None:
            raise Refused("not_your_call", f"call {call_id} is not on your desk")
        if "code" in command:
            code = _optional_text(command, "code") or None
            if code is not None and code not in {item["code"] for item in self.desks.dispositions}:
                raise Refused("unknown_disposition", f"no disposition {code!r} in the catalogue")
            call.disposition = code
        if "notes" in command:
            call.notes = _optional_text(command, "notes", MAX_NOTES)
        self.desks.record_part(desk, call)
        self.desks.save(desk)

    async def _end_wrapup(self, desk: Desk, command: dict) -> None:
        wrapup = desk.wrapup
        if wrapup is None:
            raise Refused("wrong_state", "no wrap-up to end")
        if self.desks.dispositions and not wrapup.call.disposition:
            raise Refused("disposition_required", "choose a disposition first")
        if wrapup.call.engine_call and self.desks.engine_state(desk.agent_id) is AgentState.WRAP_UP:
            self.desks.acd.submit(WrapUpDone(desk.agent_id))
        self.desks.close_wrapup(desk)

    async def _snapshot(self, desk: Desk, command: dict) -> dict:
        return self.desks.hello(desk)

    # --- command helpers ---

    def _own_call(self, desk: Desk, command: dict, *states: CallState) -> DeskCall:
        call_id = _text(command, "call_id")
        call = desk.call
        if call is None or call.call_id != call_id:
            raise Refused("not_your_call", f"call {call_id} is not on your desk")
        if call.state not in states:
            raise Refused("wrong_state", f"the call is {call.state}; {command['type']} needs it "
                                         f"{' or '.join(states)}")
        return call

    def _needs_session(self, call: DeskCall) -> None:
        if not self.desks.acd.holding(call.call_id):
            raise Refused("unavailable", "only a call that came through a queue can be transferred")

    def _free_desk(self, agent_id: str, asking: Desk) -> Desk:
        """The desk of an agent who can take a transfer now: logged in, available, no call."""
        desk = self.desks.desk_of(agent_id)
        if desk is None or desk is asking:
            raise Refused("unknown_agent", f"agent {agent_id!r} is not at a desktop")
        if desk.call is not None or self.desks.engine_state(agent_id) is not AgentState.AVAILABLE:
            raise Refused("agent_busy", f"agent {agent_id} is not available")
        return desk

    def _outside_number(self, number: str) -> str:
        if not NUMBER.fullmatch(number):
            raise Refused("bad_number", "a number is 2-32 digits, * or #, with an optional leading +")
        if not self.desks.settings.outbound_interface:
            raise Refused("unavailable", "no outbound interface is configured (acd.outbound_interface)")
        return number

    def _consulted(self, call: DeskCall) -> Desk | None:
        target = self.desks.desk_of(call.consult.agent_id) if call.consult else None
        return target if target and target.call and target.call.call_id == call.call_id else None

    async def _redirect_away(self, desk: Desk, call: DeskCall, action) -> None:
        """Move the agent's leg out of the customer's bridge after a Hold was posted; if Asterisk
        refuses, a Reconnect follows the Hold so the session plays no music for nothing."""
        try:
            await self.pbx.act(call.call_id, action)
        except Refused:
            self.desks.acd.post(call.call_id, Reconnect(call.channel, desk.agent_id))
            raise

    async def _reconnect(self, desk: Desk, call: DeskCall) -> None:
        """Back to the customer: the session bridges them (the bridge event says "resumed")."""
        leg = _leg(call)
        if self.desks.acd.post(call.call_id, Reconnect(leg, desk.agent_id)):
            return
        if call.kind is CallKind.OUTBOUND and call.customer_channel:
            await self.pbx.act(call.call_id, lambda control: control.unhold(call.customer_channel, leg))
            return
        raise Refused("unavailable", "this call cannot be taken off hold from the desktop")

    def _now_held(self, desk: Desk, call: DeskCall, state: CallState, event: str) -> None:
        call.state = state
        if call.held_since is None:
            call.held_since = self.desks.clock()
        self.desks.push_call(desk, event)


def _leg(call: DeskCall) -> str:
    if call.channel is None:
        raise Refused("wrong_state", "the agent's phone leg is not known yet")
    return call.channel


def _text(command: dict, key: str, limit: int = 200) -> str:
    value = command.get(key)
    if not isinstance(value, str) or not value.strip():
        raise Refused("bad_request", f"{key!r} must be a non-empty string")
    if len(value) > limit:
        raise Refused("bad_request", f"{key!r} is longer than {limit} characters")
    return value.strip()


def _optional_text(command: dict, key: str, limit: int = MAX_NOTES) -> str:
    value = command.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Refused("bad_request", f"{key!r} must be a string")
    if len(value) > limit:
        raise Refused("bad_request", f"{key!r} is longer than {limit} characters")
    return value.strip()
