"""A device process killed hard (SIGKILL, as a power cut) between press and acknowledgement."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from device.sim.control import send_control
from tests.conftest import make_server_config, start_server
from tests.devices import outbox_rows, start_device, wait_for_socket, write_device_toml
from tests.services import Mosquitto
from tests.stored import cases_in


async def test_power_cut_after_the_press_still_gives_exactly_one_case(broker: Mosquitto, tmp_path: Path) -> None:
    config = tmp_path / "car" / "device.toml"
    control = tmp_path / "control.sock"
    log = tmp_path / "device.log"
    write_device_toml(config, broker.port, control)
    server_cfg = make_server_config(tmp_path / "server", broker.port)

    device = start_device(config, log)
    try:
        await wait_for_socket(control, device)
        answer = await send_control(control, {"cmd": "press"})
        assert answer["ok"] is True
        async with asyncio.timeout(10):
            while not outbox_rows(config.parent):
                await asyncio.sleep(0.02)
    finally:
        os.kill(device.pid, signal.SIGKILL)
        device.wait()
    [(report_id, state, _)] = outbox_rows(config.parent)
    assert state == "pending"

    control.unlink(missing_ok=True)
    server = await start_server(server_cfg)
    device = start_device(config, log)
    try:
        async with asyncio.timeout(30):
            while not (rows := outbox_rows(config.parent)) or rows[0][1] != "accepted":
                assert device.poll() is None, log.read_text()
                await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # any late resend must not open a second case
    finally:
        device.terminate()
        device.wait(10)
        await server.stop()
    cases = await cases_in(server_cfg.database_url)
    assert [c.report_id for c in cases] == [report_id]
    assert rows[0][2] == cases[0].case_no
