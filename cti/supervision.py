"""Supervisors on the live ACD: the wallboard they watch, the frames it sends, the actions they take.

``Wallboard`` listens to the AcdService: to its decisions, and to the events it handled (a call
queued while nobody is free makes no decision, yet it changes the queue). Each one marks the
queues and agents it touches. A supervisor who connects gets a full snapshot; everybody then gets
updates holding only what was marked since the previous frame, at most one frame per
``interval`` (the first change after a quiet spell goes out at once). Times are sent as epoch
``since`` stamps, so waits and times in state grow in the browser without a frame per second.
Queues are also refreshed every ``refresh_seconds`` because their sliding-window figures move
with time alone.

``Fanout`` serialises each frame once and hands the same text to every supervisor. Each one has
a bounded queue and its own writer, so a slow client delays nobody; one that falls behind loses
its queued frames and gets a fresh snapshot instead.

``SupervisorActions`` carries out supervisors' orders (skills, queue settings, not ready, logout,
move, priority, listen/whisper/barge), logs each with who gave it, and raises ``ActionError``s
that the HTTP layer turns into 404/409/422/503. No aiohttp here: ``cti/http`` encodes and transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

import structlog

from acd import (AgentLogout, AgentNotReady, AgentState, AgentStateChanged, DispositionKind, FinalAction,
                 MoveCall, QueueSettings, SetAgentSkills, SetCallPriority, UpdateQueue, parse_skills)
from acd.config import AcdConfigError, AcdDefinitions, AgentDefinition, parse_queue, queue_to_dict
from acd.engine import WaitingCallSnapshot
from acd.skills import SkillExpr
from acd.stats import AgentFigures
from cti.acd_service import AcdService
from cti.callmodel.control import CallControl, CallControlError
from cti.callmodel.model import Call, CallModel

log = structlog.get_logger(__name__)

Body = dict[str, Any]
# kind and body -> the text of one frame (cti.http.ws.frame adds the protocol envelope).
Encode = Callable[[str, Body], str]
Send = Callable[[str], Awaitable[None]]

# ChanSpy options per monitoring mode (added to "qE": quiet, end when the spied channel hangs up).
SPY_OPTIONS = {"listen": "", "whisper": "w", "barge": "B"}
SPY_CONTEXT = "cti-spy"  # dialplans/cti.conf


# --- the wallboard ---------------------------------------------------------------------------


class _Clock:
    """One reading of the engine's clock and its epoch offset, shared by a whole frame."""

    def __init__(self, acd: AcdService) -> None:
        self.now = acd.now()
        self._offset = acd.wall_time(self.now) - self.now

    def epoch(self, engine_time: float) -> float:
        return round(engine_time + self._offset, 3)


def _per_agent(figures: AgentFigures) -> Body:
    return {"handled": figures.handled, "aht": figures.aht, "occupancy": figures.occupancy}


