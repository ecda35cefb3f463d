"""Sentences of one receiver epoch merged into one ``Fix``, and whether a fix may route a report.

A fix is built only from an epoch in which no sentence says the fix is invalid.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from device.config import GnssSection
from device.hal.nmea.sentences import Gga, Gsa, Gsv, Rmc, Sentence, Vtg
from protocol.messages import FixQuality, Position, TrackPoint

# A 2-D fix assumes an altitude; at Kunming's 1,900 m an assumption that is off moves the
# horizontal position too, so a 2-D fix is trusted only with a clearly good geometry.
GOOD_2D_HDOP = 2.0
_GNSS_QUALITIES = frozenset(
    {FixQuality.GPS, FixQuality.DGPS, FixQuality.PPS, FixQuality.RTK_FIXED, FixQuality.RTK_FLOAT}
)


@dataclass(frozen=True, slots=True)
class Fix:
    """One real fix: a receiver epoch in which no sentence said the fix was invalid.

    Coordinates are WGS-84 as the receiver reports them; ``alt`` is None for a 2-D fix, whose
    altitude the receiver assumed rather than measured.
    """

    time: dt.datetime
    lat: float
    lon: float
    alt: float | None
    speed: float | None
    track: float | None
    mode: Literal[2, 3]
    quality: FixQuality
    sats: int
    hdop: float | None

    def weakness(self, cfg: GnssSection) -> str | None:
        """Why this fix is not good enough to route a report on, its age aside; None if it is."""
        simulated = self.quality is FixQuality.SIMULATION and cfg.backend == "simulated"
        if self.quality not in _GNSS_QUALITIES and not simulated:
            return f"{self.quality.name.lower()} fix"
        if self.hdop is None:
            return "no hdop"
        if self.hdop > cfg.max_trusted_hdop:
            return f"hdop {self.hdop:g}"
        if self.sats < cfg.min_trusted_sats:
            return f"{self.sats} satellites"
        if self.mode == 2 and self.hdop > min(GOOD_2D_HDOP, cfg.max_trusted_hdop):
            return f"2-D fix, hdop {self.hdop:g}"
        return None

    def to_position(self, cfg: GnssSection, now: dt.datetime) -> Position:
        """The fix as the protocol carries it; ``trusted`` also wants it at most
        ``max_trusted_age_s`` away from ``now`` (either way: a clock far off is no better)."""
        fresh = abs((now - self.time).total_seconds()) <= cfg.max_trusted_age_s
        return Position(
            time=self.time,
            lat=self.lat,
            lon=self.lon,
            alt_m=self.alt if self.alt is not None and -500 <= self.alt <= 9000 else None,
            mode=self.mode,
            quality=self.quality,
            sats=min(self.sats, 99),
            hdop=None if self.hdop is None else min(self.hdop, 99.99),
            speed_mps=self.plausible_speed,
            heading_deg=self.track,
            trusted=fresh and self.weakness(cfg) is None,
        )

    def to_track_point(self) -> TrackPoint:
        return TrackPoint(
            time=self.time, lat=self.lat, lon=self.lon, speed_mps=self.plausible_speed, heading_deg=self.track
        )

    @property
    def plausible_speed(self) -> float | None:
        """The speed, unless the receiver claims more than any road vehicle does (the protocol's bound)."""
        return self.speed if self.speed is not None and self.speed <= 150 else None


@dataclass
class _Epoch:
    time: dt.time | None
    gga: Gga | None = None
    rmc: Rmc | None = None
    gsa: Gsa | None = None
    vtg: Vtg | None = None
    gsa_sats: int = 0  # one GSA per constellation: together they list every satellite used
    done: bool = False

    @property
    def complete(self) -> bool:
        return self.gga is not None and self.rmc is not None and self.gsa is not None


class FixAccumulator:
    """Merges the sentences of one receiver epoch (one UTC time) into at most one ``Fix``.

    An epoch opens with a timed sentence (GGA or RMC) carrying a new time; GSA, VTG and GSV
    have no time and belong to the epoch open when they arrive, which holds for the sentence
    orders receivers use (u-blox: RMC VTG GGA GSA GSV; MediaTek: GGA GSA GSV RMC VTG). The fix
    is emitted as soon as RMC, GGA and GSA have all been seen (GSA is what says 2-D or 3-D),
    otherwise when the next epoch opens or the stream ends (``flush``).
    """

    def __init__(self) -> None:
        self._epoch: _Epoch | None = None
        self._last_stamp: dt.datetime | None = None
        self._in_view: dict[str, int] = {}

    @property
    def sats_in_view(self) -> int | None:
        """Satellites the receiver last said it sees, all constellations; None before any GSV."""
        return sum(self._in_view.values()) if self._in_view else None

    def add(self, sentence: Sentence) -> Fix | None:
        if isinstance(sentence, Gsv):
            if sentence.msg_num == 1:
                self._in_view[sentence.talker] = sentence.in_view
            return None
        closed = None
        if isinstance(sentence, Gga | Rmc) and (self._epoch is None or sentence.time != self._epoch.time):
            closed = self.flush()
            self._epoch = _Epoch(sentence.time)
        epoch = self._epoch
        if epoch is None or epoch.done:
            return closed
        if isinstance(sentence, Gga):
            epoch.gga = epoch.gga or sentence
        elif isinstance(sentence, Rmc):
            epoch.rmc = epoch.rmc or sentence
        elif isinstance(sentence, Gsa):
            epoch.gsa = epoch.gsa or sentence
            epoch.gsa_sats += len(sentence.sat_ids)
        else:
            epoch.vtg = epoch.vtg or sentence
        if epoch.complete:
            epoch.done = True
            return self._build(epoch)
        return closed

    def flush(self) -> Fix | None:
        """Close the open epoch: the fix it makes if it was not emitted yet and is a real one."""
        epoch, self._epoch = self._epoch, None
        if epoch is None or epoch.done:
            return None
        return self._build(epoch)

    def _build(self, epoch: _Epoch) -> Fix | None:
        gga, rmc, gsa, vtg = epoch.gga, epoch.rmc, epoch.gsa, epoch.vtg
        if (
            (gga is not None and gga.quality is FixQuality.INVALID)
            or (rmc is not None and not rmc.valid)
            or (gsa is not None and gsa.mode == 1)
            or (vtg is not None and not vtg.valid)
        ):
            return None
        located = gga or rmc
        if epoch.time is None or located is None or located.lat is None or located.lon is None:
            return None
        stamp = self._stamp(epoch.time, rmc.date if rmc is not None else None)
        if stamp is None:
            return None
        three_d = gsa.mode == 3 if gsa is not None else gga is not None and gga.alt is not None
        mode: Literal[2, 3] = 3 if three_d else 2
        sats = gga.sats if gga is not None else None
        hdop = gga.hdop if gga is not None else None
        speed = rmc.speed if rmc is not None else None
        track = rmc.track if rmc is not None else None
        return Fix(
            time=stamp,
            lat=located.lat,
            lon=located.lon,
            alt=gga.alt if gga is not None and mode == 3 else None,
            speed=speed if speed is not None or vtg is None else vtg.speed,
            track=track if track is not None or vtg is None else vtg.track,
            mode=mode,
            quality=gga.quality if gga is not None else _rmc_quality(rmc),
            sats=sats if sats is not None else epoch.gsa_sats,
            hdop=hdop if hdop is not None or gsa is None else gsa.hdop,
        )

    def _stamp(self, time_of_day: dt.time, date: dt.date | None) -> dt.datetime | None:
        """The full UTC time; an epoch without RMC takes the date of the last one, across midnight."""
        if date is not None:
            stamp = dt.datetime.combine(date, time_of_day, dt.UTC)
        elif self._last_stamp is not None:
            stamp = dt.datetime.combine(self._last_stamp.date(), time_of_day, dt.UTC)
            if stamp < self._last_stamp - dt.timedelta(hours=12):
                stamp += dt.timedelta(days=1)
        else:
            return None
        self._last_stamp = stamp
        return stamp


def _rmc_quality(rmc: Rmc | None) -> FixQuality:
    """Without GGA, RMC's mode indicator is the only word on the fix quality; plain GPS if absent."""
    if rmc is None or rmc.quality is None:
        return FixQuality.GPS
    return rmc.quality
