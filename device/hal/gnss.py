"""The GNSS receiver as the app sees it: the latest fix, the last minute of track, its health.

A backend only moves bytes: it calls ``_feed`` with whatever the receiver sent and
``_port_problem`` when it cannot reach the receiver, always on the event loop. Parsing, the track,
subscriptions and the health rules live here, so the app never branches on which backend it has
(``serial`` for a Pi, ``simulated``, which plays a capture into a pseudo-terminal and reads it
back with the same serial code).

Ages are measured on the monotonic clock from when a fix arrived, not from the receiver's time
stamp: the Pi has no real-time clock and may not have set its wall clock yet.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from device.config import GnssSection
from device.hal.nmea import Fix, NmeaReader, NmeaStats
from protocol.messages import PartState, Position

TRACK_KEEP_S = 60.0
BAD_WINDOW_S = 60.0
# A checksum error now and then is a UART's life; this many in a minute means a bad connection.
BAD_SENTENCES_LIMIT = 10
_SUBSCRIBER_QUEUE = 16  # a subscriber this far behind loses the oldest fixes, never blocks the reader
_NOTE_CHARS = 120


@dataclass(frozen=True, slots=True)
class GnssHealth:
    state: PartState
    note: str | None = None


class FixStream:
    """One subscriber's fixes. It is subscribed from the moment it is made, not from the first
    ``anext``, so a fix that arrives in between is not lost."""

    def __init__(self, subscribers: set[asyncio.Queue[Fix]]) -> None:
        self._queue: asyncio.Queue[Fix] = asyncio.Queue(maxsize=_SUBSCRIBER_QUEUE)
        self._subscribers = subscribers
        subscribers.add(self._queue)

    def __aiter__(self) -> FixStream:
        return self

    async def __anext__(self) -> Fix:
        return await self._queue.get()

    def close(self) -> None:
        self._subscribers.discard(self._queue)

    def __enter__(self) -> FixStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Gnss(ABC):
    """Base of the GNSS backends.

    A backend must implement ``start`` (begin delivering bytes, without blocking the loop and
    without raising when the receiver is missing) and ``stop``; it calls ``_started`` when it
    begins trying, ``_port_opened`` each time it has the port open, ``_feed`` with received
    bytes, and ``_port_problem`` with a short reason when it cannot open or read the port.
    """

    def __init__(self, cfg: GnssSection, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._clock = clock
        self._reader = NmeaReader()
        self._track: deque[tuple[float, Fix]] = deque()
        self._subscribers: set[asyncio.Queue[Fix]] = set()
        self._started_at: float | None = None
        self._quiet_since = 0.0  # last bytes, or the (re)opening of the port
        self._problem: str | None = None
        self._bad_seen = 0
        self._bad_times: deque[tuple[float, int]] = deque()

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @property
    def stats(self) -> NmeaStats:
        return self._reader.stats

    def latest(self) -> Fix | None:
        return self._track[-1][1] if self._track else None

    def position(self, now: datetime) -> Position | None:
        """The latest fix as the protocol carries it (``trusted`` judged at ``now``), or None."""
        fix = self.latest()
        return None if fix is None else fix.to_position(self.cfg, now)

    def track(self, seconds: float) -> list[Fix]:
        """The fixes that arrived in the last ``seconds`` (at most a minute), oldest first."""
        since = self._clock() - seconds
        return [fix for at, fix in self._track if at >= since]

    def fixes(self) -> FixStream:
        """Every fix from this call on, as an async iterator; use it in ``with`` or close it."""
        return FixStream(self._subscribers)

    def health(self) -> GnssHealth:
        now = self._clock()
        if self._started_at is None:
            return GnssHealth(PartState.FAILED, "not started")
        if self._problem is not None:
            return GnssHealth(PartState.FAILED, self._problem[:_NOTE_CHARS])
        silent_s = now - self._quiet_since
        if silent_s > self.cfg.silent_after_s:
            return GnssHealth(PartState.FAILED, f"silent for {silent_s:.0f} s")
        while self._bad_times and self._bad_times[0][0] < now - BAD_WINDOW_S:
            self._bad_times.popleft()
        bad = sum(n for _, n in self._bad_times)
        notes = []
        latest = self._track[-1] if self._track else None
        if latest is None or now - latest[0] > self.cfg.max_trusted_age_s:
            in_view = self._reader.sats_in_view
            notes.append("no fix" if in_view is None else f"no fix, {in_view} satellites in view")
        elif (weakness := latest[1].weakness(self.cfg)) is not None:
            notes.append(f"weak fix: {weakness}")
        if bad >= BAD_SENTENCES_LIMIT:
            notes.append(f"{bad} bad sentences in {BAD_WINDOW_S:.0f} s")
        if not notes:
            return GnssHealth(PartState.OK)
        return GnssHealth(PartState.DEGRADED, "; ".join(notes)[:_NOTE_CHARS])

    def _started(self) -> None:
        self._started_at = self._quiet_since = self._clock()

    def _port_opened(self) -> None:
        self._problem = None
        self._quiet_since = self._clock()

    def _port_problem(self, problem: str) -> None:
        self._problem = problem

    def _feed(self, data: bytes) -> None:
        now = self._clock()
        self._quiet_since = now
        fixes = self._reader.feed(data)
        if (bad := self._reader.stats.bad) > self._bad_seen:
            self._bad_times.append((now, bad - self._bad_seen))
            self._bad_seen = bad
        for fix in fixes:
            self._publish(now, fix)

    def _publish(self, now: float, fix: Fix) -> None:
        self._track.append((now, fix))
        while self._track[0][0] < now - TRACK_KEEP_S:
            self._track.popleft()
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(fix)


def make_gnss(cfg: GnssSection) -> Gnss:
    """The backend ``[gnss] backend`` names; each is imported only when chosen."""
    if cfg.backend == "serial":
        from device.hal.gnss_serial import SerialGnss

        return SerialGnss(cfg)
    if cfg.backend == "simulated":
        from device.hal.gnss_simulated import SimulatedGnss

        return SimulatedGnss(cfg)
    raise ValueError(f"unknown GNSS backend {cfg.backend!r}")
