"""The GNSS checks: a fix good enough to route a report on within the timeout, and the system clock
against the receiver's time.

The receiver is watched from the moment the hardware starts, while the checks before it run, so
that the time to fix is counted from power-up of the receiver's port, as a technician expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from device.hal.gnss import Gnss
from device.hal.nmea import Fix
from device.selftest.outcome import Outcome
from protocol.messages import PartState

CLOCK_FIX_WAIT_S = 5.0


@dataclass(frozen=True)
class SeenFix:
    fix: Fix
    at: float  # monotonic arrival


class FixWatch:
    """Collects fixes in the background: the first usable one, and the last weak one for the record.

    Make it before the receiver starts (``opened`` is then its start), so no fix goes unseen.
    """

    def __init__(self, gnss: Gnss) -> None:
        self.gnss = gnss
        self.opened = time.monotonic()
        self.usable: SeenFix | None = None
        self.last_weak: tuple[Fix, str] | None = None
        self._found = asyncio.Event()
        self._stream = gnss.fixes()  # subscribed from here on
        self._task = asyncio.create_task(self._watch(), name="selftest-gnss")

    async def _watch(self) -> None:
        async for fix in self._stream:
            weakness = fix.weakness(self.gnss.cfg)
            if weakness is None:
                self.usable = SeenFix(fix, time.monotonic())
                self._found.set()
                return
            self.last_weak = (fix, weakness)

    async def wait(self, until: float) -> SeenFix | None:
        """The first usable fix, waiting until monotonic time ``until`` at the latest."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._found.wait(), max(0.0, until - time.monotonic()))
        return self.usable

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._stream.close()


async def check_gnss(watch: FixWatch, timeout_s: float) -> Outcome:
    seen = await watch.wait(watch.opened + timeout_s)
    if seen is not None:
        fix = seen.fix
        hdop = "unknown" if fix.hdop is None else f"{fix.hdop:g}"
        return Outcome.passed(
            f"{fix.mode}-D fix, {fix.sats} satellites, HDOP {hdop}, time to fix {seen.at - watch.opened:.1f} s"
        )
    if watch.last_weak is not None:
        fix, weakness = watch.last_weak
        return Outcome.failed(
            f"no usable fix within {timeout_s:g} s; the last was weak ({weakness}, {fix.sats} satellites)"
        )
    stats = watch.gnss.stats
    health = watch.gnss.health()
    wiring = "check the receiver's wiring, power and [gnss] port and baud"
    if health.state is PartState.FAILED:
        return Outcome.failed(f"no fix within {timeout_s:g} s: {health.note} ({stats.ok} sentences read); {wiring}")
    if stats.ok == 0:
        return Outcome.failed(f"no fix within {timeout_s:g} s: no NMEA sentences received; {wiring}")
    return Outcome.failed(
        f"no fix within {timeout_s:g} s: {health.note or 'no fix'} ({stats.ok} sentences read); "
        "give the antenna open sky"
    )


async def check_clock(gnss: Gnss, have_fix: bool, max_offset_s: float) -> Outcome:
    """The offset is taken as a fix arrives, so it includes the receiver's output delay (usually
    well under a second), which is why the bound is seconds, not milliseconds."""
    if not have_fix:
        return Outcome.failed("no GNSS fix to compare the system clock with (see the gnss check)")
    with gnss.fixes() as stream:
        try:
            fix = await asyncio.wait_for(anext(stream), CLOCK_FIX_WAIT_S)
        except TimeoutError:
            return Outcome.failed(f"the receiver sent no fix within {CLOCK_FIX_WAIT_S:g} s to compare the clock with")
        now = datetime.now(UTC)
    offset = (now - fix.time).total_seconds()
    direction = "ahead of" if offset >= 0 else "behind"
    measured = f"system clock {abs(offset):.2f} s {direction} GNSS time (bound {max_offset_s:g} s)"
    if abs(offset) > max_offset_s:
        return Outcome.failed(f"{measured}: set the time (NTP) before installing; reports carry this clock")
    return Outcome.passed(measured)
