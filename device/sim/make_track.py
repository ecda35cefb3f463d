"""Generates ``device/sim/kunming_track.nmea``, the capture the simulated GNSS receiver plays.

A ten-minute drive at 1 Hz round 翠湖 (Green Lake) in central Kunming, all of it inside 五华区
(adcode 530102), as a u-blox M8 in NMEA 4.10 mode would report it: RMC, VTG, GGA, one GSA per
constellation every second, GPS and BeiDou GSV every fifth second (what fits a 9600 baud UART).
The car starts parked, stops at the 人民中路 lights and once more for a crossing, and parks again
where it started, so the capture loops without a jump.

The waypoints come from a GCJ-02 map, like every map published in China; the NMEA must be WGS-84
like a receiver's, so they are converted, and every generated fix is checked (back in GCJ-02)
against the district polygon before the file is written; the polygons default to the copy the
server routes by (``server/geo/data``), which is the same Amap data as ``data/geo/kunming``.
The randomness is seeded, so running it again gives the same file.

    python -m device.sim.make_track [--districts FILE] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from device.hal.nmea import KNOT_MPS, with_checksum
from protocol.datum import gcj02_to_wgs84, wgs84_to_gcj02

DEFAULT_OUT = Path(__file__).with_name("kunming_track.nmea")
DEFAULT_DISTRICTS = Path(__file__).parents[2] / "server" / "geo" / "data" / "pilot_districts_gcj02.geojson"
WUHUA = "530102"
START = datetime(2024, 5, 18, 2, 30, tzinfo=UTC)  # 10:30 in Kunming
SEED = 530102

# (lon, lat) GCJ-02, with the speed limit (m/s) of the road that starts there.
ROUTE: list[tuple[float, float, float]] = [
    (102.70235, 25.04695, 6.5),  # 翠湖西路 at 翠湖南路, parked; north along the lake's west side
    (102.70255, 25.05280, 7.0),  # 翠湖北路 past 云南大学, east
    (102.70580, 25.05345, 7.0),
    (102.70900, 25.05310, 7.5),  # 翠湖东路, south
    (102.70870, 25.04700, 8.5),  # into 五一路
    (102.70830, 25.04410, 9.0),  # 人民中路 lights, straight on
    (102.70800, 25.04030, 12.5),  # 东风西路, west
    (102.70330, 25.04005, 7.5),  # north
    (102.70330, 25.04382, 7.0),  # 人民中路, west
    (102.70200, 25.04380, 6.5),  # north back to the lake
    (102.70235, 25.04695, 0.0),
]
# Where the car stands still: (distance along the route in m, seconds).
LIGHTS_AT_VERTEX = 5
LIGHTS_S = 38.0
CROSSING_AFTER_LIGHTS_M = 240.0
CROSSING_S = 9.0
PARKED_S = 6.0

ACCEL = 1.3  # m/s², a calm driver
BRAKE = 1.8
CORNER_SPEED = 4.5  # m/s through a right-angle turn
STEP_S = 0.05
METRES_PER_DEG_LAT = 110_574.0
ALT_BASE_M = 1891.0
GEOID_SEP_M = -31.2
GPS_SATS = [(2, 64, 41), (5, 18, 286), (12, 33, 318), (13, 55, 97), (15, 21, 205), (18, 42, 163), (20, 9, 52),
            (24, 26, 244), (25, 72, 330), (29, 14, 120)]  # fmt: skip
BDS_SATS = [(1, 47, 134), (3, 55, 197), (4, 35, 118), (6, 63, 189), (9, 58, 214), (13, 38, 228), (16, 66, 188),
            (21, 24, 301), (22, 40, 37), (34, 16, 73), (39, 51, 174)]  # fmt: skip


@dataclass
class Sample:
    t: int
    s: float
    v: float


class Path2D:
    """The route in local metres east/north of its first point, walked by distance."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        self.lon0, self.lat0 = points[0]
        self.mx = METRES_PER_DEG_LAT * math.cos(math.radians(self.lat0))
        self.xy = [((lon - self.lon0) * self.mx, (lat - self.lat0) * METRES_PER_DEG_LAT) for lon, lat in points]
        self.cum = [0.0]
        for (x0, y0), (x1, y1) in pairwise(self.xy):
            self.cum.append(self.cum[-1] + math.hypot(x1 - x0, y1 - y0))
        self.length = self.cum[-1]

    def segment(self, s: float) -> int:
        for i in range(len(self.cum) - 1):
            if s < self.cum[i + 1]:
                return i
        return len(self.cum) - 2

    def at(self, s: float) -> tuple[float, float]:
        s = min(max(s, 0.0), self.length)
        i = self.segment(s)
        (x0, y0), (x1, y1) = self.xy[i], self.xy[i + 1]
        f = (s - self.cum[i]) / (self.cum[i + 1] - self.cum[i])
        return x0 + f * (x1 - x0), y0 + f * (y1 - y0)

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        return self.lon0 + x / self.mx, self.lat0 + y / METRES_PER_DEG_LAT

    def turn(self, vertex: int) -> float:
        """How many degrees the route turns at a vertex."""
        (x0, y0), (x1, y1), (x2, y2) = self.xy[vertex - 1 : vertex + 2]
        a = math.atan2(x1 - x0, y1 - y0)
        b = math.atan2(x2 - x1, y2 - y1)
        return abs(math.degrees((b - a + math.pi) % (2 * math.pi) - math.pi))

    def heading(self, s: float) -> float:
        """Bearing of the chord 6 m either side: turns come out gradual, as a car drives them."""
        (x0, y0), (x1, y1) = self.at(s - 6), self.at(s + 6)
        return math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360


