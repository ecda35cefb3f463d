"""Presence: online on connect, heartbeats with health, and the broker's last will when a device dies."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from sqlalchemy import select

from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Device
from tests.conftest import RunningServer
from tests.devices import device_config, running_device
from tests.services import Mosquitto
from tests.test_device_killed import start_device, wait_for_socket, write_device_toml


async def device_row(server: RunningServer, device_id: str) -> Device | None:
    engine = make_engine(server.cfg.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return await session.scalar(select(Device).where(Device.id == device_id))
    finally:
        await engine.dispose()


async def wait_for(server: RunningServer, device_id: str, check: object, within_s: float = 20) -> Device:
    async with asyncio.timeout(within_s):
        while True:
            row = await device_row(server, device_id)
            if row is not None and check(row):  # type: ignore[operator]
                return row
            await asyncio.sleep(0.2)


async def test_heartbeats_carry_health_and_a_clean_stop_says_offline(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    cfg = device_config(tmp_path / "car", broker.port, "car-hb-01")
    async with running_device(cfg):
        row = await wait_for(server, "car-hb-01", lambda d: d.online and d.last_heartbeat is not None)
        heartbeat = row.last_heartbeat
        assert heartbeat is not None
        assert heartbeat["app_state"] == "idle" and heartbeat["outbox_pending"] == 0
        assert heartbeat["health"]["camera"] == "ok" and heartbeat["health"]["audio"] == "ok"
        assert heartbeat["health"]["firmware"] == row.firmware
    await wait_for(server, "car-hb-01", lambda d: not d.online)


async def test_a_device_that_dies_is_marked_offline_by_its_last_will(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    config = tmp_path / "car" / "device.toml"
    control = tmp_path / "control.sock"
    write_device_toml(config, broker.port, control)
    config.write_text(config.read_text().replace("[report]\n", "[report]\nheartbeat_s = 1.0\n"))
    device = start_device(config, tmp_path / "device.log")
    try:
        await wait_for_socket(control, device)
        await wait_for(server, "car-kill-01", lambda d: d.online)
    finally:
        os.kill(device.pid, signal.SIGKILL)
        device.wait()
    # No goodbye was sent: only the broker's last will can say so.
    await wait_for(server, "car-kill-01", lambda d: not d.online)