class Wallboard:
    def __init__(self, acd: AcdService, *, interval: float = 0.25, refresh_seconds: float = 15.0,
                 service_level_target: float = 0.8) -> None:
        self.acd = acd
        self.interval = interval
        self.refresh_seconds = refresh_seconds
        self.service_level_target = service_level_target
        self.seq = 0  # update frames built so far
        # Called when the first change after a frame is marked: the fan-out's wake-up.
        self.on_change: Callable[[], None] = lambda: None
        self._dirty_queues: set[str] = set()
        self._dirty_agents: set[str] = set()
        # Where supervisors last saw each waiting call: a later event that names only the call
        # (answered, abandoned, re-prioritised) must refresh that queue.
        self._shown_in: dict[str, str] = {}
        self._shown_calls: dict[str, frozenset[str]] = {}
        # AcdDefinitions.agent() scans the list; a snapshot of 1,000 agents must not be quadratic.
        self._indexed: AcdDefinitions | None = None
        self._requirements: dict[str, SkillExpr] = {}
        self._agents: dict[str, AgentDefinition] = {}
        self._served_by: dict[str, list[str]] = {}
        self._reindex()
        self.window_seconds = acd.definitions.settings().stats_window_seconds
        self._last_frame = -math.inf
        self._last_refresh = acd.now()
        self._stop_listening = [acd.listen(self._touch), acd.watch(self._touch)]

    @property
    def queue_names(self) -> list[str]:
        return [queue.name for queue in self.acd.definitions.queues]

    @property
    def agent_ids(self) -> list[str]:
        return [agent.agent_id for agent in self.acd.definitions.agents]

    def close(self) -> None:
        for stop in self._stop_listening:
            stop()
        self._stop_listening = []

    # --- what changed ---

    def _touch(self, item: object) -> None:
        """Mark what an event or a decision changes, by the identifiers it carries."""
        agent_id = getattr(item, "agent_id", None)
        if agent_id is not None:
            self._mark_agent(agent_id)
            if isinstance(item, (AgentStateChanged, SetAgentSkills)):
                self._mark_queues(self.queues_served_by(agent_id))  # their agents by state
            if isinstance(item, SetAgentSkills):  # the definitions still hold the old skills
                self._mark_queues(self._queues_requiring(item.skills))
        if isinstance(item, UpdateQueue):
            self._queue_changed(item.settings)
        call_id = getattr(item, "call_id", None) or getattr(item, "callback_id", None)
        if call_id in self._shown_in:
            self._mark_queues([self._shown_in[call_id]])
        queue = getattr(item, "queue", None)
        if isinstance(queue, str):
            self._mark_queues([queue])
        if isinstance(item, FinalAction) and item.kind is DispositionKind.QUEUE:
            self._mark_queues([item.target])

    def _queue_changed(self, settings: QueueSettings) -> None:
        """Its view, and the agents whose queues it joins or leaves: the definitions still hold
        its old settings."""
        self._mark_queues([settings.name])
        self._reindex()
        old, new = self._requirements[settings.name], parse_skills(settings.skills)
        self._mark(self._dirty_agents, [agent.agent_id for agent in self.acd.definitions.agents
                                        if old.matches(agent.skills) != new.matches(agent.skills)])

    def _reindex(self) -> None:
        """Index the definitions again when they were replaced (a skill or queue change)."""
        if self.acd.definitions is self._indexed:
            return
        self._indexed = self.acd.definitions
        self._requirements = {queue.name: parse_skills(queue.skills) for queue in self._indexed.queues}
        self._agents = {agent.agent_id: agent for agent in self._indexed.agents}
        self._served_by = {}

    def _definition(self, agent_id: str) -> AgentDefinition | None:
        self._reindex()
        return self._agents.get(agent_id)

    def queues_served_by(self, agent_id: str) -> list[str]:
        agent = self._definition(agent_id)
        if agent is None:
            return []
        if agent_id not in self._served_by:
            self._served_by[agent_id] = self._queues_requiring(agent.skills)
        return self._served_by[agent_id]

    def _queues_requiring(self, skills: Mapping[str, int]) -> list[str]:
        self._reindex()
        return [name for name, requirement in self._requirements.items() if requirement.matches(skills)]

    def _mark_agent(self, agent_id: str) -> None:
        self._mark(self._dirty_agents, [agent_id])

    def _mark_queues(self, names: Iterable[str]) -> None:
        self._mark(self._dirty_queues, [name for name in names if name in self._requirements])

    def _mark(self, dirty: set[str], names: list[str]) -> None:
        was_clean = not (self._dirty_queues or self._dirty_agents)
        dirty.update(names)
        if names and was_clean:
            self.on_change()

    # --- frames ---

    def next_frame_at(self) -> float:
        """Engine time at which ``take_update`` will have something to send."""
        if self._dirty_queues or self._dirty_agents:
            return self._last_frame + self.interval
        return self._last_refresh + self.refresh_seconds

    def take_update(self) -> Body | None:
        """What changed since the previous update, or None (nothing, or too soon after it)."""
        clock = _Clock(self.acd)
        if clock.now >= self._last_refresh + self.refresh_seconds:
            self._last_refresh = clock.now
            self._dirty_queues.update(self._requirements)
        if not (self._dirty_queues or self._dirty_agents) or clock.now < self._last_frame + self.interval:
            return None
        queues, agents = sorted(self._dirty_queues), sorted(self._dirty_agents)
        self._dirty_queues.clear()
        self._dirty_agents.clear()
        self._last_frame = clock.now
        self.seq += 1
        return self._frame(clock, queues, agents)

    def snapshot(self) -> Body:
        """Everything, for a supervisor who just connected; leaves the pending update as it is."""
        body = self._frame(_Clock(self.acd), self.queue_names, self.agent_ids)
        return body | {"service_level_target": self.service_level_target,
                       "window_seconds": self.window_seconds, "interval": self.interval}

    def _frame(self, clock: _Clock, queues: Iterable[str], agents: Iterable[str]) -> Body:
        return {"seq": self.seq, "server_time": clock.epoch(clock.now),
                "queues": [self._queue_view(name, clock) for name in queues],
                "agents": [self._agent_view(agent_id, clock) for agent_id in agents]}

    # --- views (also the REST API's answers) ---

    def queue_view(self, name: str) -> Body:
        return self._queue_view(name, _Clock(self.acd))

    def agent_view(self, agent_id: str) -> Body:
        return self._agent_view(agent_id, _Clock(self.acd))

    def queue_views(self) -> list[Body]:
        clock = _Clock(self.acd)
        return [self._queue_view(name, clock) for name in self.queue_names]

    def agent_views(self) -> list[Body]:
        clock = _Clock(self.acd)
        return [self._agent_view(agent_id, clock) for agent_id in self.agent_ids]

    def _queue_view(self, name: str, clock: _Clock) -> Body:
        engine, now = self.acd.engine, clock.now
        snapshot = engine.queue_snapshot(name, now)
        calls = engine.waiting_snapshot(name, now)
        self._remember_shown(name, calls)
        # Callbacks keep their place but nobody is on the line: they do not make a wait longer.
        waited = [call.waited for call in calls if call.state == "waiting" and not call.callback]
        longest = max(waited, default=None)
        by_state = {str(state): 0 for state in AgentState if state is not AgentState.LOGGED_OUT}
        return {
            "queue": name,
            "open": self.acd.is_open(name),
            "service_level_seconds": self.acd.definitions.queue(name).service_level_seconds,
            "waiting": snapshot.waiting,
            "longest_wait": longest,
            "longest_wait_since": None if longest is None else clock.epoch(now - longest),
            "expected_wait": snapshot.expected_wait,
            "agents_by_state": by_state | {str(state): count for state, count in snapshot.agents_by_state.items()},
            "recent": dataclasses.asdict(snapshot.recent),
            "today": dataclasses.asdict(snapshot.today),
            "calls": [_call_view(call, clock) for call in calls],
        }

    def _remember_shown(self, queue: str, calls: list[WaitingCallSnapshot]) -> None:
        for call_id in self._shown_calls.get(queue, ()):
            if self._shown_in.get(call_id) == queue:
                del self._shown_in[call_id]
        self._shown_calls[queue] = frozenset(call.call_id for call in calls)
        self._shown_in.update((call.call_id, queue) for call in calls)

    def _agent_view(self, agent_id: str, clock: _Clock) -> Body:
        engine = self.acd.engine
        snapshot = engine.agent_snapshot(agent_id, clock.now)
        definition = self._definition(agent_id)
        return {
            "agent_id": agent_id,
            "name": definition.name,
            "state": str(snapshot.state),
            "reason": snapshot.reason,
            "since": clock.epoch(snapshot.since),
            "time_in_state": clock.now - snapshot.since,
            "call": engine.agent_call(agent_id),
            "skills": dict(definition.skills),
            "queues": self.queues_served_by(agent_id),
            "recent": _per_agent(snapshot.recent),
            "today": _per_agent(snapshot.today),
        }