def drive(path: Path2D, limits: list[float]) -> list[Sample]:
    """Speed along the route at 1 s steps: accelerate to the limit, brake for turns and stops."""
    rng = random.Random(SEED)
    corners = [(path.cum[i], corner_speed(path.turn(i))) for i in range(1, len(path.cum) - 1)]
    lights = path.cum[LIGHTS_AT_VERTEX]
    stops = [(lights, LIGHTS_S), (lights + CROSSING_AFTER_LIGHTS_M, CROSSING_S), (path.length, PARKED_S)]
    samples = [Sample(t, 0.0, 0.0) for t in range(int(PARKED_S))]
    ticks, s, v, hold = 0, 0.0, 0.0, 0.0
    wobble = rng.uniform(0, 2 * math.pi)
    while stops:
        ticks += 1
        t = PARKED_S + ticks * STEP_S
        if hold > 0:
            hold -= STEP_S
        else:
            limit = limits[path.segment(s)] * (1 + 0.08 * math.sin(t / 23 + wobble))
            for at, speed in corners + [(at, 0.0) for at, _ in stops]:
                if at >= s:
                    limit = min(limit, math.sqrt(speed**2 + 2 * BRAKE * (at - s)))
            v = min(v + ACCEL * STEP_S, limit)
            s += v * STEP_S
            if s >= stops[0][0] - 0.3:
                s, v, hold = stops[0][0], 0.0, stops[0][1]
                stops.pop(0)
        if ticks % round(1 / STEP_S) == 0:
            samples.append(Sample(len(samples), s, v))
    samples.extend(Sample(len(samples), s, 0.0) for _ in range(round(hold)))
    return samples


def corner_speed(turn_deg: float) -> float:
    """Slow to CORNER_SPEED for a right angle, less for a bend (lateral acceleration ~ v²/r)."""
    return CORNER_SPEED * math.sqrt(90 / max(turn_deg, 1.0))


def _dm(value: float, degree_digits: int) -> str:
    degrees = int(value)
    return f"{degrees:0{degree_digits}d}{(value - degrees) * 60:08.5f}"


def _gsv(talker: str, sats: list[tuple[int, int, int, int]]) -> list[str]:
    groups = [sats[i : i + 4] for i in range(0, len(sats), 4)]
    lines = []
    for n, group in enumerate(groups, 1):
        fields = [f"{talker}GSV", str(len(groups)), str(n), f"{len(sats):02d}"]
        for prn, elev, az, snr in group:
            fields += [f"{prn:02d}", f"{elev:02d}", f"{az:03d}", f"{snr:02d}" if snr else ""]
        lines.append(with_checksum(",".join([*fields, "1"])))
    return lines


