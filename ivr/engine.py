"""One caller's way through the flows: inputs and a clock in, actions out, nothing else.

    session = IvrSession(flow_set, dnis="100", ani="5551234", now=now)
    actions = session.start()
    while not session.result.finished:
        actions = session.feed(answer_to(actions[-1]), now=clock())

See ``ivr.actions`` for what each batch holds and ``ivr.inputs`` for the answers. The session
reads no clock and does no I/O; ``now`` is an aware datetime or epoch seconds, and each
calendar converts it to its own time zone.

Every call ends: a question gets a bounded number of retries before its fallback, and a call
that visits more than the entry flow's ``max_steps`` nodes (a loop the caller keeps going
round, or one that never waits) goes to the operator queue, with the reason in
``result.notes`` and the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import structlog

from ivr.actions import (DTMF_KEYS, Action, CallbackRequest, CollectDigits, Finish, Hangup, Lookup, Play,
                         SayDigits, ToQueue, Transfer, Voicemail)
from ivr.flow import Flow, FlowSet
from ivr.inputs import CallerHangup, Digits, Input, LookupResult
from ivr.nodes import (CallbackNode, CollectNode, ConditionNode, Failure, GotoNode, HangupNode, LookupNode,
                       MenuNode, Node, PlayNode, QueueNode, ReturnNode, SayNode, SetNode, SubflowNode,
                       TransferNode, VoicemailNode)
from ivr.result import IvrResult, Outcome, OutcomeKind
from ivr.say import speak

log = structlog.get_logger(__name__)

Clock = datetime | float


def _instant(now: Clock) -> datetime:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("the IVR needs an aware datetime: business hours depend on the time zone")
        return now
    return datetime.fromtimestamp(now, timezone.utc)


@dataclass
class _Frame:
    flow: Flow
    return_to: str  # the calling flow's node to go on with; "" in the entry flow


@dataclass
class _Question:
    """A menu, confirm, collect or rating node waiting for the caller."""

    node: MenuNode | CollectNode
    retries_used: int = 0


@dataclass
class _PendingLookup:
    """A lookup waiting for the CRM, for a lookup node or to verify a collected entry."""

    request: Lookup
    node: LookupNode | CollectNode
    question: _Question | None = None  # the collect question to retry when the entry is not found


class IvrSession:
    def __init__(self, flow_set: FlowSet, dnis: str, ani: str, now: Clock,
                 customer: Mapping[str, object] | None = None, flow: str | None = None) -> None:
        """``customer``: the record the CRM found by ANI, if any; ``flow``: start this flow by
        name (a post-call survey) rather than the one answering ``dnis``."""
        entry = flow_set.flows[flow] if flow else flow_set.entry_for(dnis)
        self._flow_set = flow_set
        self._frames = [_Frame(entry, return_to="")]
        self._max_steps = entry.max_steps
        self._steps = 0
        self._now = _instant(now)
        self._waiting: _Question | _PendingLookup | None = None
        self._actions: list[Action] = []
        self._started = False
        self.result = IvrResult(flow=entry.name, dnis=dnis, ani=ani,
                                customer=dict(customer) if customer is not None else None)

    @property
    def finished(self) -> bool:
        return self.result.finished

    def start(self) -> list[Action]:
        if self._started:
            raise RuntimeError("the session has already started")
        self._started = True
        return self._actions_of(lambda: self._run(self._flow.start))

    def feed(self, event: Input, now: Clock) -> list[Action]:
        """The answer to the last batch's request; [] once the session is finished."""
        if not self._started:
            raise RuntimeError("start() the session before feeding it")
        if self.result.finished:
            return []
        self._now = _instant(now)
        return self._actions_of(lambda: self._run(self._answer(event)))

    # -- running nodes --------------------------------------------------------------------

    @property
    def _flow(self) -> Flow:
        return self._frames[-1].flow

    def _actions_of(self, step: Callable[[], None]) -> list[Action]:
        self._actions = []
        step()
        return self._actions

    def _emit(self, *actions: Action) -> None:
        self._actions.extend(actions)

    def _play(self, prompts: tuple[str, ...], barge_in: bool = False) -> None:
        if prompts:
            self._emit(Play(prompts, escape_digits=DTMF_KEYS if barge_in else ""))

    def _where(self, node_id: str) -> str:
        return f"{self._flow.name}:{node_id}"

    def _run(self, target: str | None) -> None:
        """Enters nodes until one waits for an answer or the call is routed."""
        while target is not None and not self.result.finished:
            if self._steps == self._max_steps:
                self._note(f"step limit {self._max_steps} reached before {self._where(target)}", alarming=True)
                self._route_to_operator()
                return
            self._steps += 1
            self.result.path.append(self._where(target))
            target = self._enter(self._flow.nodes[target])

    def _enter(self, node: Node) -> str | None:
        """Does what the node does; returns the node to enter next, None to stop."""
        match node:
            case PlayNode():
                self._play(node.prompts, node.barge_in)
                return node.next
            case MenuNode() | CollectNode():
                self._ask(_Question(node))
                return None
            case ConditionNode():
                return next((branch.target for branch in node.branches
                             if all(test.holds(self._now, self._value) for test in branch.tests)), node.otherwise)
            case SetNode():
                self.result.values.update(node.values)
                return node.next
            case LookupNode():
                self._request_lookup(_PendingLookup(Lookup(node.lookup, str(self._value(node.key) or "")), node))
                return None
            case SayNode():
                self._say(node)
                return node.next
            case GotoNode():
                return node.target
            case SubflowNode():
                self._frames.append(_Frame(self._flow_set.flows[node.flow], return_to=node.next))
                return self._flow.start
            case ReturnNode():
                return self._return_to_caller()
            case QueueNode() | VoicemailNode() | TransferNode() | HangupNode() | CallbackNode():
                self._route(node)
                return None
        raise TypeError(f"{node.label}: the engine has no behaviour for {type(node).__name__}")

    def _say(self, node: SayNode) -> None:
        value = self._value(node.value)
        try:
            spoken = speak(value, node.say_as, node.currency)
        except ValueError:
            # Saying "your balance is" and then nothing is worse than saying nothing.
            self._note(f"{self._where(node.id)} skipped: {node.value}={value!r} cannot be said as {node.say_as}")
            return
        self._play(node.prompts)
        self._emit(*spoken)
        self._play(node.after)

    def _return_to_caller(self) -> str | None:
        if len(self._frames) == 1:
            return self._fall_back("", f"{self._flow.name} returned but no flow called it")
        return self._frames.pop().return_to

    def _value(self, name: str) -> object | None:
        if name in ("ani", "dnis"):
            return getattr(self.result, name)
        if name.startswith("customer."):
            return (self.result.customer or {}).get(name.removeprefix("customer."))
        return self.result.values.get(name, self.result.scores.get(name))

    # -- questions --------------------------------------------------------------------------

    def _ask(self, question: _Question, before: tuple[str, ...] = ()) -> None:
        node = question.node
        if isinstance(node, MenuNode) and node.readback:
            self._play((*before, *node.readback.prompts))
            self._emit(SayDigits(str(self._value(node.readback.value) or "")))
            before = ()
        self._emit(CollectDigits((*before, *node.prompts), node.min_len, node.max_len, node.terminator,
                                 node.timeout_ms, node.barge_in))
        self._waiting = question

    def _answer(self, event: Input) -> str | None:
        if isinstance(event, CallerHangup):
            self._caller_left()
            return None
        waiting, self._waiting = self._waiting, None
        if isinstance(waiting, _PendingLookup):
            return self._on_lookup_answer(waiting, event)
        if isinstance(event, Digits):
            return self._on_digits(waiting, event.value)
        return self._retry(waiting, Failure.TIMEOUT)  # a Timeout, or an input of the wrong kind

    def _on_digits(self, question: _Question, digits: str) -> str | None:
        node = question.node
        entry = digits.split(node.terminator, 1)[0] if node.terminator else digits
        if not entry:
            return self._retry(question, Failure.TIMEOUT)
        if isinstance(node, MenuNode):
            return self._choose(question, entry)
        return self._check_entry(question, entry)

    def _choose(self, question: _Question, digit: str) -> str | None:
        node = question.node
        target = node.options.get(digit, node.default)
        if not target:
            return self._retry(question, Failure.INVALID)
        self.result.choices.append((self._where(node.id), digit))
        return target

    def _check_entry(self, question: _Question, entry: str) -> str | None:
        node = question.node
        if not node.min_len <= len(entry) <= node.max_len or not all(check.accepts(entry) for check in node.checks):
            return self._retry(question, Failure.INVALID)
        if node.verify_with:
            self._request_lookup(_PendingLookup(Lookup(node.verify_with, entry), node, question))
            return None
        return self._store_entry(node, entry)

    def _store_entry(self, node: CollectNode, entry: str) -> str:
        if node.is_score:
            self.result.scores[node.store] = int(entry)
        else:
            self.result.values[node.store] = entry
        return node.next

    def _retry(self, question: _Question, failure: Failure) -> str | None:
        node = question.node
        if question.retries_used == node.retry.retries:
            tries = question.retries_used + 1
            return self._fall_back(node.retry.fallback, f"{failure} answer at {self._where(node.id)} "
                                                        f"after {tries} {'try' if tries == 1 else 'tries'}")
        question.retries_used += 1
        self._ask(question, node.retry.prompts_before_retry(failure, question.retries_used))
        return None

    # -- lookups ----------------------------------------------------------------------------

    def _request_lookup(self, pending: _PendingLookup) -> None:
        self._emit(pending.request)
        self._waiting = pending

    def _on_lookup_answer(self, pending: _PendingLookup, event: Input) -> str | None:
        request, node = pending.request, pending.node
        answered = isinstance(event, LookupResult) and event.kind == request.kind
        if not answered:
            self._note(f"lookup {request.kind} at {self._where(node.id)} got no answer ({type(event).__name__})")
        elif event.found:
            self._keep_lookup_fields(request, event.fields)
        if isinstance(node, LookupNode):
            return node.next if answered and event.found else node.not_found
        if not answered:  # asking the caller again would not bring the CRM back
            return self._fall_back(node.retry.fallback, f"could not verify the entry at {self._where(node.id)}")
        if not event.found:
            return self._retry(pending.question, Failure.INVALID)
        return self._store_entry(node, request.key)

    def _keep_lookup_fields(self, request: Lookup, fields: Mapping[str, object]) -> None:
        if request.kind == "customer_by_account":
            self.result.customer = dict(fields)
            self.result.customer_account = request.key
        else:
            self.result.values.update(fields)

    # -- endings ----------------------------------------------------------------------------

    def _route(self, node: QueueNode | VoicemailNode | TransferNode | HangupNode | CallbackNode) -> None:
        match node:
            case QueueNode():
                self._finish(node.prompts, Outcome(OutcomeKind.TO_QUEUE, queue=node.queue, skills=node.skills,
                                                   priority=node.priority),
                             ToQueue(node.queue, node.skills, node.priority))
            case VoicemailNode():
                self._finish(node.prompts, Outcome(OutcomeKind.VOICEMAIL, mailbox=node.mailbox),
                             Voicemail(node.mailbox))
            case TransferNode():
                self._finish(node.prompts, Outcome(OutcomeKind.EXTERNAL, number=node.number), Transfer(node.number))
            case HangupNode():
                self._finish(node.prompts, Outcome(node.outcome), Hangup())
            case CallbackNode():
                self._request_callback(node)

    def _request_callback(self, node: CallbackNode) -> None:
        number = str(self._value(node.number_from) or "")
        if not number:
            self._fall_back("", f"no number to call back at {self._where(node.id)}")
            return
        self._finish(node.prompts, Outcome(OutcomeKind.CALLBACK, number=number), CallbackRequest(number), Hangup())

    def _fall_back(self, target: str, reason: str) -> str | None:
        self._note(reason)
        if target:
            return target
        self._route_to_operator()
        return None

    def _route_to_operator(self) -> None:
        queue = self._flow.operator_queue
        self._finish(("one-moment-please",), Outcome(OutcomeKind.TO_QUEUE, queue=queue), ToQueue(queue, (), 0))

    def _caller_left(self) -> None:
        self.result.partial = True
        self.result.outcome = Outcome(OutcomeKind.CALLER_HANGUP)
        self._end()

    def _finish(self, prompts: tuple[str, ...], outcome: Outcome, *actions: Action) -> None:
        self._play(prompts)
        self._emit(*actions)
        self.result.outcome = outcome
        self._end()

    def _end(self) -> None:
        self.result.finished = True
        self._waiting = None
        self._emit(Finish(self.result))

    def _note(self, reason: str, alarming: bool = False) -> None:
        """Callers failing a question are routine; a flow looping until the step limit is a bug."""
        self.result.notes.append(reason)
        (log.warning if alarming else log.info)("ivr.off_course", reason=reason, flow=self.result.flow,
                                                 dnis=self.result.dnis)
