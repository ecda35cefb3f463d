"""One NMEA 0183 line to one typed sentence, or a reason why it is not one.

A checksum, when the line carries one, must match; a line without one is taken only when the
caller allows it (a receiver that never sends checksums). A field that does not parse makes the
whole sentence malformed rather than a guess, so noise on the line can never become a position.
The talker (GP, GN, BD, IN, II ...) never decides whether a sentence counts: a vehicle's
integrated navigation box on the NMEA bus reports the same GGA as a GNSS module does, and gpsd
reads both alike.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pynmea2

from protocol.messages import FixQuality

KNOT_MPS = 1852 / 3600
# The mode indicator of RMC, GLL, GNS and VTG (NMEA 2.3+), as the GGA quality it corresponds to;
# N (not valid) is absent: it makes the sentence void.
_MODE_QUALITIES = {
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
_SENTENCE_CLASSES: dict[str, type[Any]] = pynmea2.TalkerSentence.sentence_types

_DEGREES_MINUTES = re.compile(r"(\d+)(\d\d\.\d*)")
_DATE = re.compile(r"(\d\d)(\d\d)(\d\d)")

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


@dataclass(slots=True)
class Gga:
    talker: str
    time: dt.time | None
    lat: float | None
    lon: float | None
    quality: FixQuality
    sats: int | None
    hdop: float | None
    alt: float | None

    @property
    def valid(self) -> bool:
        """A fix quality other than 0 from at least 3 satellites: gpsd takes no position from a GGA
        with fewer (or none given), as a dead-reckoning receiver in a tunnel sends."""
        return self.quality is not FixQuality.INVALID and (self.sats or 0) >= 3


@dataclass(slots=True)
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


@dataclass(slots=True)
class Gll:
    talker: str
    time: dt.time | None
    valid: bool
    lat: float | None
    lon: float | None
    quality: FixQuality | None


@dataclass(slots=True)
class Gns:
    """GNS: GGA's position with one mode letter per constellation instead of a quality number."""

    talker: str
    time: dt.time | None
    valid: bool
    lat: float | None
    lon: float | None
    quality: FixQuality | None
    sats: int | None
    hdop: float | None
    alt: float | None


@dataclass(slots=True)
class Zda:
    talker: str
    time: dt.time | None
    date: dt.date | None


@dataclass(slots=True)
class Gsa:
    talker: str
    mode: Literal[1, 2, 3]
    sat_ids: tuple[int, ...]
    hdop: float | None


@dataclass(slots=True)
class Vtg:
    talker: str
    valid: bool
    track: float | None
    speed: float | None


@dataclass(slots=True)
class Gsv:
    talker: str
    msg_num: int
    in_view: int


Sentence = Gga | Rmc | Gll | Gns | Zda | Gsa | Vtg | Gsv
Located = Gga | Rmc | Gll | Gns  # the sentences that report a position


def checksum(body: str) -> str:
    """The two hex digits after ``*``: XOR of everything between ``$`` and ``*``."""
    return f"{_xor(body):02X}"


def _xor(body: str) -> int:
    """XOR of all the bytes, by folding them as one integer: a third of the cost of a byte loop,
    which matters at tens of thousands of sentences a second."""
    data = body.encode("ascii")
    folded = int.from_bytes(data, "little")
    shift, bits = 8, len(data) << 3
    while shift < bits:
        folded ^= folded >> shift
        shift <<= 1
    return folded & 0xFF


def with_checksum(body: str) -> str:
    return f"${body}*{checksum(body)}"


