"""Reconnect delays for everything that holds a broker connection. Doubling alone is not enough:
after a broker restart every unit of a fleet retries at the same instants (0.5, 1, 2 ... s after
the drop) and the broker takes thousands of TLS handshakes at once (bench/fleet.py's storm took
17-52 s to recover at 2,000 units). Each delay is drawn between half and all of its doubled step
("equal jitter"), so the retries spread out while the first one stays quick."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first_s: float, most_s: float, rng: random.Random | None = None) -> None:
        self._first = first_s
        self._most = most_s
        self._step = first_s
        self._rng = rng or random.Random()

    def reset(self) -> None:
        """The connection came up: the next drop starts again from the first step."""
        self._step = self._first

    def next(self) -> float:
        delay = self._rng.uniform(self._step / 2, self._step)
        self._step = min(self._step * 2, self._most)
        return delay


def retry_delay(attempt: int, first_s: float, most_s: float, rng: random.Random | None = None) -> float:
    """The wait after a durable outbox's ``attempt``-th failed try of one message: the same doubling
    and equal jitter as ``Backoff``, for a row that keeps its attempt count rather than a connection
    that keeps its step (so messages queued together by one outage do not all come back at once)."""
    step = min(first_s * 2.0 ** min(max(attempt - 1, 0), 60), most_s)
    return (rng or random).uniform(step / 2, step)