def epochs(path: Path2D, samples: list[Sample]) -> list[tuple[list[str], float, float]]:
    """The NMEA sentences of each epoch, with its WGS-84 lon/lat for the district check."""
    rng = random.Random(SEED + 1)
    out = []
    ex = ey = 0.0
    used = 13.0
    y_max = max(y for _, y in path.xy)
    for sample in samples:
        moving = sample.v > 0.3
        if moving:  # receiver noise: about a metre, wandering slowly; held still when stopped
            ex = 0.9 * ex + rng.gauss(0, 0.35)
            ey = 0.9 * ey + rng.gauss(0, 0.35)
        x, y = path.at(sample.s)
        lon, lat = gcj02_to_wgs84(*path.lonlat(x + ex, y + ey))
        when = START + timedelta(seconds=sample.t)
        hhmmss = when.strftime("%H%M%S.00")
        speed = max(0.0, sample.v + rng.gauss(0, 0.06)) if moving else 0.0
        knots = speed / KNOT_MPS
        course = f"{round(path.heading(sample.s) + rng.gauss(0, 0.8), 2) % 360:.2f}" if moving else ""
        under_trees = y > y_max - 60  # 翠湖北路 runs under a canopy of old trees
        used += 0.1 * ((10.0 if under_trees else 13.5) - used) + rng.gauss(0, 0.45)
        used = min(16.0, max(9.0, used))
        n_used = round(used)
        snrs = {
            (talker, prn): max(0, int(18 + elev * 0.35 + rng.gauss(0, 2.5) - (9 if under_trees else 0)))
            for talker, sats in (("GP", GPS_SATS), ("BD", BDS_SATS))
            for prn, elev, _ in sats
        }
        ranked = sorted(snrs, key=lambda k: -snrs[k])[:n_used]
        gps_used = sorted(prn for talker, prn in ranked if talker == "GP")
        bds_used = sorted(prn for talker, prn in ranked if talker == "BD")
        hdop = min(1.5, max(0.7, 0.68 + (16 - n_used) * 0.085 + rng.gauss(0, 0.03)))
        pdop = hdop * 1.62
        vdop = pdop * 0.78
        alt = ALT_BASE_M + 0.006 * y + rng.gauss(0, 0.4)
        lat_s, lon_s = _dm(lat, 2), _dm(lon, 3)
        date = when.strftime("%d%m%y")
        lines = [
            with_checksum(f"GNRMC,{hhmmss},A,{lat_s},N,{lon_s},E,{knots:.3f},{course},{date},,,A,V"),
            with_checksum(f"GNVTG,{course},T,,M,{knots:.3f},N,{speed * 3.6:.3f},K,A"),
            with_checksum(
                f"GNGGA,{hhmmss},{lat_s},N,{lon_s},E,1,{n_used:02d},{hdop:.2f},{alt:.1f},M,{GEOID_SEP_M},M,,"
            ),
        ]
        for used_ids, system in ((gps_used, 1), (bds_used, 4)):
            ids = [f"{prn:02d}" for prn in used_ids] + [""] * (12 - len(used_ids))
            lines.append(with_checksum(f"GNGSA,A,3,{','.join(ids)},{pdop:.2f},{hdop:.2f},{vdop:.2f},{system}"))
        if sample.t % 5 == 0:
            for talker, sats in (("GP", GPS_SATS), ("BD", BDS_SATS)):
                lines += _gsv(talker, [(prn, elev, az, snrs[(talker, prn)]) for prn, elev, az in sats])
        out.append((lines, lon, lat))
    return out


def district_rings(path: Path, adcode: str) -> list[list[tuple[float, float]]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    for feature in doc["features"]:
        if str(feature["properties"]["adcode"]) == adcode:
            geometry = feature["geometry"]
            polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
            return [[(x, y) for x, y, *_ in ring] for polygon in polygons for ring in polygon]
    raise SystemExit(f"{path}: no feature with adcode {adcode}")


def inside(rings: list[list[tuple[float, float]]], lon: float, lat: float) -> bool:
    """Even-odd ray cast over every ring, so holes and separate parts both come out right."""
    crossings = 0
    for ring in rings:
        for (x0, y0), (x1, y1) in pairwise([*ring, ring[0]]):
            if (y0 > lat) != (y1 > lat) and lon < x0 + (lat - y0) * (x1 - x0) / (y1 - y0):
                crossings += 1
    return crossings % 2 == 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m device.sim.make_track", description=__doc__.split("\n")[0])
    parser.add_argument("--districts", type=Path, default=DEFAULT_DISTRICTS, help="district polygons, GCJ-02")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    path = Path2D([(lon, lat) for lon, lat, _ in ROUTE])
    samples = drive(path, [limit for _, _, limit in ROUTE])
    generated = epochs(path, samples)
    rings = district_rings(args.districts, WUHUA)
    outside = [i for i, (_, lon, lat) in enumerate(generated) if not inside(rings, *wgs84_to_gcj02(lon, lat))]
    if outside:
        print(f"{len(outside)} fixes fall outside 五华区, the first at second {outside[0]}", file=sys.stderr)
        return 1
    text = "".join(line + "\r\n" for lines, _, _ in generated for line in lines)
    args.out.write_bytes(text.encode("ascii"))
    top = max(sample.v for sample in samples)
    stopped = sum(sample.v == 0 for sample in samples)
    print(
        f"{args.out}: {len(samples)} s, {path.length:.0f} m, top speed {top:.1f} m/s, "
        f"{stopped} s standing, {len(text)} bytes, all inside 五华区"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
