"""A device process killed hard (SIGKILL, as a power cut) between press and acknowledgement."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from device.sim.control import send_control
from tests import pki
from tests.conftest import make_server_config, start_server
from tests.devices import outbox_rows
from tests.services import Mosquitto
from tests.test_device_e2e import cases_in


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
