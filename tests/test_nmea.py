"""The pure NMEA path: bytes to sentences to fixes, on hand-written captures of real receivers."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from device.config import GnssSection
from device.hal.nmea import (
    Fix,
    FixAccumulator,
    Gga,
    Gll,
    Gsa,
    LineSplitter,
    NmeaError,
    NmeaReader,
    Rmc,
    Vtg,
    parse_sentence,
    with_checksum,
)
from protocol.messages import FixQuality

DATA = Path(__file__).parent / "data" / "nmea"


def read(name: str, chunk: int | None = None) -> tuple[list[Fix], NmeaReader]:
    reader = NmeaReader()
    data = (DATA / name).read_bytes()
    step = chunk or len(data)
    fixes = [fix for i in range(0, len(data), step) for fix in reader.feed(data[i : i + step])]
    return fixes + reader.flush(), reader


@pytest.mark.parametrize("talker", ["GP", "GL", "GA", "BD", "GB", "GN", "GQ", "QZ", "GI", "IN", "II", "EC"])
def test_gga_from_any_talker(talker: str) -> None:
    line = with_checksum(f"{talker}GGA,093512.40,2502.4360,N,10242.4260,E,1,12,0.78,1893.4,M,-31.2,M,,")
    gga = parse_sentence(line)
    assert isinstance(gga, Gga)
    assert asdict(gga) == {
        "talker": talker,
        "time": time(9, 35, 12, 400000),
        "lat": pytest.approx(25.0406),
        "lon": pytest.approx(102.7071),
        "quality": FixQuality.GPS,
        "sats": 12,
        "hdop": 0.78,
        "alt": 1893.4,
    }


def test_southern_and_western_hemispheres_are_negative() -> None:
    rmc = parse_sentence(with_checksum("GPRMC,123519,A,4807.038,S,01131.000,W,022.4,084.4,230394,003.1,W"))
    assert isinstance(rmc, Rmc)
    assert rmc.lat == pytest.approx(-(48 + 7.038 / 60))
    assert rmc.lon == pytest.approx(-(11 + 31 / 60))
    assert rmc.speed == pytest.approx(22.4 * 1852 / 3600)
    assert rmc.date == date(1994, 3, 23)


def test_a_sentence_without_checksum_is_refused() -> None:
    line = "$GNGGA,093512.00,2502.43600,N,10242.42600,E,1,12,0.78,1893.4,M,-31.2,M,,"
    with pytest.raises(NmeaError) as caught:
        parse_sentence(line)
    assert caught.value.reason == "no_checksum"
    assert caught.value.raw == line


def test_a_wrong_checksum_is_refused_and_keeps_the_line() -> None:
    good = with_checksum("GNGGA,093512.00,2502.43600,N,10242.42600,E,1,12,0.78,1893.4,M,-31.2,M,,")
    bad = good.replace("2502.43600", "2502.43700")
    with pytest.raises(NmeaError) as caught:
        parse_sentence(bad)
    assert caught.value.reason == "bad_checksum"
    assert caught.value.raw == bad
    assert "2502" not in str(caught.value)  # positions stay out of messages that get logged


@pytest.mark.parametrize(
    "body",
    [
        "GNGGA,093512.00,2561.00000,N,10242.42600,E,1,12,0.78,1893.4,M,-31.2,M,,",  # 61 minutes
        "GNGGA,093512.00,2502.43600,X,10242.42600,E,1,12,0.78,1893.4,M,-31.2,M,,",  # hemisphere
        "GNGGA,093512.00,2502.43600,N,10242.42600,E,9,12,0.78,1893.4,M,-31.2,M,,",  # no such quality
        "GNGGA,253512.00,2502.43600,N,10242.42600,E,1,12,0.78,1893.4,M,-31.2,M,,",  # hour 25
        "GNGGA,093512.00,,,,,1,12,0.78,1893.4,M,-31.2,M,,",  # a fix without a position
        "GNGGA,093512.00,2502.43600,N,10242.42600,E,1,12,nan,1893.4,M,-31.2,M,,",
        "GNRMC,093512.00,X,2502.43600,N,10242.42600,E,0.1,,180524,,,A",  # status neither A nor V
        "GNRMC,093512.00,A,2502.43600,N,10242.42600,E,0.1,,310224,,,A",  # 31 February
        "GNGSA,A,4,05,13,,,,,,,,,,,1.3,0.8,1.1",  # fix type 4
        "GPGSV,2,3,07,05,18,286,22",  # message 3 of 2
        "GNVTG,87.50,T,,M,-1.0,N,36.003,K,A",  # negative speed
        "GNGGA",
        "GNGLL,,,,,093512.00,A,A",  # valid, but no position
        "GNGNS,093512.00,2502.43600,N,10242.42600,E,AA,xx,1.0,1893.4,-31.2,,",  # satellite count
        "GPZDA,093512.00,999999999999999999999999,05,2024,,",  # a day too large even for a C long
        "GPZDA,093512.00,18,05,1066,,",  # before GPS
    ],
)
def test_fields_that_do_not_parse_are_malformed(body: str) -> None:
    with pytest.raises(NmeaError) as caught:
        parse_sentence(with_checksum(body))
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    "body",
    [
        "GNTXT,01,01,02,u-blox AG - www.u-blox.com",
        "PUBX,00,093512.00,2502.43600,N,10242.42600,E,1893.4,G3,2.1,2.0,0.1,87.5,0.0,,0.78,1.06,0.8,12,0,0",
        "PGRMC,A,218.8,100,,,,,,A,3,1,1,1,30",  # a Garmin configuration echo is not an RMC
        "GPRMB,A,0.66,L,003,004,4917.24,N,12309.57,W,001.3,052.5,000.5,V",
    ],
)
def test_other_sentences_are_ignored_quietly(body: str) -> None:
    assert parse_sentence(with_checksum(body)) is None


@pytest.mark.parametrize(
    ("body", "when", "lat"),
    [
        ("GPGGA,093512.,2502.,N,10242.426,E,1,08,1.0,1893.0,M,,M,,", time(9, 35, 12), 25 + 2 / 60),
        ("GPGGA,093512.1239,2502.436,N,10242.426,E,1,08,1.0,1893.0,M,,M,,", time(9, 35, 12, 123000), 25.0406),
        ("GPGGA,093512.4,0502.436,S,10242.426,E,1,08,1.0,1893.0,M,,M,,", time(9, 35, 12, 400000), -5.0406),
    ],
)
def test_times_and_coordinates_read_as_gpsd_reads_them(body: str, when: time, lat: float) -> None:
    """A bare "hhmmss." and "ddmm." are whole seconds and minutes; digits past the millisecond
    are cut off."""
    gga = parse_sentence(with_checksum(body))
    assert isinstance(gga, Gga)
    assert gga.time == when and gga.lat == pytest.approx(lat)


def test_lower_case_checksums_and_receivers_without_any() -> None:
    body = "GNGLL,2502.43600,N,10242.42600,E,093512.00,A,A"
    hex_digits = with_checksum(body)[-2:]
    assert hex_digits == "7A"
    assert isinstance(parse_sentence(f"${body}*7a"), Gll)
    assert isinstance(parse_sentence(f"${body}", allow_unchecked=True), Gll)
    # A receiver that sends checksums and one line without: that line was cut short.
    reader = NmeaReader()
    lines = [with_checksum(body), "$GNGGA,093513.00,2502.43600,N,10242.42600,E,1,12,0.78,1893.4"]
    assert len(reader.feed("\n".join(lines).encode() + b"\n") + reader.flush()) == 1
    assert reader.stats.malformed == 1


def test_vtg_and_gsa() -> None:
    vtg = parse_sentence(with_checksum("GNVTG,87.50,T,,M,19.440,N,36.003,K,A"))
    assert isinstance(vtg, Vtg)
    assert vtg.valid and vtg.track == 87.5
    assert vtg.speed == pytest.approx(36.003 / 3.6)
    gsa = parse_sentence(with_checksum("GNGSA,A,2,13,25,18,,,,,,,,,,3.02,2.85,1.00,1"))
    assert gsa == Gsa(talker="GN", mode=2, sat_ids=(13, 25, 18), hdop=2.85)


def test_splitter_finds_sentences_in_noise_however_the_bytes_arrive() -> None:
    data = (DATA / "ublox_faults.nmea").read_bytes()
    whole = LineSplitter()
    expected = whole.feed(data)
    for step in (1, 7, 64):
        split = LineSplitter()
        lines = [line for i in range(0, len(data), step) for line in split.feed(data[i : i + step])]
        assert lines == expected
        assert split.stats == whole.stats
    assert all(line.startswith("$") and len(line) <= 120 for line in expected)
    assert whole.stats.oversize == 1
    assert whole.stats.garbage_bytes > 300  # the UBX frame and the noise burst at least


def test_splitter_does_not_hoard_endless_noise() -> None:
    split = LineSplitter()
    sentence = with_checksum("GNGSA,A,3,05,13,15,18,24,25,,,,,,,1.32,0.78,1.06,1")
    for _ in range(100):
        assert split.feed(bytes(range(0x80, 0xFF)) * 8) == []
    assert split.stats.garbage_bytes == 100 * 127 * 8
    assert split.feed(sentence.encode() + b"\n") == [sentence]


def test_a_bare_newline_works_and_a_long_line_is_dropped() -> None:
    split = LineSplitter()
    short = with_checksum("GNVTG,87.50,T,,M,19.440,N,36.003,K,A")
    long = with_checksum("GNTXT,01,01,02," + "X" * 110)
    assert split.feed(f"{short}\n{long}\r\n{short}\r\n".encode()) == [short, short]
    assert split.stats.oversize == 1


def test_ublox_5hz_keeps_milliseconds_and_emits_without_waiting() -> None:
    fixes, reader = read("ublox_m8_5hz.nmea", chunk=13)
    assert [f.time.microsecond for f in fixes] == [0, 200000, 400000, 600000, 800000, 0]
    assert asdict(fixes[2]) == {
        "time": datetime(2024, 5, 18, 9, 35, 12, 400000, tzinfo=UTC),
        "lat": pytest.approx(25 + 2.43609 / 60),
        "lon": pytest.approx(102 + 42.42838 / 60),
        "alt": 1893.5,
        "speed": pytest.approx(19.44 * 1852 / 3600),
        "track": 87.5,
        "mode": 3,
        "quality": FixQuality.GPS,
        "sats": 12,
        "hdop": 0.78,
        "checked": True,
        "date_from_clock": False,
    }
    # 40 RMC, VTG, GGA, GSA and GSV, 6 GLL; ignored: the 3 TXT.
    assert reader.stats.ok == 46 and reader.stats.ignored == 3 and reader.stats.bad == 0
    assert reader.sats_in_view == 10 + 7

    # RMC, VTG, GGA, GSA of one epoch are enough: the fix does not wait for the next epoch.
    lines = (DATA / "ublox_m8_5hz.nmea").read_bytes().splitlines(keepends=True)
    live = NmeaReader()
    emitted = [fix for line in lines[3:7] for fix in live.feed(line)]
    assert [f.time for f in emitted] == [fixes[0].time]


def test_cold_start_gives_no_position_until_the_receiver_says_fix() -> None:
    fixes, reader = read("mtk3339_cold_start.nmea")
    # 23:59:46 (no fix), 09:34:57 (time, no fix), 09:34:58 (a position, but status V) give nothing.
    assert [f.time.strftime("%H:%M:%S") for f in fixes] == ["09:34:59", "09:35:00", "09:35:01", "09:35:02"]
    two_d = fixes[0]
    assert (two_d.mode, two_d.alt, two_d.sats, two_d.hdop) == (2, None, 3, 2.85)
    assert fixes[2].quality is FixQuality.DGPS
    assert reader.sats_in_view == 7


@pytest.mark.parametrize(
    ("quality", "sats", "fix"), [(1, "08", True), (1, "02", False), (1, "", False), (6, "00", False)]
)
def test_a_gga_with_fewer_than_three_satellites_reports_no_position(quality: int, sats: str, fix: bool) -> None:
    gga = with_checksum(f"GPGGA,100000.00,2502.43600,N,10242.42600,E,{quality},{sats},1.0,1893.0,M,-31.2,M,,")
    zda = with_checksum("GPZDA,100000.00,18,05,2024,00,00")
    reader = NmeaReader()
    assert len(reader.feed(f"{gga}\r\n{zda}\r\n".encode()) + reader.flush()) == fix


def test_an_rmc_without_a_date_reports_no_position() -> None:
    """gpsd takes neither time nor fix from it; the date of an earlier ZDA does not change that."""
    zda = with_checksum("GPZDA,100000.00,18,05,2024,00,00")
    rmc = with_checksum("GNRMC,100001.00,A,2502.43600,N,10242.42600,E,0.5,10.0,,,,A")
    reader = NmeaReader()
    assert reader.feed(f"{zda}\r\n{rmc}\r\n".encode()) + reader.flush() == []
    assert reader.stats.ok == 2


def test_a_void_sentence_gives_no_fix_and_vetoes_nothing() -> None:
    """As gpsd reads an epoch: a void RMC, GLL or GGA adds nothing, a valid one makes the fix,
    and GSA saying "no fix" or VTG saying N do not undo a position another sentence reports."""
    gga = with_checksum("GNGGA,093512.00,2502.43600,N,10242.42600,E,1,12,0.78,1893.4,M,-31.2,M,,")
    void_rmc = with_checksum("GNRMC,093512.00,A,2502.43600,N,10242.42600,E,0.1,,180524,,,N,V")
    void_gga = with_checksum("GNGGA,093512.00,,,,,0,00,99.99,,,,,,")
    void_gll = with_checksum("GNGLL,2502.43600,N,10242.42600,E,093512.00,V,N")
    no_fix_gsa = with_checksum("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,1")
    void_vtg = with_checksum("GNVTG,,,,,,,,,N")

    def fixes(*lines: str) -> list[Fix]:
        reader = NmeaReader(FixAccumulator(clock=lambda: datetime(2024, 5, 18, 9, 40, tzinfo=UTC)))
        return reader.feed("\r\n".join(lines).encode() + b"\r\n") + reader.flush()

    assert fixes(void_rmc, void_gll, void_gga, no_fix_gsa) == []
    made = fixes(void_rmc, void_vtg, gga, no_fix_gsa, void_gll)
    assert [(f.time.time(), round(f.lat, 7), f.mode, f.alt, f.speed) for f in made] == [
        (time(9, 35, 12), 25.0406, 3, 1893.4, None)  # 12 satellites and an altitude: 3-D
    ]


def test_multi_gnss_and_beidou_only_receivers() -> None:
    fixes, reader = read("lc29h_multi_gnss.nmea")
    assert len(fixes) == 2 and fixes[0].sats == 16 and fixes[0].track == 265.43
    assert reader.sats_in_view == 10 + 4 + 3 + 6 + 1
    assert reader.stats.ignored == 1  # a proprietary Quectel sentence
    fixes, _ = read("atgm336h_beidou.nmea")
    assert [f.sats for f in fixes] == [9, 9, 10]
    assert fixes[0].lat == pytest.approx(25 + 2.4518 / 60)


def test_faults_are_counted_and_real_fixes_survive_them() -> None:
    fixes, reader = read("ublox_faults.nmea", chunk=5)
    assert [f.time.second for f in fixes] == [40, 41, 42, 43, 44, 46]  # 45: the fix was lost
    stats = reader.stats
    assert (stats.bad_checksum, stats.malformed, stats.oversize) == (1, 2, 1)
    # 41: its GGA failed the checksum; RMC and the two GSAs still make a 3-D fix, without altitude.
    assert (fixes[1].alt, fixes[1].sats, fixes[1].hdop, fixes[1].mode) == (None, 11, 0.86, 3)
    assert fixes[1].lat == pytest.approx(25 + 2.43590 / 60)  # RMC's latitude, not the corrupted one
    # 42: its RMC was cut short; GGA carries it.
    assert fixes[2].alt == 1893.2 and fixes[2].speed is None


def test_an_epoch_without_rmc_takes_the_date_across_midnight() -> None:
    acc = FixAccumulator()
    rmc = parse_sentence(with_checksum("GPRMC,235959.00,A,2502.43600,N,10242.42600,E,0.0,,181224,,,A"))
    gga_late = parse_sentence(with_checksum("GPGGA,235959.00,2502.43600,N,10242.42600,E,1,08,0.9,1893.4,M,,M,,"))
    gga_next = parse_sentence(with_checksum("GPGGA,000000.00,2502.43600,N,10242.42600,E,1,08,0.9,1893.4,M,,M,,"))
    assert rmc is not None and gga_late is not None and gga_next is not None
    assert acc.add(rmc) == ()
    assert acc.add(gga_late) == ()
    [first] = acc.add(gga_next)
    assert first.time == datetime(2024, 12, 18, 23, 59, 59, tzinfo=UTC)
    second = acc.flush()
    assert second is not None and second.time == datetime(2024, 12, 19, 0, 0, 0, tzinfo=UTC)


def test_without_a_date_the_device_clock_dates_the_fix_and_says_so() -> None:
    gga = with_checksum("GPGGA,235959.00,2502.43600,N,10242.42600,E,1,08,0.9,1893.4,M,,M,,")
    zda = with_checksum("GPZDA,000000.00,19,12,2024,,")
    # Just after midnight by the device's clock, the receiver's 23:59:59 is yesterday's.
    reader = NmeaReader(FixAccumulator(clock=lambda: datetime(2024, 12, 20, 0, 0, 3, tzinfo=UTC)))
    [fix] = reader.feed(gga.encode() + b"\r\n") + reader.flush()
    assert (fix.time, fix.date_from_clock) == (datetime(2024, 12, 19, 23, 59, 59, tzinfo=UTC), True)
    # Once a ZDA gives the date, it is the receiver's: 23:59:59 before a ZDA of 00:00:00 on the 19th.
    reader.feed(zda.encode() + b"\r\n")
    [fix] = reader.feed(gga.encode() + b"\r\n") + reader.flush()
    assert (fix.time, fix.date_from_clock) == (datetime(2024, 12, 18, 23, 59, 59, tzinfo=UTC), False)


GOOD = Fix(
    time=datetime(2024, 5, 18, 9, 35, 12, tzinfo=UTC),
    lat=25.0406,
    lon=102.7071,
    alt=1893.4,
    speed=10.0,
    track=87.5,
    mode=3,
    quality=FixQuality.GPS,
    sats=12,
    hdop=0.78,
)


@pytest.mark.parametrize(
    ("changes", "age_s", "trusted"),
    [
        ({}, 1, True),
        ({}, 11, False),  # older than max_trusted_age_s
        ({}, -11, False),  # from the future: one of the clocks is wrong
        ({"hdop": 5.5}, 1, False),
        ({"hdop": None}, 1, False),
        ({"sats": 3}, 1, False),
        ({"mode": 2, "hdop": 2.85, "alt": None}, 1, False),  # a weak 2-D fix
        ({"mode": 2, "hdop": 1.4, "alt": None}, 1, True),  # a good 2-D fix
        ({"quality": FixQuality.DEAD_RECKONING}, 1, False),
        ({"quality": FixQuality.SIMULATION}, 1, False),
    ],
)
def test_trusted(changes: dict[str, Any], age_s: float, trusted: bool) -> None:
    f = replace(GOOD, **changes)
    position = f.to_position(GnssSection(), f.time + timedelta(seconds=age_s))
    assert position.trusted is trusted
    assert (position.lat, position.lon, position.datum) == (f.lat, f.lon, "WGS-84")


def test_a_simulated_device_trusts_simulated_fixes() -> None:
    f = replace(GOOD, quality=FixQuality.SIMULATION)
    assert f.to_position(GnssSection(backend="simulated"), f.time).trusted


def test_position_carries_what_the_protocol_can() -> None:
    f = replace(GOOD, hdop=120.0, sats=120, speed=200.0, alt=12000.0)
    position = f.to_position(GnssSection(), f.time)
    assert (position.hdop, position.sats, position.speed_mps, position.alt_m) == (99.99, 99, None, None)
    assert not position.trusted
