"""``kuaichu device selftest`` against a real broker and server, on a simulated unit: mock pins pressed
through the control socket, a pty GNSS receiver, a rendered camera and the simulated sound card."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from device.config import DeviceConfig, PlatesSection
from device.hal.audio import tone
from device.hal.audio_simulated import SimulatedAudio
from device.hal.pins import make_pin_factory
from device.hal.prompts import Prompts
from device.ocr.reader import DETECTOR_FILE, MODELS_DIR, RECOGNISER_FILE
from device.selftest.plates import REFERENCE_TEXT, check_plate_reader
from device.selftest.run import SelfTestError, SelfTestOptions, run_selftest
from device.selftest.technician import Technician, check_hazard
from device.selftest.tone import TONE_HZ, listen_for
from device.sim.control import ControlServer, send_control
from protocol.messages import Ack, CheckStatus, SelfTest, decode
from protocol.topics import Channel, device_topic
from provisioning.bundle import to_toml
from provisioning.ca import Usage, create_authority, issue, write_cert, write_key
from tests import pki
from tests.conftest import RunningServer
from tests.devices import device_config
from tests.services import Mosquitto
from tests.stored import cases_in
from tests.wire import mqtt_client

PASS, FAIL, SKIP = CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.SKIP
ORDER = [
    "camera",
    "gnss",
    "button",
    "hazard",
    "led",
    "buzzer",
    "audio",
    "plate_reader",
    "clock",
    "broker",
    "test_report",
]


@pytest.fixture
def sock() -> Iterator[Path]:
    # Unix socket paths are limited to about 100 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="kc-") as folder:
        yield Path(folder) / "control.sock"


def unit(tmp_path: Path, port: int, device_id: str, sock: Path, **overrides: Any) -> DeviceConfig:
    gpio = {"control_socket": sock, **overrides.pop("gpio", {})}
    return device_config(tmp_path / device_id, port, device_id, gpio=gpio, **overrides)


def statuses(result: SelfTest) -> dict[str, CheckStatus]:
    return {check.name: check.status for check in result.checks}


def detail(result: SelfTest, name: str) -> str:
    return next(check.detail for check in result.checks if check.name == name)


class Watcher:
    """The server's certificate listening on a device's selftest and ack topics."""

    def __init__(self) -> None:
        self.selftests: asyncio.Queue[SelfTest] = asyncio.Queue()
        self.acks: list[Ack] = []

    async def read(self, client: aiomqtt.Client, device_id: str) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            if str(message.topic) == device_topic(device_id, Channel.SELFTEST):
                self.selftests.put_nowait(decode(SelfTest, message.payload))
            else:
                self.acks.append(decode(Ack, message.payload))


@contextlib.asynccontextmanager
async def watching(port: int, device_id: str) -> AsyncIterator[Watcher]:
    watcher = Watcher()
    async with mqtt_client(
        pki.current().server_port(port), f"selftest-watch-{device_id}", pki.current().server_tls()
    ) as client:
        await client.subscribe(device_topic(device_id, Channel.SELFTEST), qos=1)
        await client.subscribe(device_topic(device_id, Channel.ACK), qos=1)
        reader = asyncio.create_task(watcher.read(client, device_id))
        try:
            yield watcher
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def start_cli(*args: str) -> asyncio.subprocess.Process:
    """``kuaichu device selftest ARGS`` in a process of its own, stdout and stderr in one pipe."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kuaichu.cli",
        "device",
        "selftest",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def run_cli(*args: str) -> tuple[int, str]:
    proc = await start_cli(*args)
    out, _ = await proc.communicate()
    return await proc.wait(), out.decode()


