"""Routing by district geofence, on the real Kunming boundaries shipped with the server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import pytest

from server.geo import Datum, Fence, FenceError, FenceSet

WUHUA, PANLONG, GUANDU, XISHAN, CHENGGONG = "530102", "530103", "530111", "530112", "530114"


@pytest.fixture(scope="module")
def fences() -> FenceSet:
    return FenceSet.load_default()


# name, WGS-84 (lon, lat), GCJ-02 (lon, lat), expected adcode or None.
# Wikipedia publishes WGS-84; the GCJ-02 column is protocol.datum's forward transform of it, rounded
# to 1e-6 degree (0.1 m). Where no published coordinate was found, the GCJ-02 point was chosen on
# the map inside the polygon and the WGS-84 column is the inverse transform; the comment says so.
# Every point is at least 450 m from any district border, more than the ~360 m datum shift.
LANDMARKS = [
    # en.wikipedia.org/wiki/Green_Lake_(Kunming): 25°3'1.51"N 102°42'8.2"E
    ("翠湖公园", (102.702278, 25.0504194), (102.7037, 25.047433), WUHUA),
    # en.wikipedia.org/wiki/Kunming_railway_station: 25.01750 N, 102.72083 E, "Guandu District"
    ("昆明站", (102.72083, 25.0175), (102.722286, 25.014535), GUANDU),
    # en.wikipedia.org/wiki/Kunming_North_railway_station (on 北京路, north of the centre):
    # 25.06000 N, 102.71944 E
    ("昆明北站, 北京路", (102.71944, 25.06), (102.720895, 25.057038), PANLONG),
    # Western Hills side of 滇池 near 高峣, chosen inside the polygon (4 km from any border)
    ("滇池西岸", (102.639728, 24.975107), (102.641, 24.972), XISHAN),
    # 呈贡大学城, chosen inside the polygon (5 km from any border)
    ("呈贡大学城", (102.849608, 24.840104), (102.851, 24.837), CHENGGONG),
]


@pytest.mark.parametrize(("name", "wgs", "gcj", "adcode"), LANDMARKS, ids=[lm[0] for lm in LANDMARKS])
def test_landmarks_route_to_their_district_in_either_datum(
    fences: FenceSet, name: str, wgs: tuple[float, float], gcj: tuple[float, float], adcode: str
) -> None:
    cases: list[tuple[tuple[float, float], Datum]] = [(wgs, "WGS-84"), (gcj, "GCJ-02")]
    for point, datum in cases:
        fence = fences.locate(*point, datum=datum)
        assert fence is not None, (name, datum)
        assert fence.adcode == adcode, (name, datum, fence.name)
        assert fences.in_city(*point, datum=datum)


def test_the_datum_conversion_is_applied(fences: FenceSet) -> None:
    # Found by walking the vertices the 五华/盘龙 border shares and offsetting them by up to
    # 0.004 degree: this WGS-84 fix is in 盘龙区 once converted (GCJ-02 102.718441, 25.075607),
    # but the raw numbers, tested as if they were GCJ-02, fall in 五华区. Both points are about
    # 170 m from the nearest border, so the result does not hinge on rounding.
    wgs = (102.71699, 25.07857)
    converted = fences.locate(*wgs, datum="WGS-84")
    unconverted = fences.locate(*wgs, datum="GCJ-02")
    assert converted is not None and converted.adcode == PANLONG
    assert unconverted is not None and unconverted.adcode == WUHUA
    located = fences.locate(102.718441, 25.075607, datum="GCJ-02")
    assert located is not None and located.adcode == PANLONG


def test_unknown_datum_is_refused(fences: FenceSet) -> None:
    with pytest.raises(ValueError, match="BD-09"):
        fences.locate(102.7037, 25.047433, datum="BD-09")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "gcj"),
    [
        ("安宁市", (102.479, 24.917)),  # west of 西山区, 6.7 km outside the pilot districts
        ("晋宁区", (102.596, 24.667)),  # south end of 滇池, 8.5 km outside them
    ],
)
def test_kunming_outside_the_pilot_districts(fences: FenceSet, name: str, gcj: tuple[float, float]) -> None:
    assert fences.locate(*gcj, datum="GCJ-02") is None, name
    assert fences.in_city(*gcj, datum="GCJ-02"), name
    assert fences.city.adcode == "530100"


def test_beijing_is_outside_kunming(fences: FenceSet) -> None:
    wgs = (116.377817, 39.911954)  # the eviltransform reference point in Beijing (see test_datum)
    assert fences.locate(*wgs, datum="WGS-84") is None
    assert not fences.in_city(*wgs, datum="WGS-84")


def test_points_on_a_shared_border_belong_to_exactly_one_district(fences: FenceSet) -> None:
    # A vertex two districts share lies exactly on both boundaries; it must not be claimed twice,
    # and where the border is inside the pilot area (all of 五华/盘龙's) it must be claimed once.
    def vertices(fence: Fence) -> set[tuple[float, float]]:
        return {p for poly in fence.polygons for ring in (poly.exterior, *poly.holes) for p in ring}

    checked = 0
    for a, b in combinations(fences.districts, 2):
        for lon, lat in vertices(a) & vertices(b):
            owners = [f.adcode for f in fences.districts if f.contains_gcj02(lon, lat)]
            assert len(owners) <= 1, (lon, lat, owners)
            if {a.adcode, b.adcode} == {WUHUA, PANLONG}:
                assert len(owners) == 1, (lon, lat)  # 五华, 盘龙, or 官渡 where the three meet
                located = fences.locate(lon, lat, datum="GCJ-02")
                assert located is not None and located.adcode == owners[0]
            checked += 1
    assert checked > 500


# --- loading ------------------------------------------------------------------------------------

SQUARE_WITH_HOLE = [
    [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]],
    [[4.0, 4.0], [4.0, 6.0], [6.0, 6.0], [6.0, 4.0], [4.0, 4.0]],
]


def _feature(adcode: str, name: str, geometry: dict[str, object]) -> dict[str, object]:
    return {"type": "Feature", "properties": {"adcode": adcode, "name": name}, "geometry": geometry}


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _collection(*features: object) -> dict[str, object]:
    return {"type": "FeatureCollection", "features": list(features)}


def test_polygons_with_holes_and_multipolygons(tmp_path: Path) -> None:
    districts = _write(
        tmp_path / "d.geojson",
        _collection(
            _feature("100001", "holed", {"type": "Polygon", "coordinates": SQUARE_WITH_HOLE}),
            _feature(
                "100002",
                "two parts",
                {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [[[4.5, 4.5], [5.5, 4.5], [5.5, 5.5], [4.5, 5.5], [4.5, 4.5]]],  # inside the hole
                        [[[20.0, 0.0], [30.0, 0.0], [25.0, 8.0], [20.0, 0.0]]],
                    ],
                },
            ),
        ),
    )
    city = _write(
        tmp_path / "c.geojson",
        _collection(
            _feature("100000", "city", {"type": "Polygon", "coordinates": [[[-1, -1], [31, -1], [31, 11], [-1, -1]]]})
        ),
    )
    fences = FenceSet.load(districts, city)

    def where(lon: float, lat: float) -> str | None:
        fence = fences.locate(lon, lat, datum="GCJ-02")
        return fence.adcode if fence else None

    assert where(2.0, 2.0) == "100001"
    assert where(4.2, 5.0) is None  # in the hole, outside the island in it
    assert where(5.0, 5.0) == "100002"  # on the island
    assert where(25.0, 3.0) == "100002"
    assert where(15.0, 5.0) is None
    assert where(2.0, -0.5) is None  # inside the bounding box of nothing
    assert fences.city.name == "city"


def test_a_configured_districts_file_gets_the_shipped_city(tmp_path: Path) -> None:
    districts = _write(
        tmp_path / "d.geojson",
        _collection(_feature("530102", "五华区", {"type": "Polygon", "coordinates": SQUARE_WITH_HOLE})),
    )
    fences = FenceSet.load(districts)
    assert [f.adcode for f in fences.districts] == ["530102"]
    assert fences.city.adcode == "530100"


def _valid_feature() -> dict[str, object]:
    return _feature("530102", "五华区", {"type": "Polygon", "coordinates": SQUARE_WITH_HOLE})


def _panlong(geometry: dict[str, object], **props: str) -> dict[str, object]:
    feature = _feature("530103", "盘龙区", geometry)
    feature["properties"] = {"adcode": "530103", "name": "盘龙区", **props}
    return feature


def _polygon(*rings: Sequence[Sequence[object]]) -> dict[str, object]:
    return {"type": "Polygon", "coordinates": list(rings)}


MALFORMED: list[tuple[object, str]] = [
    ("{not json", "not valid JSON"),
    ({"type": "Feature"}, "not a GeoJSON FeatureCollection"),
    (_collection(), "non-empty list"),
    (
        _collection(_valid_feature(), {"type": "Feature", "properties": {"name": "x"}}),
        r"feature #1: 'adcode' must be a string of digits",
    ),
    (_collection(_valid_feature(), _valid_feature()), r"feature #1 \(530102 五华区\): duplicate adcode"),
    (
        _collection(_panlong({"type": "Point", "coordinates": [102.7, 25.0]})),
        r"feature #0 \(530103 盘龙区\): geometry type must be Polygon or MultiPolygon",
    ),
    (_collection(_panlong({"type": "MultiPolygon", "coordinates": []})), "non-empty list of polygons"),
    (_collection(_panlong(_polygon([[0, 0], [1, 0], [1, 1], [0, 1]]))), "ring is not closed"),
    (_collection(_panlong(_polygon([[0, 0], [1, 0], [0, 0]]))), "at least 4 positions"),
    (_collection(_panlong(_polygon([[0, 0], [1, "x"], [1, 1], [0, 0]]))), "finite numbers"),
    (_collection(_panlong(_polygon([[0, 0], [1, float("nan")], [1, 1], [0, 0]]))), "finite numbers"),
    # latitude first by mistake
    (_collection(_panlong(_polygon([[25, 102], [25, 103], [26, 103], [25, 102]]))), r"out of range \(lon first\)"),
    (_collection(_panlong(_polygon(*SQUARE_WITH_HOLE), crs_note="WGS-84")), "must be GCJ-02"),
]


@pytest.mark.parametrize(("doc", "expected"), MALFORMED)
def test_malformed_geojson_is_refused_naming_file_and_feature(tmp_path: Path, doc: object, expected: str) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(FenceError, match=expected) as caught:
        FenceSet.load(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FenceError, match="cannot read") as caught:
        FenceSet.load(tmp_path / "absent.geojson")
    assert caught.value.path == str(tmp_path / "absent.geojson")


def test_city_file_must_hold_one_feature(tmp_path: Path) -> None:
    two = _write(
        tmp_path / "city.geojson",
        _collection(_valid_feature(), _panlong(_polygon(*SQUARE_WITH_HOLE))),
    )
    districts = _write(tmp_path / "districts.geojson", _collection(_valid_feature()))
    with pytest.raises(FenceError, match="exactly one feature"):
        FenceSet.load(districts, two)