def _call_view(call: WaitingCallSnapshot, clock: _Clock) -> Body:
    return {"call_id": call.call_id, "position": call.position, "priority": call.priority,
            "since": clock.epoch(clock.now - call.waited), "wait": call.waited,
            "overflow_level": call.overflow_level, "callback": call.callback, "state": call.state}


# --- the fan-out -----------------------------------------------------------------------------


class Subscription:
    """One supervisor's connection: its frames go out in order through one writer task."""

    def __init__(self, fanout: Fanout, send: Send, limit: int) -> None:
        self._fanout = fanout
        self._send = send
        self._frames: asyncio.Queue[str] = asyncio.Queue(limit)
        self.gone = False  # its connection failed: nothing more to queue until it unsubscribes
        self._writer = asyncio.create_task(self._write())

    def push(self, frame: str) -> None:
        """Queue a frame; a client that fell this far behind starts over from a snapshot."""
        if self.gone:
            return
        try:
            self._frames.put_nowait(frame)
        except asyncio.QueueFull:
            self.resync()

    def resync(self) -> None:
        while not self._frames.empty():
            self._frames.get_nowait()
        self._frames.put_nowait(self._fanout.snapshot_frame())

    async def _write(self) -> None:
        while True:
            frame = await self._frames.get()
            try:
                await self._send(frame)
            except Exception as error:  # the connection is gone; its handler will unsubscribe
                log.info("supervisor.send_failed", error=str(error))
                self.gone = True
                return

    async def close(self) -> None:
        self._fanout.subscribers.discard(self)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


