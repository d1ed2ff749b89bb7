"""Overflow plans: a queue's requirement at each level, validated once when the engine starts.

Level 0 is the queue's own requirement. Level k (after step k-1 has expired) is::

    own requirement with every threshold lowered so far  |  every alternative added so far
                                                         |  the own requirement of every queue added so far

Steps only ever widen the set of agents (thresholds are never raised, alternatives are or-ed), so
the last level is the broadest: when no logged-in agent matches it, nobody will ever take the
call and its final action runs at once.

Each (queue, level) becomes one routing class; see ``acd.routing``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from acd.model import AcdError, Disposition, DispositionKind, QueueSettings, Strategy
from acd.routing import QueuePlan, RoutingClass
from acd.skills import MAX_LEVEL, MIN_LEVEL, SkillExpr, SkillExpressionError, any_of, parse_skills


def build_plans(queues: Sequence[QueueSettings]) -> dict[str, QueuePlan]:
    """Validate the queues and compile their levels into routing classes."""
    normalized = [_normalized(queue) for queue in queues]
    names = [queue.name for queue in normalized]
    if len(set(names)) != len(names):
        raise AcdError(f"queue names must be unique, got {names}")
    own = {queue.name: _parse(queue.name, "skills", queue.skills) for queue in normalized}
    for queue in normalized:
        _check_references(queue, own)
    _check_final_actions_end(normalized)
    plans = {}
    class_count = 0
    for queue in normalized:
        classes = [RoutingClass(class_count + level, queue, requirement)
                   for level, requirement in enumerate(_levels(queue, own))]
        class_count += len(classes)
        plans[queue.name] = QueuePlan(queue, classes)
    return plans


def _levels(queue: QueueSettings, own: dict[str, SkillExpr]) -> list[SkillExpr]:
    levels = [own[queue.name]]
    lowered: dict[str, int] = {}
    alternatives: list[SkillExpr] = []
    for step in queue.overflow:
        for skill, level in step.lower_thresholds.items():
            lowered[skill] = min(level, lowered.get(skill, level))
        if step.add_skills:
            alternatives.append(_parse(queue.name, "add_skills", step.add_skills))
        alternatives.extend(own[name] for name in step.add_queues)
        levels.append(any_of(own[queue.name].lowered(lowered), *alternatives))
    return levels


def _parse(queue: str, key: str, text: str) -> SkillExpr:
    try:
        return parse_skills(text)
    except SkillExpressionError as error:
        raise AcdError(f"queue {queue!r}: {key}: {error}") from None


def _normalized(queue: QueueSettings) -> QueueSettings:
    """Enum-typed copies (configuration hands strings) and the range checks."""
    where = f"queue {queue.name!r}"
    try:
        queue = dataclasses.replace(
            queue, strategy=Strategy(queue.strategy),
            final_action=Disposition(DispositionKind(queue.final_action.kind), queue.final_action.target))
    except ValueError as error:
        raise AcdError(f"{where}: {error}") from None
    positive = {"weight": queue.weight, "ring_timeout": queue.ring_timeout,
                "initial_aht_seconds": queue.initial_aht_seconds,
                "announce_every": queue.announce_every, "max_wait_seconds": queue.max_wait_seconds}
    for key, value in positive.items():
        if value is not None and value <= 0:
            raise AcdError(f"{where}: {key}: expected a positive number, got {value}")
    if queue.wrap_up_seconds < 0:
        raise AcdError(f"{where}: wrap_up_seconds: expected >= 0, got {queue.wrap_up_seconds}")
    if queue.callback.max_attempts < 1:
        raise AcdError(f"{where}: callback.max_attempts: expected >= 1, got {queue.callback.max_attempts}")
    previous = 0.0
    for index, step in enumerate(queue.overflow):
        if step.after_seconds <= previous:
            raise AcdError(f"{where}: overflow[{index}].after_seconds: expected more than {previous}, "
                           f"got {step.after_seconds} (steps expire in order)")
        previous = step.after_seconds
        for skill, level in step.lower_thresholds.items():
            if not MIN_LEVEL <= level <= MAX_LEVEL:
                raise AcdError(f"{where}: overflow[{index}].lower_thresholds[{skill!r}]: "
                               f"expected {MIN_LEVEL}-{MAX_LEVEL}, got {level}")
    return queue


def _check_references(queue: QueueSettings, own: dict[str, SkillExpr]) -> None:
    where = f"queue {queue.name!r}"
    for index, step in enumerate(queue.overflow):
        for name in step.add_queues:
            if name not in own:
                raise AcdError(f"{where}: overflow[{index}].add_queues: no queue named {name!r}")
    action = queue.final_action
    if action.kind is DispositionKind.QUEUE and action.target not in own:
        raise AcdError(f"{where}: final_action: no queue named {action.target!r}")


def _check_final_actions_end(queues: Sequence[QueueSettings]) -> None:
    """Final actions of kind queue must not loop: A -> B -> A would bounce a call for ever
    (at once, when neither queue has an agent logged in)."""
    next_queue = {queue.name: queue.final_action.target for queue in queues
                  if queue.final_action.kind is DispositionKind.QUEUE}
    for start in next_queue:
        seen = [start]
        while (name := next_queue.get(seen[-1])) is not None:
            if name in seen:
                raise AcdError(f"final actions of kind queue loop: {' -> '.join([*seen, name])}")
            seen.append(name)
