"""``gnss-replay`` on captures, and the packaged Kunming track it is used to check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device.gnss_replay import main, replay
from device.hal.gnss_simulated import DEFAULT_TRACK
from device.sim import make_track
from server.geo.fences import FenceSet

DATA = Path(__file__).parent / "data" / "nmea"


def json_lines(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, object]], str]:
    code = main(["--json", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_json_fixes_of_a_ublox_capture(capsys: pytest.CaptureFixture[str]) -> None:
    code, fixes, err = json_lines(capsys, str(DATA / "ublox_m8_5hz.nmea"))
    assert code == 0
    assert len(fixes) == 6
    # $GNRMC,093512.40,A,2502.43609,N,10242.42838,E,19.440,87.50,180524 and its GGA:
    #   25 + 2.43609/60 = 25.0406015; 102 + 42.42838/60 = 102.70713967; 19.440 kn * 1852/3600 = 10.0008 m/s
    assert fixes[2] == {
        "time": "2024-05-18T09:35:12.400Z",
        "lat": 25.0406015,
        "lon": 102.7071397,
        "alt": 1893.5,
        "speed": 10.001,
        "track": 87.5,
        "mode": 3,
        "sats": 12,
        "hdop": 0.78,
        "trusted": True,
        "reason": None,
        "date_from_clock": False,
    }
    # $GNGGA,093512.00,2502.43600,N,10242.42600,E -> 25 + 2.436/60 = 25.040600, 102 + 42.426/60 = 102.707100
    assert (fixes[0]["time"], fixes[0]["lat"], fixes[0]["lon"]) == ("2024-05-18T09:35:12.000Z", 25.0406, 102.7071)
    assert "6 fixes" in err and "0 bad checksums" in err


def test_json_fixes_of_a_cold_start(capsys: pytest.CaptureFixture[str]) -> None:
    code, fixes, _ = json_lines(capsys, str(DATA / "mtk3339_cold_start.nmea"))
    assert code == 0
    # Nothing before 09:34:59: no time, then a time without a fix, then a position with status V.
    # $GPRMC,093459.000,A,2502.4355,N,10242.4248,E,0.12,0.00 with a 2-D GSA and 3 satellites:
    #   25 + 2.4355/60 = 25.04059167; 102 + 42.4248/60 = 102.70708; 0.12 kn = 0.0617 m/s
    assert fixes[0] == {
        "time": "2024-05-18T09:34:59.000Z",
        "lat": 25.0405917,
        "lon": 102.70708,
        "alt": None,
        "speed": 0.062,
        "track": 0.0,
        "mode": 2,
        "sats": 3,
        "hdop": 2.85,
        "trusted": False,  # printed all the same, with the unit's reason not to route on it
        "reason": "仅 3 颗卫星 (3 satellites)",
        "date_from_clock": False,
    }
    assert [f["mode"] for f in fixes] == [2, 3, 3, 3]
    assert fixes[-1]["time"] == "2024-05-18T09:35:02.000Z"  # the last epoch, flushed at the end of the file


def test_faults_are_summarised_not_fatal(capsys: pytest.CaptureFixture[str]) -> None:
    code, fixes, err = json_lines(capsys, str(DATA / "ublox_faults.nmea"))
    assert code == 0
    assert [f["time"] for f in fixes] == [f"2024-05-18T09:35:{s}.000Z" for s in (40, 41, 42, 43, 44, 46)]
    assert "1 bad checksums, 2 malformed, 1 too long" in err


def test_human_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DATA / "mtk3339_cold_start.nmea")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["time", "lat", "lon", "alt", "speed", "track", "mode", "sats", "hdop", "trusted"]
    assert lines[1].split() == [
        "2024-05-18T09:34:59.000Z",
        "25.0405917",
        "102.7070800",
        "-",
        "0.06",
        "0.0",
        "2D",
        "3",
        "2.85",
        "no:",
        "仅",
        "3",
        "颗卫星",
        "(3",
        "satellites)",
    ]
    assert lines[2].split()[-1] == "yes"
    assert len(lines) == 5


def test_a_missing_file_is_an_error_not_a_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--json", str(tmp_path / "nothing.nmea")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_packaged_track_is_a_ten_minute_drive_inside_wuhua() -> None:
    fixes = list(replay(Path(str(DEFAULT_TRACK))))
    assert 570 <= len(fixes) <= 660  # about ten minutes at 1 Hz
    fences = FenceSet.load_default()
    districts = {fences.locate(f["lon"], f["lat"], "WGS-84") for f in fixes}
    assert [d.adcode if d else None for d in districts] == ["530102"]
    speeds = [f["speed"] for f in fixes]
    assert all(0 <= s <= 15 for s in speeds)
    assert max(speeds) > 10
    longest_stop = max(len(run) for run in "".join("0" if s == 0 else "1" for s in speeds).split("1"))
    assert longest_stop >= 20  # waiting at the lights
    assert all(0.7 <= f["hdop"] <= 1.5 and 9 <= f["sats"] <= 16 and f["mode"] == 3 for f in fixes)
    assert all(1850 < f["alt"] < 1930 for f in fixes)
    assert fixes[0]["time"].endswith("T02:30:00.000Z") and fixes[-1]["time"] > fixes[0]["time"]


def test_the_track_generator_reproduces_the_packaged_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "track.nmea"
    assert make_track.main(["--out", str(out)]) == 0
    assert "all inside 五华区" in capsys.readouterr().out
    assert out.read_bytes() == DEFAULT_TRACK.read_bytes()
