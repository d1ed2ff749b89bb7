"""Erlang C (M/M/m): the textbook figures the simulator is checked against.

Poisson arrivals, exponential handle times with mean ``aht``, ``agents`` identical agents,
callers who never abandon, first come first served. ``traffic`` A = arrival rate x AHT in Erlangs.

    P_wait = (A^m/m! * m/(m-A)) / (sum_{k<m} A^k/k! + A^m/m! * m/(m-A))
    SL(t)  = 1 - P_wait * exp(-(m-A) * t / AHT)
    ASA    = P_wait * AHT / (m-A)

P_wait is computed through the Erlang B recursion B(k) = A*B(k-1) / (k + A*B(k-1)), then
C = m*B / (m - A*(1-B)): no factorials, so it stays exact for thousands of agents.
"""

from __future__ import annotations

import math


def _check(traffic: float, agents: int) -> None:
    if agents <= traffic:
        raise ValueError(f"Erlang C needs more agents than Erlangs of traffic: {agents} <= {traffic}")


def probability_of_waiting(traffic: float, agents: int) -> float:
    _check(traffic, agents)
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = traffic * blocking / (k + traffic * blocking)
    return agents * blocking / (agents - traffic * (1 - blocking))


def service_level(traffic: float, agents: int, aht: float, target_seconds: float) -> float:
    """Fraction of calls answered within ``target_seconds``."""
    wait = probability_of_waiting(traffic, agents)
    return 1 - wait * math.exp(-(agents - traffic) * target_seconds / aht)


def average_speed_of_answer(traffic: float, agents: int, aht: float) -> float:
    return probability_of_waiting(traffic, agents) * aht / (agents - traffic)


def occupancy(traffic: float, agents: int) -> float:
    _check(traffic, agents)
    return traffic / agents
