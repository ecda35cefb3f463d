"""The real pyserial backend reading a pseudo-terminal, and the simulated receiver built on it.

The test holds the master side of a pty and writes NMEA bytes into it, the way a receiver
drives a UART; ``SerialGnss`` opens the slave path with pyserial as it opens /dev/serial0.
"""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import cycle
from pathlib import Path

import pytest

from device.config import GnssSection
from device.hal.gnss import Gnss, GnssHealth, make_gnss
from device.hal.gnss_serial import SerialGnss
from device.hal.gnss_simulated import SimulatedGnss, restamp, split_epochs
from device.hal.nmea import Fix, NmeaReader, parse_sentence, with_checksum
from protocol.messages import PartState
from server.geo.fences import FenceSet

DATA = Path(__file__).parent / "data" / "nmea"
WAIT_S = 15  # only so that a broken build fails instead of hanging


class Pty:
    """A pseudo-terminal whose master side the test writes as a receiver would."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@contextmanager
def pty() -> Iterator[Pty]:
    terminal = Pty()
    try:
        yield terminal
    finally:
        terminal.close()


@pytest.fixture
async def backends() -> AsyncIterator[list[Gnss]]:
    started: list[Gnss] = []
    yield started
    for gnss in started:
        await gnss.stop()


async def started(backends: list[Gnss], gnss: Gnss) -> Gnss:
    backends.append(gnss)
    await gnss.start()
    return gnss


async def connected(gnss: Gnss, port: Pty) -> None:
    """Wait until the backend has the port open and hears it: pyserial drops what came before."""
    probe = with_checksum("GNTXT,01,01,02,probe").encode() + b"\r\n"
    await until(lambda: gnss.stats.ignored > 0, lambda: port.write(probe))


async def until(condition: Callable[[], bool], action: Callable[[], None] | None = None) -> None:
    """Wait for ``condition``, doing ``action`` (writing to the port, say) while it is false."""
    async with asyncio.timeout(WAIT_S):
        while not condition():
            if action is not None:
                action()
            await asyncio.sleep(0.05)


def epochs(name: str) -> list[bytes]:
    lines, _ = split_epochs((DATA / name).read_bytes())
    return [b"".join(line.encode("latin-1") + b"\r\n" for line in epoch) for epoch in lines]


def expected(name: str) -> list[Fix]:
    reader = NmeaReader()
    return reader.feed((DATA / name).read_bytes()) + reader.flush()


async def test_fixes_arrive_through_a_real_serial_port(backends: list[Gnss]) -> None:
    with pty() as port:
        gnss = await started(backends, SerialGnss(GnssSection(port=port.path)))
        await connected(gnss, port)
        with gnss.fixes() as fixes:
            data = (DATA / "ublox_m8_5hz.nmea").read_bytes()
            for i in range(0, len(data), 97):  # a UART delivers odd-sized pieces
                port.write(data[i : i + 97])
            got = [await asyncio.wait_for(anext(fixes), WAIT_S) for _ in range(6)]
        assert got == expected("ublox_m8_5hz.nmea")
        assert gnss.latest() == got[-1]
        assert gnss.track(60) == got
        assert gnss.health() == GnssHealth(PartState.OK)
        position = gnss.position(got[-1].time)
        assert position is not None and position.trusted


async def test_garbage_on_the_line_is_counted_and_survived(backends: list[Gnss]) -> None:
    with pty() as port:
        gnss = await started(backends, SerialGnss(GnssSection(port=port.path)))
        await connected(gnss, port)
        with gnss.fixes() as fixes:
            port.write((DATA / "ublox_faults.nmea").read_bytes())
            port.write(with_checksum("GNRMC,093547.00,V,,,,,,,180524,,,N,V").encode() + b"\r\n")
            got = [await asyncio.wait_for(anext(fixes), WAIT_S) for _ in range(6)]
        assert [f.time.second for f in got] == [40, 41, 42, 43, 44, 46]
        stats = gnss.stats
        assert (stats.bad_checksum, stats.malformed, stats.oversize) == (1, 2, 1)
        assert stats.garbage_bytes > 300


async def test_a_silent_receiver_fails_and_recovers(backends: list[Gnss]) -> None:
    with pty() as port:
        gnss = await started(backends, SerialGnss(GnssSection(port=port.path, silent_after_s=0.4)))
        talk = cycle(epochs("atgm336h_beidou.nmea"))
        await until(lambda: gnss.latest() is not None, lambda: port.write(next(talk)))
        assert gnss.health().state is PartState.OK
        await until(lambda: gnss.health().state is PartState.FAILED)
        assert (gnss.health().note or "").startswith("silent for")
        await until(lambda: gnss.health().state is PartState.OK, lambda: port.write(next(talk)))


async def test_a_missing_port_is_retried_until_it_appears(backends: list[Gnss], tmp_path: Path) -> None:
    link = tmp_path / "ttyGNSS"
    gnss = await started(backends, SerialGnss(GnssSection(port=str(link)), retry_s=0.1))
    await until(lambda: "cannot open" in (gnss.health().note or ""))
    assert gnss.health().state is PartState.FAILED
    with pty() as port:
        link.symlink_to(port.path)
        talk = cycle(epochs("lc29h_multi_gnss.nmea"))
        await until(lambda: gnss.latest() is not None, lambda: port.write(next(talk)))
        assert gnss.health().state is PartState.OK


async def test_a_port_that_goes_away_is_reported_and_reopened(backends: list[Gnss], tmp_path: Path) -> None:
    link = tmp_path / "ttyUSB0"
    first = Pty()
    link.symlink_to(first.path)
    gnss = await started(backends, SerialGnss(GnssSection(port=str(link)), retry_s=0.1))
    talk = cycle(epochs("atgm336h_beidou.nmea"))
    await until(lambda: gnss.latest() is not None, lambda: first.write(next(talk)))
    first.close()  # the receiver is unplugged
    await until(lambda: gnss.health().state is PartState.FAILED)
    note = gnss.health().note or ""
    assert note.startswith(("lost", "cannot open")), note
    seen = gnss.latest()
    with pty() as second:
        link.unlink()
        link.symlink_to(second.path)
        await until(lambda: gnss.latest() is not seen, lambda: second.write(next(talk)))
        assert gnss.health().state is not PartState.FAILED


async def test_no_fix_is_degraded_and_says_what_the_receiver_sees(backends: list[Gnss]) -> None:
    with pty() as port:
        gnss = await started(backends, SerialGnss(GnssSection(port=port.path)))
        cold = cycle(epochs("mtk3339_cold_start.nmea")[2:4])  # time known, 7 satellites, no fix
        await until(lambda: gnss.stats.ok > 20, lambda: port.write(next(cold)))
        assert gnss.latest() is None
        assert gnss.health() == GnssHealth(PartState.DEGRADED, "no fix, 7 satellites in view")


async def test_the_simulated_receiver_drives_fresh_fixes_through_wuhua(backends: list[Gnss]) -> None:
    gnss = await started(backends, make_gnss(GnssSection(backend="simulated")))
    assert isinstance(gnss, SimulatedGnss)
    assert isinstance(gnss, SerialGnss) and gnss.port.startswith("/dev/")  # a real tty, read by pyserial
    fences = FenceSet.load_default()
    with gnss.fixes() as fixes:
        got = [await asyncio.wait_for(anext(fixes), WAIT_S) for _ in range(3)]
    now = datetime.now(UTC)
    for fix in got:
        assert abs((now - fix.time).total_seconds()) < gnss.cfg.max_trusted_age_s
        district = fences.locate(fix.lon, fix.lat, "WGS-84")
        assert district is not None and district.adcode == "530102"
        assert fix.to_position(gnss.cfg, now).trusted
    assert got[0].time < got[1].time < got[2].time
    assert gnss.health().state is PartState.OK


async def test_a_missing_track_file_is_reported_not_raised(backends: list[Gnss], tmp_path: Path) -> None:
    gnss = await started(backends, make_gnss(GnssSection(backend="simulated", track_file=tmp_path / "none.nmea")))
    health = gnss.health()
    assert health.state is PartState.FAILED and "cannot read simulated track" in (health.note or "")


def test_restamp_moves_time_and_date_and_fixes_the_checksum() -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, 678900, tzinfo=UTC)
    rmc = with_checksum("GNRMC,093512.40,A,2502.43609,N,10242.42838,E,19.440,87.50,180524,,,A,V")
    out = restamp(rmc, now)
    assert out == with_checksum("GNRMC,030405.67,A,2502.43609,N,10242.42838,E,19.440,87.50,020125,,,A,V")
    mtk = with_checksum("GPGGA,093500.000,2502.4358,N,10242.4252,E,1,5,1.62,1891.7,M,-31.2,M,,")
    assert parse_sentence(restamp(mtk, now)) is not None
    assert restamp(mtk, now).startswith("$GPGGA,030405.678,")
    broken = rmc.replace("2502.43609", "2502.43619")  # noise in the capture stays noise
    assert restamp(broken, now) == broken
    assert restamp("\x8e\xb5b$GNGGA", now) == "\x8e\xb5b$GNGGA"


def test_the_capture_plays_at_its_own_epoch_rate() -> None:
    assert split_epochs((DATA / "ublox_m8_5hz.nmea").read_bytes())[1] == pytest.approx(0.2)
    assert split_epochs((DATA / "mtk3339_cold_start.nmea").read_bytes())[1] == pytest.approx(1.0)


async def test_a_weak_fix_and_a_noisy_line_are_degraded(backends: list[Gnss]) -> None:
    with pty() as port:
        gnss = await started(backends, SerialGnss(GnssSection(port=port.path)))
        two_d = cycle(epochs("mtk3339_cold_start.nmea")[4:5])  # 2-D, 3 satellites
        await until(lambda: gnss.latest() is not None, lambda: port.write(next(two_d)))
        assert gnss.health() == GnssHealth(PartState.DEGRADED, "weak fix: 3 satellites")
        faults = (DATA / "ublox_faults.nmea").read_bytes()  # 4 bad sentences each time
        await until(lambda: gnss.stats.bad >= 12, lambda: port.write(faults))
        note = gnss.health().note or ""
        assert gnss.health().state is PartState.DEGRADED and "bad sentences in 60 s" in note, note


class FedGnss(Gnss):
    """The base class's rules with the bytes handed in directly, on a clock the test moves."""

    async def start(self) -> None:
        self._started()
        self._port_opened()

    async def stop(self) -> None:
        return None

    def feed(self, data: bytes) -> None:
        self._feed(data)


