"""Agent desktops: the desks of logged-in agents, fed by the ACD, the call model and the AMI. The
protocol is docs/API.md's "Agent desktop"; the commands agents send are cti.desktop.commands.

What the desks listen to:
- the ACD's decisions: an Offer pops the call on the offered agent's desk (before the phone is
  answered), a CancelOffer withdraws it, a CallbackDial pops the callback, agent state changes
  are pushed, and an engine wrap-up starts the wrap-up form with its timer;
- the AMI: DialBegin names the agent's leg (its DialString is the agent's interface), DialEnd
  says a ring failed, Hangup ends a leg (the call model publishes no per-channel hangup);
- the call model's bus: a desk's leg in a bridge with a channel no desk owns is talking with
  the customer; in a bridge with another desk's leg it is a consultation between agents.

The ACD engine knows one agent per call. An agent receiving a transfer, or dialling out, is
kept out of routing by the desk with AgentNotReady("transfer" / "outbound"), and put back in
the state it had (or chose meanwhile) after that call's wrap-up; the engine's own wrap-up
applies to the calls it offered. A transfer ends the first agent's part: its session reports
CallCompleted, so the first agent goes into the engine's wrap-up.

Each agent's disposition, notes, hold and wrap-up time go into the call's interaction record
(CallRecorder.amend): ``disposition_code`` is the last agent's, ``disposition_notes`` lists every
agent's notes, ``hold_seconds`` and ``wrapup_seconds`` add up, ``data["desktops"]`` keeps each
agent's part.

A desk is saved with its session (the agent's settled state, a call in progress with its pop),
so a restarted daemon shows the call again when the desktop reconnects, if its leg is still up.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from acd import (AcdError, AgentLogin, AgentLogout, AgentNotReady, AgentReady, AgentState, AgentStateChanged,
                 CallbackDial, CancelOffer, Decision, Offer)
from cti.acd_service import AcdService
from cti.ami.message import Message
from cti.callmodel.bus import EventBus, Subscription
from cti.callmodel.events import CallBridged
from cti.callmodel.model import CallModel
from cti.desktop.commands import READY, DeskCommands
from cti.desktop.desk import CallKind, CallState, Desk, DeskCall, Frame, Refused, WrapUp
from cti.desktop.pbx import Pbx
from cti.desktop.pop import PopBuilder, transferred_pop
from cti.desktop.sessions import AgentSessions, Login
from cti.http import ws
from cti.link import AmiLink
from cti.queued_call import Requeue
from crm_bridge.interactions import InteractionOutcome

__all__ = ["AgentDesks", "DeskSettings", "Refused"]

log = structlog.get_logger(__name__)

# Not-ready reasons the desk sets itself while the agent is on a call the engine does not know.
TRANSFER_REASON, RESTORED_REASON = "transfer", "call in progress"
AWAY_REASON = "desktop closed"  # an available agent's desktop was gone too long
# Calls whose agents' parts are kept for amending their record (a wrap-up is minutes long).
REMEMBERED_CALLS = 4096
TAKEN_OVER_CLOSE_CODE = 4001
LOGGED_OUT_CLOSE_CODE = 4002


@dataclass(frozen=True)
class DeskSettings:
    # Dial string of outside numbers, "{number}" replaced (acd.outbound_interface): click-to-dial.
    outbound_interface: str = ""
    not_ready_reasons: tuple[str, ...] = ("break", "lunch", "meeting", "training", "coaching", "admin")
    # Wrap-up after a click-to-dial call (the ACD's queues set it for their calls).
    outbound_wrap_up_seconds: float = 60.0
    # An available agent whose desktop has been gone this long is set not ready (AWAY_REASON).
    away_after_seconds: float = 60.0


Dispositions = Callable[[], Awaitable[list[dict[str, str]]]]


class AgentDesks:
    def __init__(self, acd: AcdService, model: CallModel, links: Mapping[str, AmiLink], sessions: AgentSessions,
                 pops: PopBuilder, dispositions: Dispositions, *, recorder=None,
                 settings: DeskSettings = DeskSettings(), clock: Callable[[], float] = time.time) -> None:
        self.acd = acd
        self.model = model
        self.links = links
        self.sessions = sessions
        self.pops = pops
        self.recorder = recorder
        self.settings = settings
        self.clock = clock
        self._load_dispositions = dispositions
        self.dispositions: list[dict[str, str]] = []
        self._desks: dict[str, Desk] = {}
        self._legs: dict[str, str] = {}                 # agent leg channel -> agent id
        self._by_call: dict[str, set[str]] = {}         # call id -> agents with it on their desk
        self._handling: OrderedDict[str, dict[str, dict]] = OrderedDict()  # call id -> agent -> its part
        self._unsaved: set[str] = set()
        self._saver: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._unsubscribe: list[Callable[[], None]] = []
        self._closing = False
        self.pbx = Pbx(links)
        self.commands = DeskCommands(self)

    # --- wiring ---

    async def start(self, bus: EventBus) -> None:
        self.dispositions = await self._load_dispositions()
        self._unsubscribe.append(self.acd.listen(self.on_decision))
        subscription: Subscription = bus.subscribe(self.on_call_event, (CallBridged,))
        self._unsubscribe.append(subscription.unsubscribe)
        for link in self.links.values():
            link.client.on_event(self.on_ami_event)

    async def close_sockets(self) -> None:
        """The daemon stops: every desktop is told to reconnect to its successor (the HTTP
        server's shutdown, cti.http.desktop_api); no desk counts as gone for that."""
        self._closing = True
        for desk in self._desks.values():
            desk.stay()
        await ws.going_away([socket for desk in self._desks.values() for socket in desk.sockets])

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        await self.close_sockets()
        if self._saver is not None:
            await self._saver

    # --- sessions ---

    async def login(self, agent_id: str, secret: str) -> Login | None:
        login = await self.sessions.login(agent_id, secret)
        if login is None:
            return None
        self.dispositions = await self._load_dispositions()
        desk = await self.desk(agent_id)
        await self._take_over(desk, "another login as this agent took over")
        return login

    def logged_in(self) -> list[Desk]:
        return list(self._desks.values())

    def desk_of(self, agent_id: str) -> Desk | None:
        return self._desks.get(agent_id)

    async def desk(self, agent_id: str) -> Desk:
        """The agent's desk; after a daemon restart, rebuilt from its session."""
        desk = self._desks.get(agent_id)
        if desk is not None:
            return desk
        definition = self.acd.definitions.agent(agent_id)
        desk = self._desks[agent_id] = Desk(agent_id, definition.name, definition.interface)
        saved = await self.sessions.store.desk(agent_id)
        self.acd.submit(AgentLogin(agent_id))
        desk.engine_state = self.engine_state(agent_id)
        self._restore(desk, saved)
        return desk

    async def connect(self, agent_id: str, socket: web.WebSocketResponse) -> None:
        desk = await self.desk(agent_id)
        await self._take_over(desk, "this agent's desktop was opened elsewhere")
        desk.sockets.append(socket)
        desk.stay()
        await ws.send(socket, "hello", **self.hello(desk))

    def disconnect(self, agent_id: str, socket: web.WebSocketResponse) -> None:
        desk = self._desks.get(agent_id)
        if desk is not None and socket in desk.sockets:
            desk.sockets.remove(socket)
            if not desk.sockets and not self._closing:
                desk.leave(self.settings.away_after_seconds, lambda: self._desk_gone(desk))

    def _desk_gone(self, desk: Desk) -> None:
        """The agent's desktop stayed away: stop offering calls to a phone nobody watches."""
        if self._desks.get(desk.agent_id) is desk and self.engine_state(desk.agent_id) is AgentState.AVAILABLE:
            log.info("desk.away", agent=desk.agent_id, after_seconds=self.settings.away_after_seconds)
            self.acd.submit(AgentNotReady(desk.agent_id, AWAY_REASON))

    async def logout(self, agent_id: str) -> None:
        """Raises Refused while the agent has a call or is in wrap-up time."""
        desk = self._desks.get(agent_id)
        state = self.engine_state(agent_id)
        if (desk and desk.call) or state in (AgentState.RESERVED, AgentState.ON_CALL):
            raise Refused("on_call", "you are on a call: hang up (or transfer it) before logging out")
        if state is AgentState.WRAP_UP or (desk and desk.wrapup and desk.wrapup.closed_at is None):
            raise Refused("wrap_up", "finish the wrap-up of your last call before logging out")
        if desk is not None:
            self.close_wrapup(desk)
            for socket in list(desk.sockets):
                await ws.send(socket, "logged_out", message="logged out")
                await socket.close(code=LOGGED_OUT_CLOSE_CODE, message=b"logged out")
            desk.stay()
            del self._desks[agent_id]
        self.acd.submit(AgentLogout(agent_id))
        await self.sessions.logout(agent_id)

    async def _take_over(self, desk: Desk, message: str) -> None:
        for socket in list(desk.sockets):
            await ws.send(socket, "taken_over", message=message)
            await socket.close(code=TAKEN_OVER_CLOSE_CODE, message=b"taken over")
        desk.sockets.clear()

    def hello(self, desk: Desk) -> dict[str, Any]:
        return {"agent": {"id": desk.agent_id, "name": desk.name}, "state": self._state_view(desk.agent_id),
                "call": desk.call.view(with_pop=True) if desk.call else None,
                "wrapup": desk.wrapup.view() if desk.wrapup else None,
                "reasons": list(self.settings.not_ready_reasons), "dispositions": self.dispositions,
                "outbound": bool(self.settings.outbound_interface)}

    async def command(self, agent_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """Carry out one command of the agent's desktop (cti.desktop.commands); Refused says why not."""
        desk = self._desks.get(agent_id)
        if desk is None:
            raise Refused("not_logged_in", "log in again")
        return await self.commands.run(desk, command)

    # --- what the ACD decides ---

    def on_decision(self, decision: Decision) -> None:
        if isinstance(decision, AgentStateChanged):
            self._state_changed(decision)
        elif isinstance(decision, Offer):
            self._offered(decision)
        elif isinstance(decision, CancelOffer):
            desk = self._desks.get(decision.agent_id)
            if desk and desk.call and desk.call.call_id == decision.call_id and desk.call.state is CallState.RINGING:
                self.drop(desk, "missed")
        elif isinstance(decision, CallbackDial):
            self._callback(decision)

    def _offered(self, offer: Offer) -> None:
        desk = self._desks.get(offer.agent_id)
        if desk is None:
            return
        model_call = self.model.call(offer.call_id)
        call = DeskCall(offer.call_id, CallKind.INBOUND, offer.queue, engine_call=True, offered_at=self.clock(),
                        customer_channel=model_call.data.get("agi_channel") if model_call else None)
        self.begin(desk, call, self.pops.build(offer.call_id, CallKind.INBOUND, offer.data, queue=offer.queue,
                                               wait_seconds=offer.wait_seconds))

    def _callback(self, dial: CallbackDial) -> None:
        desk = self._desks.get(dial.agent_id)
        if desk is None:
            return
        call = DeskCall(dial.callback_id, CallKind.CALLBACK, dial.queue, engine_call=True, offered_at=self.clock())
        self.begin(desk, call, self.pops.build(dial.callback_id, CallKind.CALLBACK, {"ani": dial.number},
                                               queue=dial.queue))

    def _state_changed(self, change: AgentStateChanged) -> None:
        desk = self._desks.get(change.agent_id)
        if desk is None:
            return
        previous, desk.engine_state = desk.engine_state, change.state
        desk.push("state", **self._state_view(change.agent_id, change))
        call = desk.call
        if call and call.engine_call and call.state is CallState.RINGING \
                and change.state not in (AgentState.RESERVED, AgentState.ON_CALL):
            self.drop(desk, "missed")
        elif change.state is AgentState.WRAP_UP or previous == AgentState.ON_CALL:
            self._engine_wrapup(desk, change)
        elif previous == AgentState.WRAP_UP and desk.wrapup and desk.wrapup.closed_at is None:
            desk.wrapup.closed_at = self.clock()  # the engine's wrap-up time is over; the form stays
            self.record_part(desk, desk.wrapup.call)
        self.save(desk)

    def _engine_wrapup(self, desk: Desk, change: AgentStateChanged) -> None:
        """The engine ended the agent's call: its wrap-up (none when the queue has no wrap-up time)."""
        call = desk.call if desk.call and desk.call.engine_call else desk.finished
        if call is None or not call.engine_call or call.connected_at is None:
            return
        started = self.acd.wall_time(change.since)
        seconds = self._queue_wrap_up(call.queue) if change.state is AgentState.WRAP_UP else 0.0
        self._start_wrapup(desk, call, started, started + seconds)

    # --- what the AMI says about the agents' legs ---

    def on_ami_event(self, server: str, message: Message) -> None:
        name = message.event or ""
        if name == "DialBegin":
            self._dial_began(server, message)
        elif name == "DialEnd" and message.get("DialStatus") != "ANSWER":
            self._ring_failed(message.get("DestChannel", ""))
        elif name == "Hangup":
            self._hung_up(server, message)

    def _dial_began(self, server: str, message: Message) -> None:
        link = self.links.get(server)
        call_id = f"{link.client.system_name if link else server}:{message.get('DestLinkedid', '')}"
        dialled, leg = message.get("DialString", ""), message.get("DestChannel", "")
        for desk in self._desks_ringing(call_id):
            if desk.interface.partition("/")[2] == dialled:
                self._bind_leg(desk, leg, call_id)
                return

    def _desks_ringing(self, call_id: str) -> list[Desk]:
        """Desks whose phone is being rung for ``call_id``; a callback's call is a new one."""
        desks = [self._desks[agent] for agent in self._by_call.get(call_id, ())]
        desks += [desk for desk in self._desks.values() if desk.call and desk.call.kind is CallKind.CALLBACK]
        return [desk for desk in desks if desk.call.state is CallState.RINGING and desk.call.channel is None]

    def _bind_leg(self, desk: Desk, leg: str, call_id: str) -> None:
        call = desk.call
        if call.call_id != call_id:  # a callback: the customer's leg is a new call
            self._detach(desk)
            call.call_id = call_id
            if call.pop is not None:
                call.pop["call_id"] = call_id
            desk.call = call
            self._by_call.setdefault(call_id, set()).add(desk.agent_id)
        call.channel = leg
        self._legs[leg] = desk.agent_id

    def _ring_failed(self, leg: str) -> None:
        desk = self._desks.get(self._legs.get(leg, ""))
        if desk and desk.call and desk.call.channel == leg and desk.call.state is CallState.RINGING:
            self.drop(desk, "missed")

    def _hung_up(self, server: str, message: Message) -> None:
        channel = message.get("Channel", "")
        desk = self._desks.get(self._legs.pop(channel, ""))
        if desk is not None:
            self._leg_gone(desk, channel)
        link = self.links.get(server)
        call_id = f"{link.client.system_name if link else server}:{message.get('Linkedid', '')}"
        for agent_id in list(self._by_call.get(call_id, ())):
            other = self._desks[agent_id]
            if other.call and other.call.customer_channel == channel:
                self._customer_gone(other)

    def _leg_gone(self, desk: Desk, leg: str) -> None:
        call = desk.call
        if call is None or call.channel != leg:
            return
        call.channel = None
        if call.connected_at is None:
            self.drop(desk, "missed" if call.state is CallState.RINGING else "consult_ended")
            return
        if call.state in (CallState.HELD, CallState.CONSULTING) and call.queue and not call.customer_left:
            # The agent's phone dropped while the customer waited on hold: back to the queue.
            self.acd.post(call.call_id, Requeue(call.queue))
        self.end(desk, "ended")

    def _customer_gone(self, desk: Desk) -> None:
        call = desk.call
        call.customer_left = True
        if call.state is CallState.HELD and call.channel:  # nobody left to talk to: the parked leg goes
            leg = call.channel
            self._spawn(self.pbx.quietly(call.call_id, lambda control: control.hangup(leg)))
        else:
            self.push_call(desk, "customer_left")

    # --- what the call model says: who talks with whom ---

    def on_call_event(self, event: CallBridged) -> None:
        channels = event.bridge_channels
        if len(channels) < 2:
            return
        customer_side = [channel for channel in channels if channel not in self._legs]
        for channel in channels:
            desk = self._desks.get(self._legs.get(channel, ""))
            if desk is None or desk.call is None or desk.call.channel != channel:
                continue
            if customer_side:
                self._connected(desk, customer_side[0])
            else:
                self._consulting(desk)

    def _connected(self, desk: Desk, customer_channel: str) -> None:
        call = desk.call
        if call.state is CallState.CONNECTED:
            return
        now = self.clock()
        first = call.connected_at is None
        call.stop_hold(now)
        call.state, call.consult = CallState.CONNECTED, None
        call.customer_channel = call.customer_channel or customer_channel
        if first:
            call.connected_at = now
            if call.kind is CallKind.OUTBOUND:
                self.amend_record(call.call_id, outcome=InteractionOutcome.COMPLETED,
                                  customer_id=((call.pop or {}).get("customer") or {}).get("id"))
        self.push_call(desk, "connected" if first else "resumed")
        if call.transferred_from:
            self._handed_over(call.transferred_from, call)
        self.save(desk)

    def _consulting(self, desk: Desk) -> None:
        call = desk.call
        if call.kind is CallKind.TRANSFER and call.state is CallState.RINGING:
            call.state = CallState.CONSULTING
        elif call.state is CallState.CONSULTING and call.consult and not call.consult.answered:
            call.consult.answered = True
        else:
            return
        self.push_call(desk, "consult_connected")

    def _handed_over(self, agent_id: str, received: DeskCall) -> None:
        """The customer now talks with the agent the call was handed to: the first agent's leg goes."""
        desk = self._desks.get(agent_id)
        call = desk.call if desk else None
        if call is None or call.call_id != received.call_id or call.state is not CallState.COMPLETING:
            return
        leg = call.channel
        self.end(desk, "transferred")
        if leg:
            self._spawn(self.pbx.quietly(call.call_id, lambda control: control.hangup(leg)))

    # --- a call on a desk: beginning, transfer, end ---

    def begin(self, desk: Desk, call: DeskCall, pop: Awaitable[dict]) -> None:
        """The call pops on the desk: once, at offer time, and never after it ended."""
        self.close_wrapup(desk)
        desk.call, desk.finished = call, None
        self._by_call.setdefault(call.call_id, set()).add(desk.agent_id)
        pop_task = asyncio.ensure_future(pop)

        async def offer_frame() -> Frame | None:
            call.pop = await pop_task
            self.save(desk)
            return ("offer", {"call": call.view(with_pop=True)}) if desk.call is call else None

        desk.push_when_ready(offer_frame())
        self.save(desk)

    def hand_to(self, target: Desk, desk: Desk, call: DeskCall, note: str, attended: bool) -> None:
        """The other agent's desk pops with this call's data and the note; it is out of routing."""
        received = DeskCall(call.call_id, CallKind.TRANSFER, call.queue, engine_call=False, offered_at=self.clock(),
                            customer_channel=call.customer_channel, transferred_from=desk.agent_id)

        async def same_pop() -> dict:
            return transferred_pop(call.pop or {}, desk.agent_id, desk.name, note, attended)

        self.begin(target, received, same_pop())
        self.out_of_routing(target, TRANSFER_REASON)

    def drop(self, desk: Desk, event: str) -> None:
        """The call leaves the desk without a talk with the customer: no wrap-up."""
        call = desk.call
        self._detach(desk)
        self._push_call_view(desk, call, event)
        self._back_in_routing(desk)
        if call.transferred_from:
            self._consult_over(call.transferred_from, call)
        self.save(desk)

    def _consult_over(self, agent_id: str, received: DeskCall) -> None:
        """The consulted agent's leg is gone before the transfer completed."""
        desk = self._desks.get(agent_id)
        call = desk.call if desk else None
        if call is None or call.call_id != received.call_id or call.state not in (CallState.CONSULTING,
                                                                                   CallState.COMPLETING):
            return
        if call.state is CallState.COMPLETING:  # the customer could not be bridged to them
            leg = call.channel
            self.end(desk, "ended")
            if leg:
                self._spawn(self.pbx.quietly(call.call_id, lambda control: control.hangup(leg)))
            return
        call.consult, call.state = None, CallState.HELD  # this agent's leg waits in cti-consult
        self.push_call(desk, "consult_ended")

    def end(self, desk: Desk, event: str) -> None:
        """The agent's part of a call it talked on is over: wrap-up (the engine's, or the desk's)."""
        call = desk.call
        call.ended_at = self.clock()
        call.stop_hold(call.ended_at)
        self._detach(desk)
        desk.finished = call
        self._push_call_view(desk, call, event)
        self.record_part(desk, call)
        if not call.engine_call:
            seconds = self._queue_wrap_up(call.queue) if call.queue else self.settings.outbound_wrap_up_seconds
            self._start_wrapup(desk, call, call.ended_at, call.ended_at + seconds)
        self.save(desk)

    def _detach(self, desk: Desk) -> None:
        call = desk.call
        desk.call = None
        if call.channel:
            self._legs.pop(call.channel, None)
        agents = self._by_call.get(call.call_id)
        if agents is not None:
            agents.discard(desk.agent_id)
            if not agents:
                del self._by_call[call.call_id]

    # --- wrap-up ---

    def _start_wrapup(self, desk: Desk, call: DeskCall, started: float, ends_at: float) -> None:
        if desk.wrapup and desk.wrapup.call is call:
            return
        self.close_wrapup(desk)
        desk.finished = None
        desk.wrapup = WrapUp(call, started, ends_at)
        if not call.engine_call:
            delay = max(0.0, ends_at - self.clock())
            desk.wrapup.timer = asyncio.get_running_loop().call_later(delay, self._wrapup_time_over, desk,
                                                                      desk.wrapup)
        elif ends_at <= started:
            desk.wrapup.closed_at = started  # the queue has no wrap-up time: the engine freed the agent
        desk.push("wrapup", wrapup=desk.wrapup.view())
        self.save(desk)

    def _wrapup_time_over(self, desk: Desk, wrapup: WrapUp) -> None:
        if desk.wrapup is wrapup and wrapup.closed_at is None:
            wrapup.closed_at = self.clock()
            self.record_part(desk, wrapup.call)
            self._back_in_routing(desk)

    def close_wrapup(self, desk: Desk) -> None:
        """The wrap-up form goes (ended by the agent, or a new call came): its figures are recorded."""
        wrapup = desk.wrapup
        if wrapup is None:
            return
        desk.wrapup = None
        if wrapup.timer is not None:
            wrapup.timer.cancel()
        if wrapup.closed_at is None:
            wrapup.closed_at = self.clock()
            if not wrapup.call.engine_call:
                self._back_in_routing(desk)
        self.record_part(desk, wrapup.call, wrapup)
        desk.push("wrapup", wrapup=None)

    def _queue_wrap_up(self, queue: str | None) -> float:
        settings = self.acd.definitions.queue(queue) if queue else None
        return settings.wrap_up_seconds if settings else 0.0

    # --- routing around calls the engine does not know ---

    def out_of_routing(self, desk: Desk, reason: str) -> None:
        if desk.restore_to is None:
            snapshot = self.acd.engine.agent_snapshot(desk.agent_id, self.acd.now())
            desk.restore_to = READY if snapshot.state is AgentState.AVAILABLE else ("not_ready", snapshot.reason)
        self.acd.submit(AgentNotReady(desk.agent_id, reason))

    def _back_in_routing(self, desk: Desk) -> None:
        """After a call the engine did not know: the state the agent had, or chose meanwhile."""
        if desk.restore_to is None or (desk.call and not desk.call.engine_call):
            return
        if desk.wrapup and desk.wrapup.closed_at is None and not desk.wrapup.call.engine_call:
            return
        state, desk.restore_to = desk.restore_to, None
        self.submit_state(desk.agent_id, state)

    def submit_state(self, agent_id: str, state: tuple[str, str]) -> None:
        kind, reason = state
        self.acd.submit(AgentReady(agent_id) if kind == "ready" else AgentNotReady(agent_id, reason))

    def engine_state(self, agent_id: str) -> AgentState:
        try:
            return self.acd.engine.agent_state(agent_id)
        except AcdError:
            return AgentState.LOGGED_OUT

    def _state_view(self, agent_id: str, change: AgentStateChanged | None = None) -> dict[str, Any]:
        if change is None:
            try:
                change = self.acd.engine.agent_snapshot(agent_id, self.acd.now())
            except AcdError:
                return {"state": AgentState.LOGGED_OUT, "reason": "", "since": None}
        return {"state": change.state, "reason": change.reason, "since": self.acd.wall_time(change.since)}

    # --- the interaction record ---

    def record_part(self, desk: Desk, call: DeskCall, wrapup: WrapUp | None = None) -> None:
        """This agent's part of the call (disposition, notes, hold, wrap-up) into the record."""
        wrapup = wrapup or (desk.wrapup if desk.wrapup and desk.wrapup.call is call else None)
        parts = self._handling.setdefault(call.call_id, {})
        self._handling.move_to_end(call.call_id)
        while len(self._handling) > REMEMBERED_CALLS:
            self._handling.popitem(last=False)
        parts[desk.agent_id] = {"disposition": call.disposition, "notes": call.notes,
                                "hold_seconds": round(call.hold_seconds, 3),
                                "wrapup_seconds": round(wrapup.seconds, 3) if wrapup else None}
        codes = [part["disposition"] for part in parts.values() if part["disposition"]]
        notes = "\n".join(f"{agent}: {part['notes']}" for agent, part in parts.items() if part["notes"])
        self.amend_record(
            call.call_id, disposition_code=codes[-1] if codes else None, disposition_notes=notes or None,
            hold_seconds=sum(part["hold_seconds"] for part in parts.values()) or None,
            wrapup_seconds=sum(part["wrapup_seconds"] or 0 for part in parts.values()) or None,
            data={"desktops": dict(parts)})

    def amend_record(self, call_id: str, **fields: Any) -> None:
        if self.recorder is not None:
            self.recorder.amend(call_id, **fields)

    # --- restart: the desk as it was saved ---

    def save(self, desk: Desk) -> None:
        self._unsaved.add(desk.agent_id)
        if self._saver is None:
            self._saver = asyncio.get_running_loop().create_task(self._save_all())

    async def _save_all(self) -> None:
        """Write the latest state of every changed desk; a burst of changes is one write per desk."""
        try:
            while self._unsaved:
                agent_id = self._unsaved.pop()
                desk = self._desks.get(agent_id)
                if desk is None:
                    continue
                try:
                    await self.sessions.store.save_desk(agent_id, self._saved(desk))
                except Exception as error:
                    log.warning("desk.save_failed", agent=agent_id, error=str(error))
        finally:
            self._saver = None

    def _saved(self, desk: Desk) -> dict[str, Any]:
        if desk.restore_to is not None:
            settled = desk.restore_to
        elif desk.engine_state == AgentState.NOT_READY:
            settled = ("not_ready", self._state_view(desk.agent_id)["reason"])
        else:
            settled = READY
        return {"settled": list(settled), "call": desk.call.saved() if desk.call and desk.call.channel else None}

    def _restore(self, desk: Desk, saved: dict[str, Any]) -> None:
        """After a restart: the call in progress if its leg is still up, and the agent's state."""
        settled = tuple(saved.get("settled") or ("not_ready", "logged in"))
        call = self._surviving_call(saved.get("call"))
        if call is None:
            if settled != ("not_ready", "logged in"):
                self.submit_state(desk.agent_id, settled)
            return
        desk.call, desk.restore_to = call, settled
        self._legs[call.channel] = desk.agent_id
        self._by_call.setdefault(call.call_id, set()).add(desk.agent_id)
        self.acd.submit(AgentNotReady(desk.agent_id, RESTORED_REASON))

    def _surviving_call(self, saved: dict[str, Any] | None) -> DeskCall | None:
        if not saved or not saved.get("channel"):
            return None
        live = self.model.call(saved["call_id"])
        if live is None or saved["channel"] not in {channel.name for channel in live.channels.values()}:
            return None
        fields = {key: saved.get(key) for key in ("call_id", "queue", "offered_at", "channel", "customer_channel",
                                                   "pop", "connected_at", "transferred_from", "notes")}
        state = CallState.CONNECTED if saved.get("connected_at") else CallState.RINGING
        return DeskCall(kind=CallKind(saved["kind"]), engine_call=False, state=state,
                        disposition=saved.get("disposition"), **fields)

    # --- small helpers ---

    def push_call(self, desk: Desk, event: str) -> None:
        self._push_call_view(desk, desk.call, event)

    @staticmethod
    def _push_call_view(desk: Desk, call: DeskCall, event: str) -> None:
        desk.push("call", event=event, active=desk.call is call, call=call.view())

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