def parse_sentence(line: str, *, allow_unchecked: bool = False) -> Sentence | None:
    """One line (without its line ending) as a sentence, or None for a type we do not use.

    Raises NmeaError for a wrong checksum, for a missing one unless ``allow_unchecked``, and for
    fields that do not parse. Hex digits may be lower case, as some receivers send them.
    """
    if not line.startswith("$") or not line.isascii() or not line.isprintable():
        raise NmeaError("malformed", line, "not a $... sentence")
    star = line.find("*")
    if star < 0:
        if not allow_unchecked:
            raise NmeaError("no_checksum", line, "no *hh checksum")
        body = line[1:]
    else:
        body, given = line[1:star], line[star + 1 :]
        if len(given) != 2 or "$" in body:
            raise NmeaError("malformed", line, "not a $...*hh sentence")
        try:
            matches = int(given, 16) == _xor(body)
        except ValueError:
            raise NmeaError("malformed", line, "checksum is not two hex digits") from None
        if not matches:
            raise NmeaError("bad_checksum", line, f"checksum {given}, computed {checksum(body)}")
    fields = body.split(",")
    address = fields[0]
    # Proprietary sentences ($PGRMC, $PUBX ...) are not talker + type, except Quectel's PQ (QZSS).
    if len(address) != 5 or (address[0] == "P" and address[1] != "Q"):
        return None
    kind = address[2:]
    parser = _PARSERS.get(kind)
    if parser is None:
        return None
    values = fields[1:]
    cls = _SENTENCE_CLASSES[kind]
    if (missing := len(cls.fields) + 1 - len(values)) > 0:  # + 1: GNS's status, past pynmea2's fields
        values += [""] * missing
    try:
        return parser(cls(address[:2], kind, values))
    except (ValueError, OverflowError) as exc:  # OverflowError: a day of the month of 30 digits
        raise NmeaError("malformed", line, f"{address}: {exc}") from None


def _field(msg: Any, name: str) -> str:
    """A field as text by pynmea2's name for it (``parse_sentence`` pads the fields a sentence
    stops short of with empty ones)."""
    text: str = msg.data[msg.name_to_idx[name]]
    return text


def _number(text: str, what: str) -> float | None:
    """A plain decimal number; float() alone would also take "nan", "1e9" or "1_0"."""
    if not text:
        return None
    digits = text[1:] if text[0] == "-" else text
    if not digits.replace(".", "", 1).isdigit():
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
    """``hhmmss[.sss…]`` to the millisecond, further digits cut off (pynmea2's float arithmetic can
    lose one); "hhmmss." is whole seconds, as gpsd reads it."""
    if not text:
        return None
    digits, _, fraction = text.partition(".")
    if len(digits) != 6 or not digits.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError("bad time")
    hour, minute, second = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("time out of range")
    return dt.time(hour, minute, second, int(fraction[:3].ljust(3, "0")) * 1000)


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
    match = _DEGREES_MINUTES.fullmatch(value)  # the shape pynmea2's dm_to_sd accepts
    if match is None:
        raise ValueError("bad coordinate")
    minutes = float(match[2])
    degrees = int(match[1]) + minutes / 60
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


def _time_and_position(msg: Any, valid: bool) -> tuple[dt.time | None, float | None, float | None]:
    """What every position sentence has; a sentence claiming a fix must carry a position."""
    lat, lon = _position(msg)
    if valid and (lat is None or lon is None):
        raise ValueError("a fix without a position")
    return _time_of_day(_field(msg, "timestamp")), lat, lon


def _gga(msg: Any) -> Gga:
    quality_code = _count(_field(msg, "gps_qual"), "fix quality")
    if quality_code is None:
        raise ValueError("no fix quality")
    quality = FixQuality(quality_code)
    time, lat, lon = _time_and_position(msg, quality is not FixQuality.INVALID)
    # An altitude in other units (none known to send one) is left out; the position still counts.
    metres = _field(msg, "altitude_units") in ("", "M")
    return Gga(
        talker=msg.talker,
        time=time,
        lat=lat,
        lon=lon,
        quality=quality,
        sats=_count(_field(msg, "num_sats"), "satellite count"),
        hdop=_non_negative(_number(_field(msg, "horizontal_dil"), "hdop"), "hdop"),
        alt=_number(_field(msg, "altitude"), "altitude") if metres else None,
    )


