"""The districts' outlines as SVG for the fleet page's map, drawn from the same GCJ-02 fences the
reports are routed by: no map tiles from outside (a console may have no internet, and tiles from
a foreign service would be in another datum), and a unit sits on the map where routing would put
its report.

The projection is equirectangular about the districts' middle latitude (a degree of longitude is
cos(latitude) of a degree of latitude): over a city of 50 km the error is far below a pixel. The
page gets the projection with the paths and places each unit itself, so the outlines, which never
change while the server runs, are fetched once and the units' positions every refresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from server.geo.fences import Fence, FenceSet, Ring

WIDTH = 1000.0  # the SVG's user units across; the height follows the districts' shape
MIN_STEP = 0.6  # units: closer points than this are not drawn (invisible, and they make the page heavy)


@dataclass(frozen=True)
class Projection:
    west: float
    north: float
    kx: float  # SVG units per degree of longitude
    ky: float  # per degree of latitude

    def point(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self.west) * self.kx, (self.north - lat) * self.ky


def _projection(fences: FenceSet) -> tuple[Projection, float]:
    rings = [p.exterior for f in fences.districts for p in f.polygons]
    lons = [lon for ring in rings for lon, _ in ring]
    lats = [lat for ring in rings for _, lat in ring]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    squash = math.cos(math.radians((south + north) / 2))
    kx = WIDTH / (east - west)
    ky = kx / squash
    return Projection(west, north, kx, ky), (north - south) * ky


def _path(ring: Ring, projection: Projection) -> str:
    points: list[tuple[float, float]] = []
    for lon, lat in ring:
        x, y = projection.point(lon, lat)
        if points and math.dist(points[-1], (x, y)) < MIN_STEP:
            continue
        points.append((x, y))
    return "M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in points) + "Z"


def _label(fence: Fence, projection: Projection) -> tuple[float, float]:
    """Where the name goes: the middle of the district's largest part's bounding box."""
    largest = max(fence.polygons, key=lambda p: (p.bbox[2] - p.bbox[0]) * (p.bbox[3] - p.bbox[1]))
    west, south, east, north = largest.bbox
    return projection.point((west + east) / 2, (south + north) / 2)


def district_map(fences: FenceSet) -> dict[str, Any]:
    """The map as the fleet page draws it: a viewBox, each district's path and label point, and the
    projection for the units (``x = (lon - west) * kx``, ``y = (north - lat) * ky``, GCJ-02)."""
    projection, height = _projection(fences)
    districts = []
    for fence in fences.districts:
        rings = [ring for polygon in fence.polygons for ring in (polygon.exterior, *polygon.holes)]
        x, y = _label(fence, projection)
        districts.append(
            {
                "adcode": fence.adcode,
                "name": fence.name,
                # Holes are cut by the even-odd rule the page draws with.
                "d": "".join(_path(ring, projection) for ring in rings),
                "label": [round(x, 1), round(y, 1)],
            }
        )
    return {
        "view_box": [0, 0, WIDTH, round(height, 1)],
        "datum": "GCJ-02",
        "projection": {"west": projection.west, "north": projection.north, "kx": projection.kx, "ky": projection.ky},
        "districts": districts,
    }
