"""One capture per receiver style a technician may fit, each with the fixes gpsd reads from it.

The captures in ``tests/data/nmea/receivers/`` were written from the manufacturers' published
sentence descriptions (u-blox, Quectel, SiRF, Garmin, Trimble, Hemisphere, ST Teseo, a modem's
GNSS on its AT port, an integrated navigation box on the vehicle's NMEA bus); next to each,
``NAME.fixes.json`` lists the fixes expected from it and why, worked out from the sentences by
hand: which epochs report a valid position, and the position as degrees + minutes / 60.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from device.gnss_replay import fix_record, replay
from device.hal.nmea import NmeaReader

RECEIVERS = Path(__file__).parent / "data" / "nmea" / "receivers"
CAPTURES = sorted(RECEIVERS.glob("*.nmea"))


def fixes_of(data: bytes, step: int | None = None) -> list[dict[str, Any]]:
    reader = NmeaReader()
    step = step or len(data)
    fixes = [fix for i in range(0, len(data), step) for fix in reader.feed(data[i : i + step])]
    return [fix_record(fix) for fix in fixes + reader.flush()]


def test_every_receiver_style_has_a_capture() -> None:
    styles = ("ublox", "quectel", "sirf", "garmin", "trimble", "hemisphere", "teseo", "modem", "nav_box")
    assert all(any(style in path.stem for path in CAPTURES) for style in styles)


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda path: path.stem)
def test_the_fixes_gpsd_would_report(capture: Path) -> None:
    expected = json.loads(capture.with_suffix(".fixes.json").read_text())
    got = list(replay(capture))
    assert len(got) == len(expected), [fix["time"] for fix in got]
    for fix, want in zip(got, expected, strict=True):
        # Without any date from the receiver the day is the device's: only the time of day is known.
        time = fix["time"][10:] if want["date_from_clock"] else fix["time"]
        assert time == want["time"], want["why"]
        assert fix["lat"] == pytest.approx(want["lat"], abs=1e-7) and fix["lon"] == pytest.approx(want["lon"], abs=1e-7)
        assert (fix["mode"], fix["trusted"], fix["date_from_clock"]) == (
            want["mode"],
            want["trusted"],
            want["date_from_clock"],
        ), want["why"]
        assert (fix["reason"] is None) is fix["trusted"]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda path: path.stem)
def test_however_the_bytes_arrive(capture: Path) -> None:
    data = capture.read_bytes()
    whole = fixes_of(data)
    assert whole and all(fixes_of(data, step) == whole for step in (1, 7, 64))


def test_binary_and_noise_alone_give_nothing_and_do_not_crash() -> None:
    noise = random.Random(1)
    for size in (1, 100, 10_000, 200_000):
        data = bytes(noise.randrange(256) for _ in range(size))
        reader = NmeaReader()
        assert reader.feed(data) + reader.flush() == []
        assert reader.stats.ok == 0


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda path: path.stem)
def test_a_byte_changed_anywhere_never_makes_a_trusted_fix_that_was_not_sent(capture: Path) -> None:
    """A changed byte fails the checksum, so what survives is only what the receiver sent; a
    receiver without checksums gives no trusted fix at all."""
    data = capture.read_bytes()
    sent = {(fix["time"][10:], fix["lat"], fix["lon"]) for fix in fixes_of(data)}
    flips = random.Random(capture.stem)
    for _ in range(150):
        damaged = bytearray(data)
        at = flips.randrange(len(damaged))
        damaged[at] = (damaged[at] + flips.randrange(1, 256)) % 256
        trusted = {(f["time"][10:], f["lat"], f["lon"]) for f in fixes_of(bytes(damaged)) if f["trusted"]}
        assert trusted <= sent, (at, bytes(damaged[max(0, at - 40) : at + 40]))
