"""Simulated devices for end-to-end tests: the real firmware over mock pins, a pty GNSS and a rendered camera."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from device.app import DeviceApp
from device.config import DeviceConfig
from device.hardware import Hardware
from tests import pki

BUTTON_PIN = 17
HAZARD_PIN = 27


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
