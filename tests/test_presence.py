"""Presence: online on connect, heartbeats with health, and the broker's last will when a device dies."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from server.db.models import Device
from tests.conftest import RunningServer
from tests.devices import device_config, running_device, start_device, wait_for_socket, write_device_toml
from tests.services import Mosquitto
from tests.stored import device_row
from tests.waiting import wait_for


async def device_when(server: RunningServer, device_id: str, what: str, check: Callable[[Device], bool]) -> Device:
    """The device's row once ``check`` holds for it."""

    async def matching() -> Device | None:
        row = await device_row(server, device_id)
        return row if row is not None and check(row) else None

    return await wait_for(f"{device_id} {what}", matching, every_s=0.2)


async def test_heartbeats_carry_health_and_a_clean_stop_says_offline(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    cfg = device_config(tmp_path / "car", broker.port, "car-hb-01")
    async with running_device(cfg):
        row = await device_when(
            server, "car-hb-01", "online with a heartbeat", lambda d: d.online and d.last_heartbeat is not None
        )
        heartbeat = row.last_heartbeat
        assert heartbeat is not None
        assert heartbeat["app_state"] == "idle" and heartbeat["outbox_pending"] == 0
        assert heartbeat["health"]["camera"] == "ok" and heartbeat["health"]["audio"] == "ok"
        assert heartbeat["health"]["firmware"] == row.firmware
    await device_when(server, "car-hb-01", "offline", lambda d: not d.online)


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
        await device_when(server, "car-kill-01", "online", lambda d: d.online)
    finally:
        os.kill(device.pid, signal.SIGKILL)
        device.wait()
    # No goodbye was sent: only the broker's last will can say so.
    await device_when(server, "car-kill-01", "offline", lambda d: not d.online)
