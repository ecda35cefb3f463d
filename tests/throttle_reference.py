"""The login throttle's rule kept in one process's memory, with the clock in the test's hand: the
reference the database's ``server.login_throttle.SharedLoginThrottle`` is held to
(tests/test_login_throttle_shared.py), and the rule's own behaviour over time told as plainly as it
can be (tests/test_login_throttle.py). The console itself counts only in the database; both decide
with ``server.users.ThrottleRule``, so what is checked here is the rule the console runs."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from server.users import ThrottleRule


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LoginThrottle:
    PRUNE_AT = 10_000  # pairs kept before the stale ones are swept: a stranger's guesses cost memory

    def __init__(self, clock: Callable[[], float], rule: ThrottleRule | None = None) -> None:
        self.rule = rule or ThrottleRule()
        self._clock = clock
        self._pairs: dict[tuple[str, str], deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}
        self._accounts: dict[str, deque[float]] = {}
        self._account_tried: dict[str, float] = {}  # the last try let through on a slowed account
        self._trusted: dict[str, dict[str, float]] = {}  # username -> address -> last success

    def wait_s(self, address: str, username: str) -> float:
        """0 when this try may go ahead (it is then counted as the slowed account's one try), else how
        many seconds this address must wait for this account."""
        now = self._clock()
        wait, takes_the_try = self.rule.wait(
            now,
            self._recent(self._pairs, (address, username), now),
            self._recent(self._addresses, address, now),
            self._recent(self._accounts, username, now),
            self._trusted.get(username, {}).get(address),
            self._account_tried.get(username),
        )
        if takes_the_try:
            self._account_tried[username] = now
        return wait

    def failed(self, address: str, username: str) -> None:
        now = self._clock()
        self._pairs.setdefault((address, username), deque()).append(now)
        self._addresses.setdefault(address, deque()).append(now)
        self._accounts.setdefault(username, deque()).append(now)
        if len(self._pairs) > self.PRUNE_AT:
            self._prune(now)

    def succeeded(self, address: str, username: str) -> None:
        now = self._clock()
        self._pairs.pop((address, username), None)
        trusted = self._trusted.setdefault(username, {})
        trusted[address] = now
        if len(trusted) > self.rule.trusted_per_account:
            del trusted[min(trusted, key=trusted.__getitem__)]

    def _recent(self, table: dict[Any, deque[float]], key: Any, now: float) -> Sequence[float]:
        times = table.get(key)
        if times is None:
            return ()
        while times and now - times[0] >= self.rule.window_s:
            times.popleft()
        if not times:
            del table[key]
        return times

    def _prune(self, now: float) -> None:
        for table in (self._pairs, self._addresses, self._accounts):
            for key in list(table):
                self._recent(table, key, now)
        for username, at in list(self._account_tried.items()):
            if now - at >= self.rule.account_interval_s:
                del self._account_tried[username]
