"""NMEA 0183 from a GNSS receiver turned into fixes: bytes in, ``Fix`` out, no I/O.

The serial reader, ``kuaichu device gnss-replay`` and the tests push the same bytes through this
same code, the way pynmea2's ``stream`` module keeps parsing apart from reading. Receivers are
messy: a UART opened mid-sentence, binary UBX frames or line noise between sentences, a sentence
cut short by a buffer overrun. None of that may ever become a position that routes a report, so
a sentence counts only with a matching checksum, and a fix is built only from an epoch in which
no sentence says the fix is invalid.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from operator import xor
from typing import Any, Literal

import pynmea2
from pynmea2.nmea_utils import dm_to_sd

from device.config import GnssSection
from protocol.messages import FixQuality, Position, TrackPoint

log = logging.getLogger(__name__)

# NMEA 0183 allows 82 characters; some receivers' sentences run longer, but a "line" past this is
# two sentences run together or noise that happened to contain a '$'.
MAX_SENTENCE_CHARS = 120
# GPS, GLONASS, Galileo, BeiDou (both of its talker ids), any combination, QZSS.
TALKERS = frozenset({"GP", "GL", "GA", "BD", "GB", "GN", "GQ"})
KNOT_MPS = 1852 / 3600
# A 2-D fix assumes an altitude; at Kunming's 1,900 m an assumption that is off moves the
# horizontal position too, so a 2-D fix is trusted only with a clearly good geometry.
GOOD_2D_HDOP = 2.0
_GNSS_QUALITIES = frozenset(
    {FixQuality.GPS, FixQuality.DGPS, FixQuality.PPS, FixQuality.RTK_FIXED, FixQuality.RTK_FLOAT}
)
# RMC's mode indicator (NMEA 2.3+), as the GGA quality it corresponds to.
_RMC_MODES = {
    "A": FixQuality.GPS,
    "D": FixQuality.DGPS,
    "P": FixQuality.PPS,
    "R": FixQuality.RTK_FIXED,
    "F": FixQuality.RTK_FLOAT,
    "E": FixQuality.DEAD_RECKONING,
    "M": FixQuality.MANUAL,
    "S": FixQuality.SIMULATION,
}

_FIX_TYPES: dict[str, Literal[1, 2, 3]] = {"1": 1, "2": 2, "3": 3}  # GSA: no fix, 2-D, 3-D

_LINE = re.compile(r"\$(?P<body>[^$*]+)\*(?P<checksum>[0-9A-Fa-f]{2})")
_TIME = re.compile(r"(\d\d)(\d\d)(\d\d)(?:\.(\d{1,6}))?")
_DATE = re.compile(r"(\d\d)(\d\d)(\d\d)")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")

ErrorReason = Literal["bad_checksum", "no_checksum", "malformed"]


class NmeaError(Exception):
    """A line that is not a usable sentence.

    ``raw`` is the line as received, for a caller that wants to keep it; this module never logs it
    (it may hold the position of someone's car). ``detail`` names the problem without field values.
    """

    def __init__(self, reason: ErrorReason, raw: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: ErrorReason = reason
        self.raw = raw
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Gga:
    talker: str
    time: dt.time | None
    lat: float | None
    lon: float | None
    quality: FixQuality
    sats: int | None
    hdop: float | None
    alt: float | None


@dataclass(frozen=True, slots=True)
class Rmc:
    talker: str
    time: dt.time | None
    valid: bool
    lat: float | None
    lon: float | None
    speed: float | None
    track: float | None
    date: dt.date | None
    quality: FixQuality | None


@dataclass(frozen=True, slots=True)
class Gsa:
    talker: str
    mode: Literal[1, 2, 3]
    sat_ids: tuple[int, ...]
    hdop: float | None


@dataclass(frozen=True, slots=True)
class Vtg:
    talker: str
    valid: bool
    track: float | None
    speed: float | None


@dataclass(frozen=True, slots=True)
class Gsv:
    talker: str
    msg_num: int
    in_view: int


Sentence = Gga | Rmc | Gsa | Vtg | Gsv


def checksum(body: str) -> str:
    """The two hex digits after ``*``: XOR of everything between ``$`` and ``*``."""
    return f"{reduce(xor, body.encode('ascii'), 0):02X}"


def with_checksum(body: str) -> str:
    return f"${body}*{checksum(body)}"


def parse_sentence(line: str) -> Sentence | None:
    """One line (without its line ending) as a sentence, or None for a type we do not use.

    Raises NmeaError for a missing or wrong checksum and for fields that do not parse.
    """
    match = _LINE.fullmatch(line)
    if match is None:
        if "*" not in line:
            raise NmeaError("no_checksum", line, "no *hh checksum")
        raise NmeaError("malformed", line, "not a $...*hh sentence")
    body = match["body"]
    expected = checksum(body)
    if match["checksum"].upper() != expected:
        raise NmeaError("bad_checksum", line, f"checksum {match['checksum']}, computed {expected}")
    address = body.split(",", 1)[0]
    parser = _PARSERS.get(address[2:]) if len(address) == 5 and address[:2] in TALKERS else None
    if parser is None:
        return None
    try:
        return parser(pynmea2.parse(line, check=True))
    except pynmea2.ParseError:
        raise NmeaError("malformed", line, f"{address} does not parse") from None
    except ValueError as exc:
        raise NmeaError("malformed", line, f"{address}: {exc}") from None


def _field(msg: Any, name: str) -> str:
    """A field as text by pynmea2's name for it; a field the sentence stops short of is empty."""
    index: int = msg.name_to_idx[name]
    return str(msg.data[index]).strip() if index < len(msg.data) else ""


def _number(text: str, what: str) -> float | None:
    if not text:
        return None
    if _NUMBER.fullmatch(text) is None:
        raise ValueError(f"bad {what}")
    return float(text)


def _count(text: str, what: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"bad {what}")
    return int(text)


def _non_negative(value: float | None, what: str) -> float | None:
    if value is not None and value < 0:
        raise ValueError(f"negative {what}")
    return value


def _time_of_day(text: str) -> dt.time | None:
    """``hhmmss[.sss]`` to the millisecond (pynmea2's float arithmetic can lose one)."""
    if not text:
        return None
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError("bad time")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3])
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("time out of range")
    millis = int((match[4] or "").ljust(3, "0")[:3])
    return dt.time(hour, minute, second, millis * 1000)


