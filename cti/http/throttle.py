"""Failed logins (and bearer tokens), counted in a sliding window. Past a limit, a try is refused
before its secret is checked: guessing then costs the guesser time, and us no argon2 work.

Two counts: per account and address together, so a guesser elsewhere cannot lock an agent out;
and per address, higher, as a call center's agents often share one address (NAT). A bearer token
names no account: only its address is counted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleSettings:
    per_account: int = 5  # failed logins to one account from one address
    per_address: int = 50  # failed logins from one address, whatever the account
    window_seconds: float = 300.0
    max_keys: int = 10_000  # addresses and accounts remembered; then the oldest go


class LoginThrottle:
    def __init__(self, settings: ThrottleSettings = ThrottleSettings(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._failures: dict[tuple[str, ...], deque[float]] = {}

    def retry_after(self, address: str, account: str | None = None) -> float:
        """Seconds before a login to ``account`` from ``address`` may be tried; 0: now."""
        now = self._clock()
        wait = self._wait(("address", address), self.settings.per_address, now)
        if account is None:
            return wait
        return max(wait, self._wait(("account", address, account), self.settings.per_account, now))

    def failed(self, address: str, account: str | None = None) -> None:
        now = self._clock()
        keys = [("address", address)] if account is None else [("address", address), ("account", address, account)]
        for key in keys:
            times = self._failures.pop(key, None) or deque()
            times.append(now)
            self._failures[key] = times  # last in the dict: the most recently failed
        while len(self._failures) > self.settings.max_keys:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str, account: str) -> None:
        """The account's failures from this address are forgotten; the address's still count."""
        self._failures.pop(("account", address, account), None)

    def _wait(self, key: tuple[str, ...], limit: int, now: float) -> float:
        times = self._failures.get(key)
        if times is None:
            return 0.0
        window = self.settings.window_seconds
        while times and times[0] <= now - window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        return times[-limit] + window - now if len(times) >= limit else 0.0