class Fanout:
    """Sends the wallboard's frames to every connected supervisor, throttled by the wallboard."""

    def __init__(self, wallboard: Wallboard, encode: Encode, *, queue_limit: int = 16) -> None:
        self.wallboard = wallboard
        self.encode = encode
        self.queue_limit = queue_limit
        self.subscribers: set[Subscription] = set()
        self.frames_sent = 0  # update frames, each counted once whatever the number of clients
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self.wallboard.on_change = self._wake.set
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        self.wallboard.on_change = lambda: None
        for subscription in list(self.subscribers):
            await subscription.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, send: Send) -> Subscription:
        """A new supervisor: a snapshot first, then every update."""
        subscription = Subscription(self, send, self.queue_limit)
        subscription.push(self.snapshot_frame())
        self.subscribers.add(subscription)
        return subscription

    def snapshot_frame(self) -> str:
        return self.encode("snapshot", self.wallboard.snapshot())

    async def _run(self) -> None:
        while True:
            # Cleared before looking, so a change marked while we sleep wakes us up.
            self._wake.clear()
            delay = self.wallboard.next_frame_at() - self.wallboard.acd.now()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            try:
                update = self.wallboard.take_update()
            except Exception:
                log.exception("supervisor.frame_failed")  # the next change will try again
                update = None
            if update is None:
                await asyncio.sleep(self.wallboard.interval)
            else:
                self._broadcast(self.encode("update", update))

    def _broadcast(self, frame: str) -> None:
        self.frames_sent += 1
        for subscription in list(self.subscribers):
            subscription.push(frame)


# --- actions ---------------------------------------------------------------------------------


class ActionError(Exception):
    """A supervisor's order that cannot be carried out; ``errors``: a message per bad input
    field, if that is the reason (given as ``errors``, or as one ``field`` with the message)."""

    status = 409

    def __init__(self, message: str, field: str | None = None, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors) if errors else ({field: message} if field else {})


class NotFound(ActionError):
    status = 404


class Invalid(ActionError):
    status = 422


class Unavailable(ActionError):
    """Asterisk could not be asked, or refused."""

    status = 503


class DefinitionStore(Protocol):
    async def set_agent_skills(self, agent_id: str, skills: Mapping[str, int], by: str) -> bool: ...

    async def save_queue(self, queue: QueueSettings, by: str) -> AcdDefinitions: ...


# The start of a problem's key path inside a queue's table: "queues.NAME." (NAME quoted if dotted).
_IN_QUEUE = re.compile(r'queues\.(?:"[^"]*"|[^."]+)\.?')


def _body_errors(error: AcdConfigError) -> dict[str, str]:
    """A queue body's problems by key path inside it ("overflow[0].after_seconds"); one about the
    body as a whole under "body"."""
    errors: dict[str, str] = {}
    for problem in error.problems:
        where, _, message = problem.partition(": ")
        inside = _IN_QUEUE.match(where)
        field = (where[inside.end():] if inside else "") or "body"
        text = message if inside else problem
        errors[field] = f"{errors[field]}; {text}" if field in errors else text
    return errors


def _changes(old: QueueSettings, new: QueueSettings) -> dict[str, Any]:
    """The keys of a queue's definition that differ, with their new values (None: now unset)."""
    before, after = queue_to_dict(old), queue_to_dict(new)
    return {key: after.get(key) for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)}


def _with_skills(definitions: AcdDefinitions, agent_id: str, skills: Mapping[str, int]) -> AcdDefinitions:
    agents = tuple(dataclasses.replace(agent, skills=dict(skills)) if agent.agent_id == agent_id else agent
                   for agent in definitions.agents)
    return dataclasses.replace(definitions, agents=agents)


