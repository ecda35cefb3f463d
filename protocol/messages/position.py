"""Where a device is: a GNSS fix as the receiver gave it, and the track leading up to it."""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from protocol.messages.base import Heading, Latitude, Longitude, Message, Speed


class FixQuality(IntEnum):
    """The GGA fix-quality indicator, kept as NMEA numbers it."""

    INVALID = 0
    GPS = 1
    DGPS = 2
    PPS = 3
    RTK_FIXED = 4
    RTK_FLOAT = 5
    DEAD_RECKONING = 6
    MANUAL = 7
    SIMULATION = 8


class Position(Message):
    """A GNSS fix, always WGS-84 as the receiver reports it."""

    time: AwareDatetime = Field(description="UTC time of the fix, from the receiver")
    lat: Latitude
    lon: Longitude
    datum: Literal["WGS-84"] = "WGS-84"
    alt_m: float | None = Field(default=None, ge=-500, le=9000, allow_inf_nan=False)
    mode: Literal[2, 3] = Field(description="2-D or 3-D fix")
    quality: FixQuality
    sats: int = Field(ge=0, le=99, description="satellites used in the fix")
    hdop: float | None = Field(default=None, ge=0, le=99.99, allow_inf_nan=False)
    speed_mps: Speed | None = None
    heading_deg: Heading | None = None
    trusted: bool = Field(
        description="the device judges the fix good enough to route on (fresh, 3-D or good 2-D, "
        "low HDOP, enough satellites, not simulated unless the device is)"
    )


class TrackPoint(Message):
    time: AwareDatetime
    lat: Latitude
    lon: Longitude
    speed_mps: Speed | None = None
    heading_deg: Heading | None = None
