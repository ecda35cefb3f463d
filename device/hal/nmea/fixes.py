"""Sentences of one receiver epoch merged into one ``Fix``, and whether a fix may route a report.

An epoch makes a fix when any of its position sentences reports a valid position, as gpsd reads
them; whether the unit trusts that fix enough to route a report on is a separate, stricter
judgement (``Fix.weakness``), so every fix gpsd would report is still seen and counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from device.config import GnssSection
from device.hal.nmea.sentences import Gga, Gll, Gns, Gsa, Gsv, Located, Rmc, Sentence, Vtg, Zda
from protocol.messages import FixQuality, Position, TrackPoint

# A 2-D fix assumes an altitude; at Kunming's 1,900 m an assumption that is off moves the
# horizontal position too, so a 2-D fix is trusted only with a clearly good geometry.
GOOD_2D_HDOP = 2.0
_GNSS_QUALITIES = frozenset(
    {FixQuality.GPS, FixQuality.DGPS, FixQuality.PPS, FixQuality.RTK_FIXED, FixQuality.RTK_FLOAT}
)
_QUALITY_NAMES_ZH = {
    FixQuality.DEAD_RECKONING: "航位推算",
    FixQuality.MANUAL: "手动输入",
    FixQuality.SIMULATION: "模拟",
}


@dataclass(frozen=True, slots=True)
class Fix:
    """One fix: a receiver epoch in which a position sentence reported a valid position.

    Coordinates are WGS-84 as the receiver reports them; ``alt`` is None for a 2-D fix, whose
    altitude the receiver assumed rather than measured. ``checked`` is False when the sentences
    came without checksums (accepted from a receiver that never sends them, never trusted);
    ``date_from_clock`` is True when the receiver had not yet sent a date (RMC or ZDA) and the
    date is the device's own.
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
    checked: bool = True
    date_from_clock: bool = False

    def weakness(self, cfg: GnssSection) -> str | None:
        """Why this fix is not good enough to route a report on, its age aside; None if it is."""
        reason = self._weakness(cfg)
        return None if reason is None else reason[1]

    def distrust(self, cfg: GnssSection) -> str | None:
        """``weakness`` for people to read: Chinese first, the English after it."""
        reason = self._weakness(cfg)
        return None if reason is None else f"{reason[0]} ({reason[1]})"

    def _weakness(self, cfg: GnssSection) -> tuple[str, str] | None:
        simulated = self.quality is FixQuality.SIMULATION and cfg.backend == "simulated"
        if not self.checked:
            return "语句没有校验和", "no checksum"
        if self.quality not in _GNSS_QUALITIES and not simulated:
            return f"{_QUALITY_NAMES_ZH.get(self.quality, '无效')}定位", f"{self.quality.name.lower()} fix"
        if self.hdop is None:
            return "接收机未给出 HDOP", "no hdop"
        if self.hdop > cfg.max_trusted_hdop:
            return f"HDOP {self.hdop:g} 过大", f"hdop {self.hdop:g}"
        if self.sats < cfg.min_trusted_sats:
            return f"仅 {self.sats} 颗卫星", f"{self.sats} satellites"
        if self.mode == 2 and self.hdop > min(GOOD_2D_HDOP, cfg.max_trusted_hdop):
            return f"二维定位且 HDOP {self.hdop:g}", f"2-D fix, hdop {self.hdop:g}"
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


# Before a receiver has shown what one epoch of its output holds: RMC, GGA and GSA (GSA is what
# says 2-D or 3-D), as most receivers send by default.
_FIRST_TEMPLATE = {Rmc: 1, Gga: 1, Gsa: 1}
_HALF_DAY = dt.timedelta(hours=12)


@dataclass
class _Epoch:
    """What the sentences of one UTC time said; the last valid position of the epoch wins, as the
    last one gpsd merges before it reports."""

    millis: int
    awaited: int  # sentences still to come before the epoch holds what the previous one held
    counts: dict[type, int] = field(default_factory=dict)
    located: Located | None = None
    gga: Gga | None = None
    gns: Gns | None = None
    rmc: Rmc | None = None
    vtg: Vtg | None = None
    gsa_mode: int = 0
    gsa_sats: int = 0  # one GSA per constellation: together they list every satellite used
    gsa_hdop: float | None = None
    unchecked: bool = False
    done: bool = False


def _millis(time: dt.time | None) -> int | None:
    if time is None:
        return None
    return ((time.hour * 60 + time.minute) * 60 + time.second) * 1000 + time.microsecond // 1000


