"""The console's login throttle as a rule over time (``server.users.ThrottleRule`` over the counts in
memory of tests/throttle_reference.py), with its clock in the test's hand: per address and account,
per address, per account, and the window passing."""

from __future__ import annotations

from tests.throttle_reference import Clock, LoginThrottle


def fail(throttle: LoginThrottle, address: str, username: str, times: int) -> None:
    for _ in range(times):
        assert throttle.wait_s(address, username) == 0
        throttle.failed(address, username)


def test_an_address_that_keeps_failing_on_an_account_waits_out_the_window_alone() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    fail(throttle, "10.0.0.66", "wuhua", 5)
    assert throttle.wait_s("10.0.0.66", "wuhua") == 300
    assert throttle.wait_s("10.0.0.66", "guandu") == 0  # another account from the same address
    assert throttle.wait_s("10.0.0.7", "wuhua") == 0  # the user from elsewhere
    clock.now += 299
    assert throttle.wait_s("10.0.0.66", "wuhua") == 1
    clock.now += 1
    assert throttle.wait_s("10.0.0.66", "wuhua") == 0


def test_an_address_guessing_across_accounts_waits_for_all_of_them() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for i in range(20):
        clock.now += 1
        fail(throttle, "10.0.0.66", f"user{i}", 1)
    assert throttle.wait_s("10.0.0.66", "someone-else") == 300 - 19  # until its first failure is old
    throttle.succeeded("10.0.0.66", "user3")  # one account that works does not wash the guesses
    assert throttle.wait_s("10.0.0.66", "someone-else") > 0
    assert throttle.wait_s("10.0.0.7", "user0") == 0


def test_a_colleague_behind_the_same_address_is_not_locked_out_by_its_failures() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    throttle.succeeded("10.0.0.66", "wuhua")  # a dispatcher of the station behind this NAT address
    clock.now += 3600
    for i in range(20):
        fail(throttle, "10.0.0.66", f"user{i}", 1)
    assert throttle.wait_s("10.0.0.66", "guandu") > 0  # never logged in here: waits
    assert throttle.wait_s("10.0.0.66", "wuhua") == 0  # logged in here before: not held up


def test_an_account_guessed_from_everywhere_is_slowed_not_locked() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    throttle.succeeded("10.0.0.7", "wuhua")  # the dispatcher's own desk
    for i in range(20):
        fail(throttle, f"10.1.0.{i}", "wuhua", 1)
    assert throttle.wait_s("10.2.0.1", "wuhua") == 0  # one try from a stranger goes through …
    throttle.failed("10.2.0.1", "wuhua")
    assert throttle.wait_s("10.2.0.2", "wuhua") == 2  # … the next waits seconds, not minutes
    assert throttle.wait_s("10.0.0.7", "wuhua") == 0  # the dispatcher's desk is not slowed
    assert throttle.wait_s("10.2.0.2", "guandu") == 0
    clock.now += 2
    assert throttle.wait_s("10.2.0.2", "wuhua") == 0
    clock.now += 300
    assert throttle.wait_s("10.2.0.3", "wuhua") == 0
    assert throttle.wait_s("10.2.0.4", "wuhua") == 0  # the window passed: no longer slowed


def test_a_success_clears_that_address_and_account_only() -> None:
    throttle = LoginThrottle(clock=Clock())
    fail(throttle, "10.0.0.7", "wuhua", 4)
    throttle.succeeded("10.0.0.7", "wuhua")
    fail(throttle, "10.0.0.7", "wuhua", 4)  # four more, not five in all
    assert throttle.wait_s("10.0.0.7", "wuhua") == 0
