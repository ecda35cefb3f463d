"""District geofences (电子围栏): which traffic-police unit a reported position belongs to.

A report is routed to the unit of the district it falls in. The boundaries we have are GCJ-02, a
GNSS fix is WGS-84, and the two differ by a few hundred metres in Kunming, so every lookup names
the datum of its coordinate and a WGS-84 point is converted before it is tested; there is no
default datum to forget.

Pure Python on purpose (no shapely/GEOS to build on a small server): each polygon keeps its
bounding box and its edges bucketed into horizontal bands, so a lookup tests a few dozen edges
with an even-odd ray cast instead of thousands. The ray cast is half-open (an edge counts when
``y0 <= y < y1`` and the point lies strictly left of it) and a shared edge is stored the same way
in both polygons, so a point exactly on a border between two districts falls in exactly one of
them, always the same one; where data overlaps, the lowest adcode wins.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from itertools import pairwise
from pathlib import Path
from typing import Literal

from protocol.datum import wgs84_to_gcj02

logger = logging.getLogger(__name__)

Datum = Literal["WGS-84", "GCJ-02"]
Point = tuple[float, float]
Ring = tuple[Point, ...]

DEFAULT_DISTRICTS = "pilot_districts_gcj02.geojson"
DEFAULT_CITY = "city_gcj02.geojson"
_DATA = resources.files("server.geo").joinpath("data")
_BAND_TARGET_EDGES = 8  # about this many edges per band on average: fewer bands, more edges per test


class FenceError(Exception):
    """A boundary file that cannot be used; names the file and, where it can, the feature."""

    def __init__(self, path: str, detail: str, feature: str | None = None) -> None:
        where = f"{path}: feature {feature}" if feature is not None else path
        super().__init__(f"{where}: {detail}")
        self.path = path
        self.feature = feature
        self.detail = detail


@dataclass(frozen=True)
class _Edge:
    """One edge with its lower end first, so two polygons sharing it compute the same crossing."""

    x0: float
    y0: float
    y1: float
    dxdy: float

    @classmethod
    def between(cls, a: Point, b: Point) -> _Edge | None:
        (xa, ya), (xb, yb) = (a, b) if a[1] <= b[1] else (b, a)
        if ya == yb:
            return None  # a horizontal edge never crosses a horizontal ray
        return cls(xa, ya, yb, (xb - xa) / (yb - ya))

    def crosses_ray_from(self, x: float, y: float) -> bool:
        return self.y0 <= y < self.y1 and x < self.x0 + (y - self.y0) * self.dxdy


@dataclass(frozen=True)
class Polygon:
    """An exterior ring and its holes (GCJ-02, lon first), with what makes a lookup cheap."""

    exterior: Ring
    holes: tuple[Ring, ...] = ()
    bbox: tuple[float, float, float, float] = field(init=False)
    _bands: tuple[tuple[_Edge, ...], ...] = field(init=False, repr=False, compare=False)
    _band_height: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        xs = [p[0] for p in self.exterior]
        ys = [p[1] for p in self.exterior]
        min_y, max_y = min(ys), max(ys)
        object.__setattr__(self, "bbox", (min(xs), min_y, max(xs), max_y))
        edges = [
            edge
            for ring in (self.exterior, *self.holes)
            for a, b in pairwise(ring)
            if (edge := _Edge.between(a, b)) is not None
        ]
        n_bands = max(1, len(edges) // _BAND_TARGET_EDGES)
        height = (max_y - min_y) / n_bands or 1.0
        bands: list[list[_Edge]] = [[] for _ in range(n_bands)]
        for edge in edges:
            first = min(int((edge.y0 - min_y) / height), n_bands - 1)
            last = min(int((edge.y1 - min_y) / height), n_bands - 1)
            for band in bands[first : last + 1]:
                band.append(edge)
        object.__setattr__(self, "_bands", tuple(tuple(b) for b in bands))
        object.__setattr__(self, "_band_height", height)

    def contains(self, lon: float, lat: float) -> bool:
        """``lon``/``lat`` in GCJ-02, the datum of the boundary data."""
        min_x, min_y, max_x, max_y = self.bbox
        if not (min_x <= lon <= max_x and min_y <= lat <= max_y):
            return False
        band = self._bands[min(int((lat - min_y) / self._band_height), len(self._bands) - 1)]
        return sum(edge.crosses_ray_from(lon, lat) for edge in band) % 2 == 1


@dataclass(frozen=True)
class Fence:
    """One administrative area: the unit that handles reports inside it is keyed by ``adcode``."""

    adcode: str
    name: str
    polygons: tuple[Polygon, ...]

    def contains_gcj02(self, lon: float, lat: float) -> bool:
        return any(polygon.contains(lon, lat) for polygon in self.polygons)


class FenceSet:
    """The pilot districts a report can be routed to, and the city around them.

    ``city`` lets the server tell "in Kunming but outside the pilot districts" (handled the
    ordinary way) from "not in Kunming at all" (a bad fix or a misconfigured device).
    """

    def __init__(self, districts: Iterable[Fence], city: Fence) -> None:
        self.districts: tuple[Fence, ...] = tuple(sorted(districts, key=lambda f: f.adcode))
        self.city = city

    @classmethod
    def load(cls, districts: Path | Traversable, city: Path | Traversable | None = None) -> FenceSet:
        """Read GeoJSON FeatureCollections in GCJ-02; ``city`` holds exactly one feature.

        Without ``city`` the shipped Kunming outline is used, for district files drawn by hand.
        """
        if city is None:
            city = _DATA.joinpath(DEFAULT_CITY)
        district_fences = load_fences(districts)
        city_fences = load_fences(city)
        if len(city_fences) != 1:
            raise FenceError(str(city), f"expected exactly one feature (the city), found {len(city_fences)}")
        logger.info(
            "geofences: %d districts from %s, city %s from %s",
            len(district_fences),
            districts,
            city_fences[0].adcode,
            city,
        )
        return cls(district_fences, city_fences[0])

    @classmethod
    def load_default(cls) -> FenceSet:
        """The five Kunming pilot districts and Kunming itself, as shipped in ``server/geo/data``."""
        return cls.load(_DATA.joinpath(DEFAULT_DISTRICTS), _DATA.joinpath(DEFAULT_CITY))

    def locate(self, lon: float, lat: float, datum: Datum) -> Fence | None:
        """The district containing the point, or None when it is in none of them."""
        glon, glat = _to_gcj02(lon, lat, datum)
        for fence in self.districts:
            if fence.contains_gcj02(glon, glat):
                return fence
        return None

    def in_city(self, lon: float, lat: float, datum: Datum) -> bool:
        return self.city.contains_gcj02(*_to_gcj02(lon, lat, datum))


def _to_gcj02(lon: float, lat: float, datum: Datum) -> Point:
    if datum == "GCJ-02":
        return lon, lat
    if datum == "WGS-84":
        return wgs84_to_gcj02(lon, lat)
    raise ValueError(f"unknown datum {datum!r}: expected 'WGS-84' or 'GCJ-02'")


def load_fences(path: Path | Traversable) -> list[Fence]:
    """Parse one FeatureCollection of Polygon/MultiPolygon features with ``adcode`` and ``name``."""
    where = str(path)
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise FenceError(where, f"cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FenceError(where, f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise FenceError(where, "not a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise FenceError(where, "'features' must be a non-empty list")
    fences: list[Fence] = []
    seen: set[str] = set()
    for index, feature in enumerate(features):
        fence = _parse_feature(where, index, feature)
        if fence.adcode in seen:
            raise FenceError(where, f"duplicate adcode {fence.adcode}", f"#{index} ({fence.adcode} {fence.name})")
        seen.add(fence.adcode)
        fences.append(fence)
    return fences


def _parse_feature(where: str, index: int, feature: object) -> Fence:
    label = f"#{index}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise FenceError(where, "not a GeoJSON Feature", label)
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise FenceError(where, "no 'properties' object", label)
    adcode, name = props.get("adcode"), props.get("name")
    if not isinstance(adcode, str) or not adcode.isdigit():
        raise FenceError(where, f"'adcode' must be a string of digits, got {adcode!r}", label)
    if not isinstance(name, str) or not name.strip():
        raise FenceError(where, "'name' must be a non-empty string", label)
    label = f"#{index} ({adcode} {name})"
    crs_note = props.get("crs_note")
    if crs_note is not None and crs_note != "GCJ-02":
        raise FenceError(where, f"boundaries must be GCJ-02, this one says {crs_note!r}", label)
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict):
        raise FenceError(where, "no 'geometry' object", label)
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    polygons: tuple[Polygon, ...]
    try:
        if kind == "Polygon":
            polygons = (_parse_polygon(coords),)
        elif kind == "MultiPolygon":
            if not isinstance(coords, list) or not coords:
                raise ValueError("a MultiPolygon needs a non-empty list of polygons")
            polygons = tuple(_parse_polygon(part) for part in coords)
        else:
            raise ValueError(f"geometry type must be Polygon or MultiPolygon, got {kind!r}")
    except ValueError as exc:
        raise FenceError(where, str(exc), label) from None
    return Fence(adcode, name, polygons)


def _parse_polygon(coords: object) -> Polygon:
    if not isinstance(coords, list) or not coords:
        raise ValueError("a polygon needs a non-empty list of rings")
    exterior, *holes = (_parse_ring(ring) for ring in coords)
    return Polygon(exterior, tuple(holes))


def _parse_ring(coords: object) -> Ring:
    if not isinstance(coords, list) or len(coords) < 4:
        raise ValueError("a ring needs at least 4 positions")
    ring = tuple(_parse_position(p) for p in coords)
    if ring[0] != ring[-1]:
        raise ValueError(f"ring is not closed: starts at {ring[0]}, ends at {ring[-1]}")
    return ring


def _parse_position(coords: object) -> Point:
    if not isinstance(coords, list) or len(coords) not in (2, 3):
        raise ValueError(f"a position is [lon, lat], got {coords!r}")
    lon, lat = coords[0], coords[1]
    for value in (lon, lat):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"a position is [lon, lat] in finite numbers, got {coords!r}")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(f"position out of range (lon first): {coords!r}")
    return float(lon), float(lat)