async def test_a_full_run_passes_every_check(
    server: RunningServer, broker: Mosquitto, tmp_path: Path, sock: Path
) -> None:
    cfg = unit(tmp_path, broker.port, "car-st-01", sock)
    config = tmp_path / "device.toml"
    config.write_text(to_toml(cfg))
    out = tmp_path / "selftest.json"

    async with watching(broker.port, "car-st-01") as watcher:
        proc = await start_cli(
            "--config", str(config), "--json", str(out), "--gnss-timeout", "30", "--prompt-timeout", "30"
        )
        assert proc.stdout is not None
        lines = []
        # The technician's part, from another process, as `kuaichu demo press` does it.
        async for raw in proc.stdout:
            line = raw.decode()
            lines.append(line)
            if line.startswith(">>> Press and hold the report button"):
                assert (await send_control(sock, {"cmd": "press"}))["ok"] is True
            elif line.startswith(">>> Switch the hazard warning lights on"):
                assert (await send_control(sock, {"cmd": "hazard", "on": True}))["ok"] is True
            elif "switch them off again" in line:
                assert (await send_control(sock, {"cmd": "hazard", "on": False}))["ok"] is True
        assert await proc.wait() == 0
        result = decode(SelfTest, out.read_bytes())
        published = await asyncio.wait_for(watcher.selftests.get(), 10)

    assert [check.name for check in result.checks] == ORDER
    assert statuses(result) == dict.fromkeys(ORDER, PASS)
    assert result.passed is True
    assert detail(result, "plate_reader").startswith(f"read the reference plate {REFERENCE_TEXT} (confidence ")
    assert "320x240 frame" in detail(result, "camera")
    assert "satellites, HDOP" in detail(result, "gnss")
    assert "1000 Hz tone heard" in detail(result, "audio")
    assert "accepted certificate car-st-01" in detail(result, "broker")
    assert published == result  # the server got what the technician's file says

    # The test report went through the server and came back as a test, with no case behind it.
    assert result.test_report_id is not None
    [ack] = [ack for ack in watcher.acks if ack.report_id == result.test_report_id]
    assert ack.status == "accepted" and ack.test and ack.case_no is None
    assert await cases_in(server.cfg.database_url) == []
    assert not (cfg.device.data_dir / "outbox.sqlite").exists()

    text = "".join(lines)
    assert f"PASS  plate_reader  read the reference plate {REFERENCE_TEXT}" in text
    assert "PASSED: 11 passed, 0 failed, 0 skipped" in text
    assert f"JSON copy: {out}" in text
    assert f"Sent to the server on {device_topic('car-st-01', Channel.SELFTEST)}." in text


