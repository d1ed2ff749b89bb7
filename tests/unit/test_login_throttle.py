"""Failed logins counted per account and address, and per address, in a sliding window."""

from __future__ import annotations

import pytest

from cti.http.throttle import LoginThrottle, ThrottleSettings
from tests.unit.clock import Clock

pytestmark = pytest.mark.unit


def throttle(clock: Clock, **settings: int) -> LoginThrottle:
    return LoginThrottle(ThrottleSettings(**({"per_account": 3, "per_address": 5, "window_seconds": 60} | settings)),
                         clock)


def test_an_account_is_refused_after_its_limit_until_the_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    limits = throttle(clock)
    for seconds in (0, 10, 20):
        clock.now = 1000 + seconds
        assert limits.retry_after("10.0.0.1", "a1") == 0
        limits.failed("10.0.0.1", "a1")
    assert limits.retry_after("10.0.0.1", "a1") == 40  # the failure at 1000 leaves at 1060
    clock.now = 1059
    assert limits.retry_after("10.0.0.1", "a1") == 1
    clock.now = 1060
    assert limits.retry_after("10.0.0.1", "a1") == 0


def test_a_guesser_elsewhere_does_not_lock_the_agent_out() -> None:
    limits = throttle(Clock())
    for _ in range(3):
        limits.failed("198.51.100.7", "a1")
    assert limits.retry_after("198.51.100.7", "a1") > 0
    assert limits.retry_after("10.0.0.1", "a1") == 0


def test_an_address_guessing_many_accounts_is_refused_for_all_of_them() -> None:
    limits = throttle(Clock())
    for account in ("a1", "a2", "a3", "a4", "a5"):
        limits.failed("198.51.100.7", account)
    assert limits.retry_after("198.51.100.7", "a9") == 60
    assert limits.retry_after("10.0.0.1", "a9") == 0


def test_a_success_forgets_the_accounts_failures_but_not_the_addresses() -> None:
    limits = throttle(Clock(), per_address=4)
    for _ in range(2):
        limits.failed("10.0.0.1", "a1")
    limits.succeeded("10.0.0.1", "a1")
    limits.failed("10.0.0.1", "a1")
    assert limits.retry_after("10.0.0.1", "a1") == 0  # 1 of 3 for the account
    limits.failed("10.0.0.1", "a2")
    assert limits.retry_after("10.0.0.1", "a1") == 60  # 4 of 4 for the address


def test_memory_is_bounded_by_forgetting_the_oldest_keys() -> None:
    limits = throttle(Clock(), per_account=1, max_keys=4)
    for address in ("1", "2", "3"):
        limits.failed(address, "a1")  # two keys each
    assert limits.retry_after("1", "a1") == 0  # forgotten
    assert limits.retry_after("3", "a1") == 60


def test_a_try_naming_no_account_counts_for_its_address_only() -> None:
    limits = throttle(Clock())
    for _ in range(5):
        assert limits.retry_after("198.51.100.7") == 0
        limits.failed("198.51.100.7")
    assert limits.retry_after("198.51.100.7") == 60
    assert limits.retry_after("198.51.100.7", "a1") == 60  # the address's count bars logins too