def agent_channel(call: Call, device: str) -> str | None:
    """The agent's leg of a call: not the caller's AGI channel; the agent's device's channel if
    there is one (PJSIP/1001-00000007), else a bridged one (a Local channel), else any other."""
    others = [channel for channel in call.channels.values() if channel.name != call.data.get("agi_channel")]
    preferred = ([channel for channel in others if device and channel.name.startswith(device + "-")]
                 or [channel for channel in others if channel.bridge_id is not None] or others)
    return preferred[0].name if preferred else None


class SupervisorActions:
    def __init__(self, acd: AcdService, store: DefinitionStore, calls: CallModel | None = None,
                 control_for: Callable[[str], CallControl | None] | None = None,
                 survey_flows: Iterable[str] = ()) -> None:
        self.acd = acd
        self.store = store
        self.calls = calls
        self.control_for = control_for
        self.survey_flows = frozenset(survey_flows)  # the IVR flows a queue may name as its survey

    async def set_skills(self, agent_id: str, skills: Mapping[str, int], by: str) -> None:
        """Stored first (the change survives a restart), then the engine routes with it."""
        self.require_agent(agent_id)
        try:
            stored = await self.store.set_agent_skills(agent_id, skills, by=f"supervisor:{by}")
        except AcdConfigError as error:
            raise Invalid("; ".join(error.problems), field="skills") from None
        if not stored:
            raise NotFound(f"agent {agent_id} is not an active ACD agent in the database")
        self.acd.submit(SetAgentSkills(agent_id, dict(skills)))
        # After the event: the wallboard reads the old skills from them to refresh the queues left.
        self.acd.definitions = _with_skills(self.acd.definitions, agent_id, skills)
        log.info("supervisor.skills_changed", supervisor=by, agent_id=agent_id, skills=dict(skills))

    async def update_queue(self, name: str, body: Mapping[str, Any], by: str) -> QueueSettings:
        """Replace a queue's settings with ``body`` (the ACD file's table): checked alone (422),
        then by the running engine (AcdError, 409) so that nothing it would refuse gets stored,
        stored (the other stored queues may refuse it: 409), then applied live. Returns the
        settings now in force."""
        queue = self._parse_queue(name, body)
        self.acd.engine.check_queue(queue)
        try:
            stored = await self.store.save_queue(queue, by=f"supervisor:{by}")
        except AcdConfigError as error:
            raise ActionError(f"the stored definitions refuse it: {'; '.join(error.problems)}") from None
        old, queue = self.acd.definitions.queue(name), stored.queue(name)
        self.acd.update_queue(queue)
        log.info("supervisor.queue_changed", supervisor=by, queue=name, changes=_changes(old, queue))
        return queue

    def _parse_queue(self, name: str, body: Mapping[str, Any]) -> QueueSettings:
        current = self.queue_settings(name)
        try:
            queue = parse_queue(name, body, "body")
        except AcdConfigError as error:
            raise Invalid("; ".join(error.problems), errors=_body_errors(error)) from None
        if queue.survey_flow not in ("", current.survey_flow, *self.survey_flows):
            # Checked now, not when a caller reaches the survey after a call.
            raise Invalid(f"no IVR flow named {queue.survey_flow!r}", field="survey_flow")
        return queue

    def force_not_ready(self, agent_id: str, reason: str, by: str) -> str:
        """When it takes effect: "now", or "after the call" (the current call and its wrap-up)."""
        state = self._logged_in_state(agent_id)
        self.acd.submit(AgentNotReady(agent_id, reason))
        when = "after the call" if state in (AgentState.ON_CALL, AgentState.WRAP_UP) else "now"
        log.info("supervisor.forced_not_ready", supervisor=by, agent_id=agent_id, reason=reason, when=when)
        return when

    def force_logout(self, agent_id: str, by: str) -> None:
        self._logged_in_state(agent_id)
        self.acd.submit(AgentLogout(agent_id))
        log.info("supervisor.forced_logout", supervisor=by, agent_id=agent_id)

    def move_call(self, call_id: str, queue: str, by: str) -> None:
        if self.acd.definitions.queue(queue) is None:
            raise Invalid(f"no queue named {queue!r}", field="queue")
        call = self.waiting_call(call_id)
        if call.queue == queue:
            raise ActionError(f"call {call_id} already waits in {queue}")
        if call.state != "waiting":
            raise ActionError(f"call {call_id} is {call.state} (an agent is reserved for it); it can be "
                              f"moved once it waits again")
        self.acd.submit(MoveCall(call_id, queue))
        log.info("supervisor.moved_call", supervisor=by, call_id=call_id, from_queue=call.queue, to_queue=queue)

    def set_priority(self, call_id: str, priority: int, by: str) -> None:
        call = self.waiting_call(call_id)
        self.acd.submit(SetCallPriority(call_id, priority))
        log.info("supervisor.call_priority", supervisor=by, call_id=call_id, queue=call.queue,
                 from_priority=call.priority, to_priority=priority)

    async def monitor(self, agent_id: str, mode: str, supervisor_interface: str, by: str) -> str:
        """Ring the supervisor's phone; once answered it spies on the agent's channel (ChanSpy).
        Returns that channel's name."""
        self.require_agent(agent_id)
        call_id = self.acd.engine.agent_call(agent_id)
        if call_id is None or self.acd.engine.agent_state(agent_id) is not AgentState.ON_CALL:
            raise ActionError(f"agent {agent_id} is not talking on a call")
        call = self._live_call(call_id)
        channel = agent_channel(call, self.acd.definitions.agent(agent_id).device) if call else None
        if channel is None:
            raise ActionError(f"no channel of agent {agent_id} on call {call_id} is known to the call model")
        control = self.control_for(call.system) if self.control_for else None
        if control is None:
            raise Unavailable(f"no AMI link to Asterisk {call.system}")
        try:
            await control.originate(supervisor_interface, SPY_CONTEXT, "s", caller_id=f"{mode} {agent_id}",
                                    variables={"CTI_SPY_CHANNEL": channel, "CTI_SPY_OPTIONS": SPY_OPTIONS[mode]})
        except ValueError as error:
            raise Invalid(str(error), field="supervisor_interface") from None
        except CallControlError as error:
            raise Unavailable(f"Asterisk refused: {error}") from None
        except Exception as error:  # AMI link down, outcome unknown: the supervisor may retry
            raise Unavailable(f"could not reach Asterisk: {error}") from None
        log.info("supervisor.monitor", supervisor=by, agent_id=agent_id, mode=mode, call_id=call_id,
                 channel=channel, supervisor_interface=supervisor_interface)
        return channel

    # --- lookups ---

    def require_agent(self, agent_id: str) -> None:
        if self.acd.definitions.agent(agent_id) is None:
            raise NotFound(f"agent {agent_id} not found")

    def require_queue(self, queue: str) -> None:
        self.queue_settings(queue)

    def queue_settings(self, queue: str) -> QueueSettings:
        settings = self.acd.definitions.queue(queue)
        if settings is None:
            raise NotFound(f"queue {queue} not found")
        return settings

    def _logged_in_state(self, agent_id: str) -> AgentState:
        self.require_agent(agent_id)
        state = self.acd.engine.agent_state(agent_id)
        if state is AgentState.LOGGED_OUT:
            raise ActionError(f"agent {agent_id} is logged out")
        return state

    def waiting_call(self, call_id: str) -> WaitingCallSnapshot:
        """The call among those not yet answered (waiting or ringing), in whichever queue."""
        now = self.acd.now()
        for queue in self.acd.definitions.queues:
            for call in self.acd.engine.waiting_snapshot(queue.name, now):
                if call.call_id == call_id:
                    return call
        raise NotFound(f"no waiting call {call_id}")

    def _live_call(self, call_id: str) -> Call | None:
        """The call model's call; a callback's is the one whose ACD ticket names it."""
        if self.calls is None:
            return None
        call = self.calls.call(call_id)
        if call is None:
            call = next((candidate for candidate in self.calls.calls()
                         if (candidate.data.get("acd") or {}).get("callback_for") == call_id), None)
        return call


@dataclasses.dataclass
class Supervision:
    """What the supervisors' endpoints need, built once by the composition root."""

    acd: AcdService
    wallboard: Wallboard
    actions: SupervisorActions

    @classmethod
    def build(cls, acd: AcdService, store: DefinitionStore, calls: CallModel | None = None,
              control_for: Callable[[str], CallControl | None] | None = None, survey_flows: Iterable[str] = (),
              **wallboard_options: Any) -> Supervision:
        return cls(acd, Wallboard(acd, **wallboard_options),
                   SupervisorActions(acd, store, calls, control_for, survey_flows))

    async def close(self) -> None:
        self.wallboard.close()