async def test_track_keeps_a_minute_and_silence_is_timed_by_the_clock() -> None:
    now = [100.0]
    gnss = FedGnss(GnssSection(silent_after_s=5), clock=lambda: now[0])
    assert gnss.health() == GnssHealth(PartState.FAILED, "not started")
    await gnss.start()
    assert gnss.health() == GnssHealth(PartState.DEGRADED, "no fix")
    stream = gnss.fixes()
    beidou = cycle(epochs("atgm336h_beidou.nmea"))
    for _ in range(90):
        gnss.feed(next(beidou))
        now[0] += 1
    assert len(gnss.track(60)) == 60  # one a second; the queue keeps no more than a minute
    assert len(gnss._track) == 61
    assert len(gnss.track(10)) == 10
    assert gnss.track(10) == gnss.track(60)[-10:]
    assert gnss.latest() == gnss.track(1)[-1]
    # A subscriber that does not keep up gets the newest 16, and the reader never waited for it.
    assert [await anext(stream) for _ in range(16)] == gnss.track(60)[-16:]
    stream.close()
    gnss.feed(next(beidou))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(stream), 0.1)
    assert gnss.health() == GnssHealth(PartState.OK)
    now[0] += 6
    assert gnss.health() == GnssHealth(PartState.FAILED, "silent for 6 s")
    gnss.feed(b"\x00")
    assert gnss.health() == GnssHealth(PartState.OK)  # talking again, and the last fix is 6 s old
    now[0] += 5
    gnss.feed(b"\x00")
    assert gnss.health() == GnssHealth(PartState.DEGRADED, "no fix, 11 satellites in view")
