"""Where a report belongs: which position to trust, and which district's unit gets the case.

Pure: a report and the fences in, a routing decision out. A report is never dropped for its
position; one that cannot be placed goes to the city command centre with a flag saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.datum import wgs84_to_gcj02
from protocol.messages import DeviceKind, Report
from server.geo.fences import FenceSet

CITY_UNIT_SUFFIX = "交警支队指挥中心"
DISTRICT_UNIT_SUFFIX = "交警大队"


@dataclass(frozen=True)
class Routing:
    unit_adcode: str
    unit_name: str
    lat: float | None
    lon: float | None
    lat_gcj02: float | None
    lon_gcj02: float | None
    source: str  # "gnss", "site" or "none"
    flag: str | None


def unit_name(fences: FenceSet, adcode: str) -> str:
    if adcode == fences.city.adcode:
        return fences.city.name + CITY_UNIT_SUFFIX
    for fence in fences.districts:
        if fence.adcode == adcode:
            return fence.name + DISTRICT_UNIT_SUFFIX
    raise KeyError(adcode)


def all_units(fences: FenceSet) -> list[tuple[str, str]]:
    codes = [fences.city.adcode, *(f.adcode for f in fences.districts)]
    return [(code, unit_name(fences, code)) for code in codes]


def route(report: Report, fences: FenceSet) -> Routing:
    flags: list[str] = []
    lat: float | None
    lon: float | None
    # A kiosk's surveyed site beats its own receiver, which sits beside a building; an in-car unit
    # has only its receiver, used even when untrusted (flagged) since it is the best we have.
    if report.device_kind is DeviceKind.KIOSK and report.site is not None:
        lat, lon, source = report.site.lat, report.site.lon, "site"
    elif report.position is not None:
        lat, lon, source = report.position.lat, report.position.lon, "gnss"
        if not report.position.trusted:
            flags.append("位置不可靠 (GNSS fix not trusted)")
    else:
        lat = lon = None
        source = "none"

    return route_point(lat, lon, source, flags, fences)


def route_point(lat: float | None, lon: float | None, source: str, flags: list[str], fences: FenceSet) -> Routing:
    """A WGS-84 position (a unit's, or a phone's browser's) to its district's unit, by the fences;
    outside them, or without a position, to the city command centre with a flag saying why."""
    flags = list(flags)
    city = fences.city.adcode
    if lat is None or lon is None:
        flags.append("无定位 (no position)")
        return Routing(city, unit_name(fences, city), None, None, None, None, source, "; ".join(flags))

    glon, glat = wgs84_to_gcj02(lon, lat)
    fence = fences.locate(lon, lat, "WGS-84")
    if fence is not None:
        adcode = fence.adcode
    else:
        adcode = city
        if fences.in_city(lon, lat, "WGS-84"):
            flags.append("试点辖区外 (outside the pilot districts)")
        else:
            flags.append("昆明市外 (outside Kunming)")
    return Routing(adcode, unit_name(fences, adcode), lat, lon, glat, glon, source, "; ".join(flags) or None)