def _date(text: str) -> dt.date | None:
    if not text:
        return None
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError("bad date")
    day, month, year = int(match[1]), int(match[2]), int(match[3])
    return dt.date(year + (2000 if year < 80 else 1900), month, day)


def _coordinate(value: str, hemisphere: str, signs: str, limit: float) -> float | None:
    """``dddmm.mmmm`` plus hemisphere (``signs`` is e.g. "NS": positive, negative) to degrees."""
    if not value and not hemisphere:
        return None
    if len(hemisphere) != 1 or hemisphere not in signs:
        raise ValueError("bad hemisphere")
    degrees: float = dm_to_sd(value)  # checks the ddmm.mmm shape, raises ValueError otherwise
    minutes = float(value[value.index(".") - 2 :])
    if minutes >= 60 or degrees > limit:
        raise ValueError("coordinate out of range")
    return degrees if hemisphere == signs[0] else -degrees


def _position(msg: Any) -> tuple[float | None, float | None]:
    lat = _coordinate(_field(msg, "lat"), _field(msg, "lat_dir"), "NS", 90)
    lon = _coordinate(_field(msg, "lon"), _field(msg, "lon_dir"), "EW", 180)
    return lat, lon


def _heading(text: str) -> float | None:
    value = _number(text, "course")
    if value is None:
        return None
    if not 0 <= value <= 360:
        raise ValueError("course out of range")
    return value % 360


def _gga(msg: Any) -> Gga:
    quality_code = _count(_field(msg, "gps_qual"), "fix quality")
    if quality_code is None:
        raise ValueError("no fix quality")
    quality = FixQuality(quality_code)
    lat, lon = _position(msg)
    if quality is not FixQuality.INVALID and (lat is None or lon is None):
        raise ValueError("a fix without a position")
    if _field(msg, "altitude_units") not in ("", "M"):
        raise ValueError("altitude not in metres")
    return Gga(
        talker=msg.talker,
        time=_time_of_day(_field(msg, "timestamp")),
        lat=lat,
        lon=lon,
        quality=quality,
        sats=_count(_field(msg, "num_sats"), "satellite count"),
        hdop=_non_negative(_number(_field(msg, "horizontal_dil"), "hdop"), "hdop"),
        alt=_number(_field(msg, "altitude"), "altitude"),
    )


def _rmc(msg: Any) -> Rmc:
    status = _field(msg, "status")
    if status not in ("A", "V"):
        raise ValueError("bad status")
    mode = _field(msg, "mode_indicator")
    valid = status == "A" and mode != "N"
    lat, lon = _position(msg)
    if valid and (lat is None or lon is None):
        raise ValueError("a fix without a position")
    knots = _non_negative(_number(_field(msg, "spd_over_grnd"), "speed"), "speed")
    return Rmc(
        talker=msg.talker,
        time=_time_of_day(_field(msg, "timestamp")),
        valid=valid,
        lat=lat,
        lon=lon,
        speed=None if knots is None else knots * KNOT_MPS,
        track=_heading(_field(msg, "true_course")),
        date=_date(_field(msg, "datestamp")),
        quality=_RMC_MODES.get(mode),
    )


def _gsa(msg: Any) -> Gsa:
    mode = _FIX_TYPES.get(_field(msg, "mode_fix_type"))
    if mode is None:
        raise ValueError("bad fix type")
    ids = (_count(_field(msg, f"sv_id{n:02d}"), "satellite id") for n in range(1, 13))
    return Gsa(
        talker=msg.talker,
        mode=mode,
        sat_ids=tuple(i for i in ids if i is not None),
        hdop=_non_negative(_number(_field(msg, "hdop"), "hdop"), "hdop"),
    )


