"""Simulated devices for end-to-end tests: the real firmware over mock pins, a pty GNSS and a rendered camera."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from device.app import DeviceApp
from device.config import DeviceConfig
from device.hardware import Hardware
from tests import pki
from tests.reports import WUHUA
from tests.services import Mosquitto

BUTTON_PIN = 17
HAZARD_PIN = 27
# The plate tests' camera: small, quick to render.
PLATE_WIDTH, PLATE_HEIGHT = 320, 240


def device_config(data_dir: Path, broker_port: int, device_id: str = "car-e2e-01", **overrides: Any) -> DeviceConfig:
    raw: dict[str, Any] = {
        "device": {"id": device_id, "kind": "in-car", "data_dir": data_dir},
        "broker": {
            "host": "127.0.0.1",
            "port": broker_port,
            "keepalive_s": 5,
            "session_expiry_s": 300,
            "tls": pki.current().device_tls(device_id).model_dump(),
        },
        "vehicle": {"plate": "云A5H821", "vin": "LSVAM4187C2184521"},
        "gpio": {"pin_factory": "mock", "long_press_s": 0.3, "bounce_s": 0.01, "hazard_pin": HAZARD_PIN},
        "gnss": {"backend": "simulated"},
        "camera": {"backend": "simulated", "width": 320, "height": 240, "fps": 2},
        "audio": {"backend": "simulated"},
        "report": {"ack_timeout_s": 0.5, "retry_max_s": 2.0, "heartbeat_s": 1.0},
    }
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    return DeviceConfig.model_validate(raw)


def kiosk_config(folder: Path, port: int, device_id: str) -> DeviceConfig:
    """A kiosk stands at a site instead of riding in a vehicle; its screen is simulated so that a test
    reads what the party is shown."""
    lon, lat = WUHUA
    return device_config(
        folder,
        port,
        device_id,
        device={"kind": "kiosk"},
        site={"name": "翠湖报警亭", "lat": lat, "lon": lon},
        screen={"backend": "simulated", "portal_url": "https://kuaichu.example.cn/p"},
    ).model_copy(update={"vehicle": None})


class RunningDevice:
    def __init__(self, app: DeviceApp, task: asyncio.Task[None]) -> None:
        self.app = app
        self.task = task

    @property
    def hw(self) -> Hardware:
        return self.app.hw

    async def hold_button(self, seconds: float) -> None:
        pin = self.hw.pins.pin(BUTTON_PIN)
        pin.drive_low()
        await asyncio.sleep(seconds)
        pin.drive_high()

    async def press(self) -> None:
        await self.hold_button(self.app.cfg.gpio.long_press_s + 0.2)

    async def case_number(self, timeout: float = 15) -> str:
        return await asyncio.wait_for(self.app.case_numbers.get(), timeout)

    async def live_call(self, timeout: float = 30) -> tuple[str, str]:
        """Press the button once the unit has a fix and wait until its call's media flows;
        (case number, call id)."""
        await self.wait_fix()
        await self.press()
        case_no = await self.case_number()
        async with asyncio.timeout(timeout):
            await self.app.call.connected.wait()
        call_id = self.app.call.call_id
        assert call_id is not None
        return case_no, call_id

    async def wait_fix(self, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while self.hw.gnss.latest() is None:
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@asynccontextmanager
async def running_device(cfg: DeviceConfig) -> AsyncIterator[RunningDevice]:
    app = DeviceApp(cfg, Hardware.open(cfg))
    device = RunningDevice(app, asyncio.create_task(app.run()))
    try:
        ready = asyncio.create_task(app.ready.wait())
        await asyncio.wait({device.task, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if device.task.done():
            device.task.result()
        assert app.ready.is_set(), "device did not start"
        yield device
    finally:
        await device.stop()


def outbox_rows(data_dir: Path) -> list[tuple[str, str, str | None]]:
    """(report_id, state, case_no) of every report the device has stored, read from its SQLite file."""
    path = data_dir / "outbox.sqlite"
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path)) as db:
        return list(db.execute("SELECT report_id, state, case_no FROM outbox ORDER BY report_id"))


def write_device_toml(path: Path, broker_port: int, control: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'[device]\nid = "car-kill-01"\nkind = "in-car"\ndata_dir = "{path.parent}"\n\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {broker_port}\nkeepalive_s = 5\n\n'
        + pki.tls_table(pki.current().device_tls("car-kill-01"))
        + '[vehicle]\nplate = "云A5H821"\n\n'
        f'[gpio]\npin_factory = "mock"\nlong_press_s = 0.3\ncontrol_socket = "{control}"\n\n'
        '[gnss]\nbackend = "simulated"\n\n'
        '[camera]\nbackend = "simulated"\nwidth = 320\nheight = 240\nfps = 2\n\n'
        '[audio]\nbackend = "simulated"\n\n'
        "[report]\nack_timeout_s = 0.5\nretry_max_s = 2.0\n"
    )


def start_device(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kuaichu.cli", "device", "run", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def wait_for_socket(path: Path, proc: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(30):
        while not path.exists():
            assert proc.poll() is None, "device process died"
            await asyncio.sleep(0.05)


def plate_car(data_dir: Path, broker: Mosquitto, device_id: str, **overrides: Any) -> DeviceConfig:
    """A simulated in-car unit with a small video camera and no call: these tests are about its plates."""
    camera = {"width": PLATE_WIDTH, "height": PLATE_HEIGHT}
    return device_config(data_dir, broker.port, device_id, camera=camera, webrtc={"call_on_accept": False}, **overrides)
