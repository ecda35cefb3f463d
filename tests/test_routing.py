"""Which unit gets a report, on the real Kunming fences: the position to trust, the flag to raise.

Positions are WGS-84 as a receiver reports them; the landmarks are those of tests/test_fences.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocol.datum import wgs84_to_gcj02
from protocol.messages import FixQuality, Health, PartState, Position, Report, Site, Trigger, Vehicle
from server.geo import FenceSet
from server.routing import Routing, all_units, route, unit_name

AT = datetime(2025, 5, 14, 2, 31, 7, tzinfo=UTC)
CITY, WUHUA, PANLONG, GUANDU, XISHAN, CHENGGONG = "530100", "530102", "530103", "530111", "530112", "530114"

# WGS-84 (lon, lat)
NEAR_GREEN_LAKE = (102.7095, 25.0440)  # 五华区
KUNMING_STATION = (102.7217, 25.0159)  # 官渡区
ANNING = (102.4780, 24.9190)  # 安宁市: Kunming, none of the pilot districts
BEIJING = (116.377817, 39.911954)
LONDON = (-0.1276, 51.5072)  # outside China, where GCJ-02 is WGS-84 by definition
NEAR_PANLONG_BORDER = (102.71699, 25.07857)  # 盘龙区 once converted; 五华区 if taken as GCJ-02

UNTRUSTED = "位置不可靠 (GNSS fix not trusted)"
NO_POSITION = "无定位 (no position)"
OUTSIDE_PILOT = "试点辖区外 (outside the pilot districts)"
OUTSIDE_CITY = "昆明市外 (outside Kunming)"


@pytest.fixture(scope="module")
def fences() -> FenceSet:
    return FenceSet.load_default()


def _health() -> Health:
    return Health(
        camera=PartState.OK, gnss=PartState.OK, audio=PartState.OK, storage_free_mb=1000, firmware="0.1.0", uptime_s=1
    )


def _fix(where: tuple[float, float], trusted: bool = True) -> Position:
    lon, lat = where
    return Position(
        time=AT,
        lat=lat,
        lon=lon,
        mode=3 if trusted else 2,
        quality=FixQuality.GPS,
        sats=11 if trusted else 3,
        hdop=0.9 if trusted else 7.5,
        trusted=trusted,
    )


def _in_car(where: tuple[float, float] | None, trusted: bool = True) -> Report:
    return Report(
        report_id="01JV6A38WMQD5YD17TBD5D5KGS",
        device_id="car-0001",
        device_kind="in-car",
        trigger=Trigger.BUTTON,
        triggered_at=AT,
        position=None if where is None else _fix(where, trusted),
        vehicle=Vehicle(plate="云A5H821"),
        health=_health(),
    )


def _kiosk(site: tuple[float, float], fix: Position | None) -> Report:
    return Report(
        report_id="01JV6A1294HDCWEC31QQ58EXW9",
        device_id="kiosk-kmz-017",
        device_kind="kiosk",
        trigger=Trigger.KIOSK,
        triggered_at=AT,
        position=fix,
        site=Site(name="昆明站报警亭", lon=site[0], lat=site[1]),
        health=_health(),
    )


def _placed(where: tuple[float, float], adcode: str, name: str, source: str, flag: str | None) -> Routing:
    lon, lat = where
    glon, glat = wgs84_to_gcj02(lon, lat)
    return Routing(adcode, name, lat, lon, glat, glon, source, flag)


def test_a_trusted_fix_goes_to_its_district(fences: FenceSet) -> None:
    assert route(_in_car(NEAR_GREEN_LAKE), fences) == _placed(NEAR_GREEN_LAKE, WUHUA, "五华区交警大队", "gnss", None)
    assert route(_in_car(KUNMING_STATION), fences) == _placed(KUNMING_STATION, GUANDU, "官渡区交警大队", "gnss", None)


def test_the_fix_is_converted_before_the_fences_are_asked(fences: FenceSet) -> None:
    routing = route(_in_car(NEAR_PANLONG_BORDER), fences)
    assert (routing.unit_adcode, routing.unit_name) == (PANLONG, "盘龙区交警大队")


def test_an_untrusted_fix_is_still_used_with_a_flag(fences: FenceSet) -> None:
    routing = route(_in_car(NEAR_GREEN_LAKE, trusted=False), fences)
    assert routing == _placed(NEAR_GREEN_LAKE, WUHUA, "五华区交警大队", "gnss", UNTRUSTED)


def test_no_position_goes_to_the_city_with_a_flag(fences: FenceSet) -> None:
    routing = route(_in_car(None), fences)
    assert routing == Routing(CITY, "昆明市交警支队指挥中心", None, None, None, None, "none", NO_POSITION)


def test_a_kiosk_is_routed_by_its_site_not_its_receiver(fences: FenceSet) -> None:
    # The kiosk stands at the station in 官渡区; its receiver claims a trusted fix in 五华区.
    expected = _placed(KUNMING_STATION, GUANDU, "官渡区交警大队", "site", None)
    assert route(_kiosk(KUNMING_STATION, _fix(NEAR_GREEN_LAKE)), fences) == expected
    assert route(_kiosk(KUNMING_STATION, _fix(NEAR_GREEN_LAKE, trusted=False)), fences) == expected
    assert route(_kiosk(KUNMING_STATION, None), fences) == expected


def test_in_kunming_outside_the_pilot_districts(fences: FenceSet) -> None:
    assert fences.locate(*ANNING, datum="WGS-84") is None
    assert fences.in_city(*ANNING, datum="WGS-84")
    routing = route(_in_car(ANNING), fences)
    assert routing == _placed(ANNING, CITY, "昆明市交警支队指挥中心", "gnss", OUTSIDE_PILOT)
    kiosk = route(_kiosk(ANNING, None), fences)
    assert (kiosk.unit_adcode, kiosk.source, kiosk.flag) == (CITY, "site", OUTSIDE_PILOT)


def test_flags_add_up(fences: FenceSet) -> None:
    routing = route(_in_car(ANNING, trusted=False), fences)
    assert (routing.unit_adcode, routing.flag) == (CITY, f"{UNTRUSTED}; {OUTSIDE_PILOT}")


@pytest.mark.parametrize("where", [BEIJING, LONDON], ids=["Beijing", "London"])
def test_outside_kunming(fences: FenceSet, where: tuple[float, float]) -> None:
    routing = route(_in_car(where), fences)
    assert routing == _placed(where, CITY, "昆明市交警支队指挥中心", "gnss", OUTSIDE_CITY)


def test_the_gcj02_fields_are_the_datum_transform(fences: FenceSet) -> None:
    routing = route(_in_car(NEAR_GREEN_LAKE), fences)
    assert routing.lat_gcj02 is not None and routing.lon_gcj02 is not None
    assert (routing.lon_gcj02, routing.lat_gcj02) == wgs84_to_gcj02(*NEAR_GREEN_LAKE)
    # Kunming's shift is a few hundred metres, mostly south-north: the fields really differ.
    assert 0.002 < abs(routing.lat_gcj02 - 25.0440) < 0.004
    assert (routing.lon, routing.lat) == NEAR_GREEN_LAKE
    london = route(_in_car(LONDON), fences)
    assert (london.lon_gcj02, london.lat_gcj02) == LONDON


def test_units_are_the_city_and_each_district(fences: FenceSet) -> None:
    assert all_units(fences) == [
        (CITY, "昆明市交警支队指挥中心"),
        (WUHUA, "五华区交警大队"),
        (PANLONG, "盘龙区交警大队"),
        (GUANDU, "官渡区交警大队"),
        (XISHAN, "西山区交警大队"),
        (CHENGGONG, "呈贡区交警大队"),
    ]
    with pytest.raises(KeyError):
        unit_name(fences, "530124")