class FixAccumulator:
    """Merges the sentences of one receiver epoch (one UTC time) into at most one ``Fix``, as gpsd
    does: an epoch makes a fix when any of its RMC, GGA, GNS or GLL reports a valid position,
    whatever the others say, and each sentence adds what it knows (altitude, speed, satellites,
    DOP, 2-D or 3-D).

    An epoch opens with a position sentence carrying a new time; GSA, VTG, ZDA and GSV have no
    time of their own that matters and belong to the epoch open when they arrive. A fix is emitted
    as soon as the epoch holds as many sentences of each kind as the previous epoch did (so a
    receiver's fix does not wait a whole second for the next epoch), otherwise when the next epoch
    opens or the stream ends (``flush``).

    The date comes from RMC or ZDA and is carried to the epochs that have only a time, across
    midnight; before a receiver has given any, it is the device's ``clock`` and the fix says so.
    """

    def __init__(self, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._clock = clock
        self._epoch: _Epoch | None = None
        self._template: dict[type, int] = _FIRST_TEMPLATE
        self._anchor: dt.datetime | None = None  # the last full time known, to date a time of day
        self._anchor_from_clock = False
        self._in_view: dict[str, int] = {}

    @property
    def sats_in_view(self) -> int | None:
        """Satellites the receiver last said it sees, all constellations; None before any GSV."""
        return sum(self._in_view.values()) if self._in_view else None

    def add(self, sentence: Sentence, *, checked: bool = True) -> tuple[Fix, ...]:
        """Take one sentence; ``checked`` is False for one that came without a checksum. Gives the
        fixes it completes: none, one, or two when it closes one epoch and completes the next."""
        kind = type(sentence)
        if kind is Gsv:
            assert isinstance(sentence, Gsv)
            if sentence.msg_num == 1:
                self._in_view[sentence.talker] = sentence.in_view
            return ()
        if isinstance(sentence, Zda | Rmc) and sentence.date is not None and sentence.time is not None:
            self._anchor = dt.datetime.combine(sentence.date, sentence.time, dt.UTC)
            self._anchor_from_clock = False
        if kind is Zda:
            return ()
        closed = None
        epoch = self._epoch
        if isinstance(sentence, Gga | Rmc | Gll | Gns):
            millis = _millis(sentence.time)
            if millis is not None and (epoch is None or millis != epoch.millis):
                closed = self.flush()
                epoch = self._epoch = _Epoch(millis, sum(self._template.values()))
        made = None if epoch is None else self._merge(epoch, sentence, checked)
        if closed is None:
            return () if made is None else (made,)
        return (closed,) if made is None else (closed, made)

    def _merge(self, epoch: _Epoch, sentence: Sentence, checked: bool) -> Fix | None:
        """Adds a sentence to its epoch; the fix, once the epoch holds what the previous one held."""
        kind = type(sentence)
        seen = epoch.counts[kind] = epoch.counts.get(kind, 0) + 1
        if seen <= self._template.get(kind, 0):
            epoch.awaited -= 1
        if epoch.done:
            return None
        epoch.unchecked |= not checked
        if isinstance(sentence, Gsa):
            epoch.gsa_mode = max(epoch.gsa_mode, sentence.mode)
            epoch.gsa_sats += len(sentence.sat_ids)
            if epoch.gsa_hdop is None:
                epoch.gsa_hdop = sentence.hdop
        elif isinstance(sentence, Vtg):
            if sentence.valid:
                epoch.vtg = sentence
        elif isinstance(sentence, Gga | Rmc | Gll | Gns) and sentence.valid:
            epoch.located = sentence
            if isinstance(sentence, Gga):
                epoch.gga = sentence
            elif isinstance(sentence, Gns):
                epoch.gns = sentence
            elif isinstance(sentence, Rmc):
                epoch.rmc = sentence
        if epoch.located is None or epoch.awaited > 0:
            return None
        epoch.done = True
        return self._build(epoch)

    def flush(self) -> Fix | None:
        """Close the open epoch: the fix it makes if it was not emitted yet and is a real one."""
        epoch, self._epoch = self._epoch, None
        if epoch is None:
            return None
        self._template = epoch.counts
        return None if epoch.done else self._build(epoch)

    def _build(self, epoch: _Epoch) -> Fix | None:
        located = epoch.located
        if located is None or located.lat is None or located.lon is None:
            return None
        gga, gns, rmc, vtg = epoch.gga, epoch.gns, epoch.rmc, epoch.vtg
        sats = gga.sats if gga is not None else None
        sats = sats if sats is not None or gns is None else gns.sats
        hdop = gga.hdop if gga is not None else None
        hdop = hdop if hdop is not None or gns is None else gns.hdop
        hdop = hdop if hdop is not None else epoch.gsa_hdop
        alt = gga.alt if gga is not None else None
        alt = alt if alt is not None or gns is None else gns.alt
        if epoch.gsa_mode >= 2:
            mode: Literal[2, 3] = 3 if epoch.gsa_mode == 3 else 2
        else:  # no GSA: an altitude from enough satellites makes it 3-D, as in gpsd
            mode = 3 if alt is not None and sats is not None and sats >= 4 else 2
        speed = rmc.speed if rmc is not None else None
        track = rmc.track if rmc is not None else None
        stamp = self._stamp(epoch.millis)
        return Fix(
            time=stamp,
            lat=located.lat,
            lon=located.lon,
            alt=alt if mode == 3 else None,
            speed=speed if speed is not None or vtg is None else vtg.speed,
            track=track if track is not None or vtg is None else vtg.track,
            mode=mode,
            quality=gga.quality if gga is not None else _quality(gns, rmc, located),
            sats=sats if sats is not None else epoch.gsa_sats,
            hdop=hdop if hdop is None or hdop < 99 else None,  # 99.99: "no DOP" to many receivers
            checked=not epoch.unchecked,
            date_from_clock=self._anchor_from_clock,
        )

    def _stamp(self, millis: int) -> dt.datetime:
        """The full UTC time: the known date, or the day either side of it nearest the time of day."""
        if self._anchor is None:
            self._anchor, self._anchor_from_clock = self._clock().astimezone(dt.UTC), True
        day = dt.datetime.combine(self._anchor.date(), dt.time(), dt.UTC)
        stamp = day + dt.timedelta(milliseconds=millis)
        if stamp < self._anchor - _HALF_DAY:
            stamp += dt.timedelta(days=1)
        elif stamp > self._anchor + _HALF_DAY:
            stamp -= dt.timedelta(days=1)
        self._anchor = stamp
        return stamp


def _quality(gns: Gns | None, rmc: Rmc | None, located: Located) -> FixQuality:
    """Without a valid GGA, the mode letter of GNS, RMC or GLL is the word on the fix quality;
    plain GPS when none gives one (NMEA before 2.3)."""
    for sentence in (gns, rmc, located):
        if sentence is not None and not isinstance(sentence, Gga) and sentence.quality is not None:
            return sentence.quality
    return FixQuality.GPS
