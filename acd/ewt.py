"""Expected wait time (EWT) from recent handle times and the agents staffing a queue right now.

Handle time: each queue keeps an exponentially weighted moving average of its calls' handle times
(talk + wrap-up): ``aht += smoothing * (handle - aht)``. With smoothing 0.1 the last ~10 calls
carry two thirds of the weight, so the estimate follows a shift within minutes yet one long call
does not swing it. It starts from the queue's ``initial_aht_seconds`` until real calls come in.

Staffing: the queue's logged-in agents that are free (``idle``) or busy with a call (reserved,
talking or in wrap-up); not-ready agents do not count. A busy agent is expected to free up in
``remaining = max(aht - elapsed, MIN_REMAINING_SHARE * aht)``: the floor says that a call already
past the average is not about to end this very second.

The caller at ``position`` n is served by the n-th agent to become available. The first ``idle``
agents are available now. Busy agent i frees up at r_i, then (having taken a call) again at
r_i + aht, r_i + 2·aht, ... Since every r_i <= aht, these release times sorted are round after
round of the sorted r_i, so the k-th release is exactly::

    ((k - 1) // busy) * aht + sorted(r)[(k - 1) % busy]          with k = n - idle

With exponential handle times this matches Erlang's k·aht/busy on average (the order statistics
of r spread over [0, aht]); it tracks staffing changes at once, which a constant or a historical
average of waits cannot. Approximation: agents who also serve other queues are counted as if
they served this one only, which makes EWT optimistic for shared agents.
"""

from __future__ import annotations

MIN_REMAINING_SHARE = 0.1


class HandleTimeAverage:
    """Exponentially weighted average of one queue's recent handle times, in seconds."""

    def __init__(self, initial_seconds: float) -> None:
        self.seconds = initial_seconds
        self.learnt = False  # still the configured initial value

    def add(self, handle_seconds: float, smoothing: float) -> None:
        self.seconds += smoothing * (handle_seconds - self.seconds)
        self.learnt = True


def expected_wait(position: int, idle: int, busy_elapsed: list[float], aht: float) -> float | None:
    """Seconds until the caller at ``position`` (1 = next) reaches an agent; None if nobody is staffed."""
    if position <= idle:
        return 0.0
    if not busy_elapsed:
        return None
    remaining = sorted(max(aht - elapsed, MIN_REMAINING_SHARE * aht) for elapsed in busy_elapsed)
    rounds, index = divmod(position - idle - 1, len(remaining))
    return rounds * aht + remaining[index]
