"""The ACD's actions on Asterisk outside a waiting caller's session: stopping a ring, and callbacks.

A CancelOffer (the agent logged out or went not ready while ringing) hangs up the agent's
ringing leg, which ends the holding session's Dial. A CallbackDial originates a call to the
customer (the agent is already reserved); OriginateResponse, or the DialEnd of the channel it
made, says busy, no answer or failed, and once the customer answers the dialplan's
``cti-callback`` context hands the call to the ``callback`` FastAGI route, which rings the
reserved agent and reports the talk's end.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from acd import CallbackDial, CallbackResult, CallCompleted, CancelOffer, Decision
from cti.acd_service import AcdService
from cti.agi.server import AgiHangup, AgiSession
from cti.ami.message import Message
from cti.callmodel.control import CallControl
from cti.callmodel.model import CallModel
from cti.queued_call import CallerDigit, QueueingSettings
from cti.sessions import InboundSessions

log = structlog.get_logger(__name__)

# OriginateResponse Reason (Asterisk's AST_CONTROL_* of the outcome) -> CallbackResult outcome.
_ORIGINATE_REASONS = {"4": "answered", "5": "busy", "3": "no_answer", "1": "no_answer"}
# Asterisk 22 reports a busy customer as Reason 0 (failure): the DialEnd of the originated channel
# says BUSY. It is raised on another of Asterisk's threads, so it may come just after the
# OriginateResponse: a failure without it waits for it this long.
_DIAL_STATUSES = {"BUSY": "busy", "NOANSWER": "no_answer"}
DIAL_END_WAIT_S = 1.0
CALLBACK_CONTEXT = "cti-callback"


class AcdDialer:
    def __init__(self, acd: AcdService, model: CallModel, control_for: Callable[[str], CallControl | None],
                 settings: QueueingSettings, system_of: Callable[[str], str | None]) -> None:
        self.acd = acd
        self.system_of = system_of
        self.model = model
        self.control_for = control_for
        self.settings = settings
        self._originations: dict[str, _Origination] = {}  # by ActionID, also the channel's Uniqueid
        self._action_prefix = f"cti-cb-{secrets.token_hex(3)}-"
        self._numbers = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()

    def on_decision(self, decision: Decision) -> None:
        if isinstance(decision, CancelOffer):
            self._spawn(self._stop_ring(decision))
        elif isinstance(decision, CallbackDial):
            self._spawn(self._dial_customer(decision))

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- stopping a ring ---

    async def _stop_ring(self, cancel: CancelOffer) -> None:
        call = self.model.call(cancel.call_id)
        control = self.control_for(cancel.call_id.partition(":")[0])
        if call is None or control is None:
            return
        held_on = call.data.get("agi_channel")
        for channel in list(call.channels.values()):
            if channel.name != held_on and channel.bridge_id is None:
                await _quietly(control.hangup(channel.name), "acd.stop_ring_failed", channel=channel.name)

    # --- callbacks ---

    async def _dial_customer(self, dial: CallbackDial) -> None:
        control = self.control_for(dial.callback_id.partition(":")[0])
        action_id = f"{self._action_prefix}{next(self._numbers)}"
        self._originations[action_id] = _Origination(dial.callback_id)
        sent = control is not None and await _quietly(control.originate(
            self.settings.outbound_interface.format(number=dial.number), CALLBACK_CONTEXT, "s",
            caller_id=f"<{dial.number}>", action_id=action_id, channel_id=action_id,
            variables={"CTI_CALLBACK_ID": dial.callback_id, "CTI_AGENT": dial.agent_id, "CTI_QUEUE": dial.queue},
            timeout_ms=30_000), "acd.callback_originate_failed", callback_id=dial.callback_id)
        if not sent:
            self._originations.pop(action_id, None)
            self.acd.submit(CallbackResult(dial.callback_id, "failed"))

    def on_ami_event(self, server: str, message: Message) -> None:
        """AMI events the ACD needs: a waiting caller's digits, and callbacks' OriginateResponse."""
        name = message.event or ""
        if name == "DTMFEnd" and message.get("Direction") == "Received":
            call_id = f"{self.system_of(server)}:{message.get('Linkedid', '')}"
            self.acd.post(call_id, CallerDigit(message.get("Channel", ""), message.get("Digit", "")))
        elif name == "DialEnd":
            self._dial_ended(message.get("DestUniqueid", ""), message.get("DialStatus", ""))
        elif name == "OriginateResponse":
            self._originated(message)

    def _dial_ended(self, channel_id: str, status: str) -> None:
        origination = self._originations.get(channel_id)
        if origination is None:
            return
        origination.dial_status = status
        if origination.waiting is not None:
            self._settle(channel_id)

    def _originated(self, message: Message) -> None:
        action_id = message.get("ActionID", "")  # also the originated channel's Uniqueid
        origination = self._originations.get(action_id)
        if origination is None:
            return
        if message.get("Response", "").lower() == "success":
            origination.outcome = "answered"
        else:
            origination.outcome = _ORIGINATE_REASONS.get(message.get("Reason", ""))
        if origination.outcome is None and origination.dial_status is None:
            origination.waiting = asyncio.get_running_loop().call_later(DIAL_END_WAIT_S, self._settle, action_id)
        else:
            self._settle(action_id)

    def _settle(self, channel_id: str) -> None:
        origination = self._originations.pop(channel_id)
        if origination.waiting is not None:
            origination.waiting.cancel()
        outcome = origination.outcome or _DIAL_STATUSES.get(origination.dial_status or "", "failed")
        self.acd.submit(CallbackResult(origination.callback_id, outcome))

    async def callback_session(self, session: AgiSession) -> None:
        """The customer answered a callback: ring the reserved agent and report the talk's end."""
        callback_id = await session.get_variable("CTI_CALLBACK_ID") or ""
        agent_id = await session.get_variable("CTI_AGENT") or ""
        queue = await session.get_variable("CTI_QUEUE") or ""
        call_id = await InboundSessions.identify(session)
        self.model.attach(call_id, agi_channel=session.channel, direction="out",
                          acd={"queue": queue, "agents": [agent_id], "callback_for": callback_id,
                               "outcome": "completed"})
        try:
            ring = self.acd.definitions.queue(queue).ring_timeout
            await session.exec("Dial", self.acd.agent_interface(agent_id), str(math.ceil(ring)), "g")
        except AgiHangup:
            pass
        finally:
            self.acd.submit(CallCompleted(callback_id))


@dataclass
class _Origination:
    """A callback's Originate, from its sending to its outcome."""

    callback_id: str
    outcome: str | None = None  # from the OriginateResponse, when its Reason says
    dial_status: str | None = None  # from the originated channel's DialEnd
    waiting: asyncio.TimerHandle | None = None  # a failure waiting for its DialEnd


async def _quietly(awaitable, event: str, **context) -> bool:
    """Run an AMI action whose failure is logged, not raised: the engine already moved on."""
    try:
        await awaitable
    except Exception as error:
        log.warning(event, error=str(error), **context)
        return False
    return True