async def test_a_silent_receiver_nobody_at_the_button_and_no_server(
    broker: Mosquitto, tmp_path: Path, sock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    silent = tmp_path / "silent.nmea"
    silent.write_bytes(b"")  # the fake receiver plays nothing: a receiver that is not connected
    cfg = unit(tmp_path, broker.port, "car-st-02", sock, gnss={"track_file": silent, "silent_after_s": 1.0})
    options = SelfTestOptions(gnss_timeout_s=3, prompt_timeout_s=1, ack_timeout_s=2)

    result = await run_selftest(cfg, options)

    checks = {check.name: check for check in result.checks}
    failed = {"gnss", "button", "hazard", "clock", "test_report"}
    assert statuses(result) == {name: FAIL if name in failed else PASS for name in ORDER}
    assert checks["gnss"].detail.startswith("no fix within 3 s: silent for")
    assert "wiring" in checks["gnss"].detail
    assert checks["clock"].detail == "no GNSS fix to compare the system clock with (see the gnss check)"
    assert checks["button"].detail == "no press for 0.3 s on GPIO17 within 1 s"
    assert checks["button"].duration_ms >= 1000
    assert checks["hazard"].detail.startswith("hazards not seen switching on at GPIO27 within 1 s")
    assert checks["test_report"].detail.startswith("no answer from the server within 2 s")
    assert result.test_report_id is not None  # the broker took it; nobody answered
    assert not result.passed

    out = capsys.readouterr().out
    assert ">>> Press and hold the report button for 0.3 s (within 1 s)" in out
    assert "FAIL  gnss          no fix within 3 s" in out
    assert "FAILED: 6 passed, 5 failed (gnss, button, hazard, clock, test_report)" in out
    assert "JSON copy: not written" in out


@pytest.mark.parametrize("stranger", ["another CA", "another device"])
async def test_a_certificate_the_broker_will_not_take_fails_broker_and_test_report(
    broker: Mosquitto, tmp_path: Path, sock: Path, capsys: pytest.CaptureFixture[str], stranger: str
) -> None:
    own = pki.current().device_tls("car-st-03")
    if stranger == "another CA":
        # The fleet CA's name, another key: the broker refuses the certificate at the handshake.
        cert, key = issue(create_authority("Kuaichu fleet CA"), "car-st-03", Usage.CLIENT)
        write_cert(tmp_path / "other.crt", cert)
        write_key(tmp_path / "other.key", key)
        tls = own.model_copy(update={"cert_file": tmp_path / "other.crt", "key_file": tmp_path / "other.key"})
        device_id, expected = "car-st-03", "not signed by the fleet CA"
    else:
        # car-st-03's valid certificate in car-st-04's unit: the ACL would stop every message.
        tls, device_id, expected = own, "car-st-04", "the certificate is for car-st-03, not car-st-04"
    cfg = unit(
        tmp_path,
        broker.port,
        device_id,
        sock,
        broker={"tls": tls.model_dump()},
        gpio={"hazard_pin": None},
    )
    out = tmp_path / "result.json"

    result = await run_selftest(cfg, SelfTestOptions(prompt_timeout_s=1, json_path=out))

    assert statuses(result)["broker"] is FAIL
    assert expected in detail(result, "broker")
    assert detail(result, "test_report") == "not sent: no usable broker connection (see the broker check)"
    assert result.test_report_id is None
    assert statuses(result)["hazard"] is SKIP
    assert detail(result, "hazard") == "no hazard-warning input wired ([gpio] hazard_pin is not set)"
    assert decode(SelfTest, out.read_bytes()) == result
    printed = capsys.readouterr().out
    assert f"FAIL  broker        127.0.0.1:{broker.port}" in printed
    assert f"JSON copy: {out}" in printed
    assert "Not sent to the server: no usable broker connection." in printed


async def test_it_will_not_run_beside_a_running_firmware(broker: Mosquitto, tmp_path: Path, sock: Path) -> None:
    cfg = unit(tmp_path, broker.port, "car-st-05", sock)
    async with ControlServer(sock, make_pin_factory("mock"), cfg.gpio):
        with pytest.raises(SelfTestError, match="firmware is running"):
            await run_selftest(cfg, SelfTestOptions())


async def test_cli_exit_codes_for_configuration_errors(tmp_path: Path) -> None:
    code, out = await run_cli("--config", str(tmp_path / "missing.toml"))
    assert code == 2
    assert f"{tmp_path / 'missing.toml'}: cannot read" in out

    bad = tmp_path / "device.toml"
    bad.write_text('[device]\nid = "car-st-06"\nkind = "in-car"\ndata_dir = "/tmp"\nsurprise = 1\n')
    code, out = await run_cli("--config", str(bad))
    assert code == 2
    assert "device.surprise: unknown key" in out

    code, out = await run_cli("--config", str(bad), "--json", str(tmp_path / "no" / "such" / "r.json"))
    assert code == 2


async def test_a_kiosk_skips_the_hazard_check(fleet_pki: pki.FleetPki, tmp_path: Path) -> None:
    data = device_config(tmp_path, 1883, "kiosk-st-01").model_dump()
    del data["vehicle"]
    data["device"]["kind"] = "kiosk"
    data["site"] = {"name": "昆明站", "lat": 25.0193, "lon": 102.7223}
    kiosk = DeviceConfig.model_validate(data)
    technician = Technician(Prompts(SimulatedAudio(kiosk.audio)), asyncio.Queue())

    outcome = await check_hazard(technician, kiosk, timeout_s=1)

    assert (outcome.status, outcome.detail) == (SKIP, "a kiosk has no hazard-warning input")


async def test_the_plate_check_fails_on_missing_or_corrupt_models_naming_the_file(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for model in MODELS_DIR.glob("*.tflite"):
        shutil.copy(model, models)
    assert (await check_plate_reader(PlatesSection(models_dir=models))).status is PASS

    (models / RECOGNISER_FILE).write_bytes((models / RECOGNISER_FILE).read_bytes()[:5000])  # truncated
    corrupt = await check_plate_reader(PlatesSection(models_dir=models))
    assert corrupt.status is FAIL
    assert corrupt.detail.startswith("plate reader off: model file") and RECOGNISER_FILE in corrupt.detail

    (models / DETECTOR_FILE).unlink()
    missing = await check_plate_reader(PlatesSection(models_dir=models))
    assert (missing.status, missing.detail) == (
        FAIL,
        f"plate reader off: model file {models / DETECTOR_FILE} is missing",
    )

    off = await check_plate_reader(PlatesSection(enabled=False))
    assert off.status is SKIP and "switched off" in off.detail


def test_the_tone_stands_out_of_noise_and_silence_is_not_a_tone() -> None:
    rate = 16000
    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 0.05, rate * 2) * 32767).astype("<i2")
    quiet_tone = np.frombuffer(tone(TONE_HZ, 1.0, rate, 0.02), "<i2")
    mixed = noise.copy()
    mixed[rate // 2 : rate // 2 + quiet_tone.size] += quiet_tone

    heard = listen_for(mixed.tobytes(), rate, TONE_HZ)
    assert heard.seconds == pytest.approx(1.0, abs=0.2)
    assert heard.level_dbfs == pytest.approx(20 * np.log10(0.02), abs=2)

    assert listen_for(noise.tobytes(), rate, TONE_HZ).seconds == 0
    assert listen_for(bytes(rate * 2), rate, TONE_HZ).seconds == 0
    other = tone(TONE_HZ * 1.5, 1.0, rate, 0.5)  # a loud tone, but not ours
    assert listen_for(other, rate, TONE_HZ).seconds == 0