def _vtg(msg: Any) -> Vtg:
    if _field(msg, "true_track_sym") not in ("", "T"):
        raise ValueError("not the NMEA 2.0 VTG layout")
    kmh = _non_negative(_number(_field(msg, "spd_over_grnd_kmph"), "speed"), "speed")
    knots = _non_negative(_number(_field(msg, "spd_over_grnd_kts"), "speed"), "speed")
    if kmh is not None:
        speed: float | None = kmh / 3.6
    else:
        speed = None if knots is None else knots * KNOT_MPS
    return Vtg(
        talker=msg.talker,
        valid=_field(msg, "faa_mode") != "N",
        track=_heading(_field(msg, "true_track")),
        speed=speed,
    )


def _gsv(msg: Any) -> Gsv:
    total = _count(_field(msg, "num_messages"), "message count")
    number = _count(_field(msg, "msg_num"), "message number")
    in_view = _count(_field(msg, "num_sv_in_view"), "satellites in view")
    if total is None or number is None or in_view is None or not 1 <= number <= total:
        raise ValueError("bad message numbering")
    return Gsv(talker=msg.talker, msg_num=number, in_view=in_view)


_PARSERS: dict[str, Callable[[Any], Sentence]] = {"GGA": _gga, "RMC": _rmc, "GSA": _gsa, "VTG": _vtg, "GSV": _gsv}


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


@dataclass
class NmeaStats:
    """What the receiver has sent so far, for the device's GNSS health."""

    ok: int = 0
    ignored: int = 0  # good checksum, a sentence type we do not use
    bad_checksum: int = 0
    malformed: int = 0  # no checksum (usually cut short) or fields that do not parse
    oversize: int = 0
    garbage_bytes: int = 0

    @property
    def bad(self) -> int:
        return self.bad_checksum + self.malformed + self.oversize


class LineSplitter:
    """Raw bytes in any chunking to candidate sentences: text from a ``$`` to the line end.

    Whatever precedes the last ``$`` of a line is noise (a UBX frame, a sentence cut short by
    the next one); a line without ``$``, or with bytes that are not printable ASCII after it, is
    noise too. Noise is counted in ``garbage_bytes`` and never held longer than one sentence.
    """

    def __init__(self, stats: NmeaStats | None = None, max_chars: int = MAX_SENTENCE_CHARS) -> None:
        self.stats = stats if stats is not None else NmeaStats()
        self._max = max_chars
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[str]:
        self._buf += chunk
        lines: list[str] = []
        while (end := self._buf.find(b"\n")) >= 0:
            line = bytes(self._buf[:end]).rstrip(b"\r")
            del self._buf[: end + 1]
            if (sentence := self._candidate(line)) is not None:
                lines.append(sentence)
        if len(self._buf) > self._max + 1:  # +1: a full-length sentence whose \r came without its \n
            start = self._buf.rfind(b"$")
            if start < 0 or len(self._buf) - start > self._max + 1:
                if start >= 0:
                    self.stats.oversize += 1
                self.stats.garbage_bytes += len(self._buf)
                self._buf.clear()
            else:
                self.stats.garbage_bytes += start
                del self._buf[:start]
        return lines

    def _candidate(self, line: bytes) -> str | None:
        start = line.rfind(b"$")
        if start < 0:
            self.stats.garbage_bytes += len(line)
            return None
        self.stats.garbage_bytes += start
        sentence = line[start:]
        if len(sentence) > self._max:
            self.stats.oversize += 1
            self.stats.garbage_bytes += len(sentence)
            return None
        if not all(0x20 <= byte < 0x7F for byte in sentence):
            self.stats.garbage_bytes += len(sentence)
            return None
        return sentence.decode("ascii")


class NmeaReader:
    """Splitter, parser and accumulator in one: what a serial port or a capture file is fed to."""

    def __init__(self) -> None:
        self.stats = NmeaStats()
        self._splitter = LineSplitter(self.stats)
        self._epochs = FixAccumulator()

    @property
    def sats_in_view(self) -> int | None:
        return self._epochs.sats_in_view

    def feed(self, chunk: bytes) -> list[Fix]:
        fixes: list[Fix] = []
        for line in self._splitter.feed(chunk):
            try:
                sentence = parse_sentence(line)
            except NmeaError as exc:
                if exc.reason == "bad_checksum":
                    self.stats.bad_checksum += 1
                else:
                    self.stats.malformed += 1
                log.debug("dropped a sentence: %s", exc)
                continue
            if sentence is None:
                self.stats.ignored += 1
                continue
            self.stats.ok += 1
            if (fix := self._epochs.add(sentence)) is not None:
                fixes.append(fix)
        return fixes

    def flush(self) -> list[Fix]:
        """At the end of a capture: the last epoch's fix, which no next epoch will close."""
        fix = self._epochs.flush()
        return [] if fix is None else [fix]