def _rmc(msg: Any) -> Rmc:
    """Valid with status A (or D) and a mode indicator other than N, and, as gpsd reads it, only
    with a date: gpsd takes neither time nor fix from an RMC whose date is empty."""
    status = _field(msg, "status")
    if status not in ("A", "D", "V"):  # D (differential) from some SiRF and Garmin firmware
        raise ValueError("bad status")
    mode = _field(msg, "mode_indicator")
    date = _date(_field(msg, "datestamp"))
    valid = status != "V" and mode != "N"
    time, lat, lon = _time_and_position(msg, valid)
    knots = _non_negative(_number(_field(msg, "spd_over_grnd"), "speed"), "speed")
    return Rmc(
        talker=msg.talker,
        time=time,
        valid=valid and date is not None,
        lat=lat,
        lon=lon,
        speed=None if knots is None else knots * KNOT_MPS,
        track=_heading(_field(msg, "true_course")),
        date=date,
        quality=FixQuality.DGPS if status == "D" and not mode else _MODE_QUALITIES.get(mode),
    )


def _gll(msg: Any) -> Gll:
    """GLL: NMEA 2.3+ adds a mode indicator; older receivers (and SiRF) send only the status,
    and the Garmin 65 sends neither time nor status."""
    mode = _field(msg, "faa_mode")
    valid = _field(msg, "status") == "A" and mode != "N"
    time, lat, lon = _time_and_position(msg, valid)
    return Gll(
        talker=msg.talker,
        time=time,
        valid=valid,
        lat=lat,
        lon=lon,
        quality=_MODE_QUALITIES.get(mode),
    )


def _gns(msg: Any) -> Gns:
    """Valid, as gpsd reads it, when the first mode letter (GPS, or the talker's one system) is
    not N and the NMEA 4.1 navigational status is not U (unsafe) or V (not valid)."""
    modes = _field(msg, "mode_indicator")
    nav_status = msg.data[len(msg.fields)]
    valid = bool(modes) and modes[0] != "N" and nav_status not in ("U", "V")
    time, lat, lon = _time_and_position(msg, valid)
    return Gns(
        talker=msg.talker,
        time=time,
        valid=valid,
        lat=lat,
        lon=lon,
        quality=_MODE_QUALITIES.get(modes[:1]),
        sats=_count(_field(msg, "num_sats"), "satellite count"),
        hdop=_non_negative(_number(_field(msg, "hdop"), "hdop"), "hdop"),
        alt=_number(_field(msg, "altitude"), "altitude"),
    )


def _zda(msg: Any) -> Zda:
    day, month, year = (_count(_field(msg, name), name) for name in ("day", "month", "year"))
    date = None
    if day is not None and month is not None and year is not None:
        if not 1980 <= year <= 2200:
            raise ValueError("year out of range")
        date = dt.date(year, month, day)
    return Zda(talker=msg.talker, time=_time_of_day(_field(msg, "timestamp")), date=date)


def _gsa(msg: Any) -> Gsa:
    mode = _FIX_TYPES.get(_field(msg, "mode_fix_type"))
    if mode is None:
        raise ValueError("bad fix type")
    first = msg.name_to_idx["sv_id01"]
    ids = [text for text in msg.data[first : first + 12] if text]
    if not all(text.isdigit() for text in ids):
        raise ValueError("bad satellite id")
    return Gsa(
        talker=msg.talker,
        mode=mode,
        sat_ids=tuple(map(int, ids)),
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


_PARSERS: dict[str, Callable[[Any], Sentence]] = {
    "GGA": _gga,
    "RMC": _rmc,
    "GLL": _gll,
    "GNS": _gns,
    "ZDA": _zda,
    "GSA": _gsa,
    "VTG": _vtg,
    "GSV": _gsv,
}
