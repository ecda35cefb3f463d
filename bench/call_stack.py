"""What the call benchmarks start besides the broker: a server worker with an admin logged in over
HTTP, and simulated units as ``kuaichu device run`` processes with a control socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.report_latency import PASSWORD, prepare_server
from bench.stack import kuaichu, wait_listening
from provisioning.bundle import to_toml
from tests.devices import device_config
from tests.pki import FleetPki
from tests.services import free_port


@dataclass
class Server:
    proc: asyncio.subprocess.Process
    url: str
    http: httpx.AsyncClient  # logged in as the benchmark's admin
    data_dir: Path


@asynccontextmanager
async def running_server(root: Path, pki: FleetPki, broker_port: int) -> AsyncIterator[Server]:
    """``kuaichu server run`` with its data and log (``server.log``, warnings and worse) in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    config = await prepare_server(root, pki, broker_port, http_port)
    with (root / "server.log").open("wb") as log:
        proc = await kuaichu("server", "run", "--config", str(config), stderr=log.fileno())
    try:
        await wait_listening(http_port, proc)
        url = f"http://127.0.0.1:{http_port}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            login = await http.post("/api/login", json={"username": "bench", "password": PASSWORD})
            login.raise_for_status()
            yield Server(proc, url, http, root / "server")
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()


async def start_unit(
    folder: Path, broker_port: int, device_id: str, **sections: dict[str, Any]
) -> tuple[asyncio.subprocess.Process, Path]:
    """A simulated in-car unit (``tests.devices.device_config``: mock pins, pty GNSS, simulated
    audio) with the default camera, 640x480 at 15 fps, pressed through the control socket it
    serves; its log (warnings and worse) in ``folder/unit.log``. Returns the process and the socket.

    The long-press hold is 0: it is a deliberate delay for the driver, not the system's response.
    """
    folder.mkdir(parents=True, exist_ok=True)
    control = folder / "control.sock"
    settings: dict[str, dict[str, Any]] = {
        "camera": {"width": 640, "height": 480, "fps": 15},
        "gpio": {"long_press_s": 0, "control_socket": control},
    }
    for section, values in sections.items():
        settings.setdefault(section, {}).update(values)
    config = folder / "device.toml"
    config.write_text(to_toml(device_config(folder, broker_port, device_id, **settings)))
    with (folder / "unit.log").open("wb") as log:
        proc = await kuaichu("device", "run", "--config", str(config), stderr=log.fileno())
    return proc, control


async def stop(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    await proc.wait()


async def wait_fix(http: httpx.AsyncClient, device_id: str, timeout: float = 60) -> None:
    """Until the unit's heartbeats say its GNSS receiver has a fix: a press now carries a position."""
    async with asyncio.timeout(timeout):
        while True:
            unit = await http.get(f"/api/devices/{device_id}")
            if unit.is_success and (unit.json()["health"] or {}).get("gnss") == "ok":
                return
            await asyncio.sleep(0.5)


async def live_calls(http: httpx.AsyncClient, count: int, timeout: float = 60) -> list[str]:
    """The ids of the worker's calls once ``count`` of them are live."""
    async with asyncio.timeout(timeout):
        while True:
            calls = (await http.get("/api/calls")).json()["calls"]
            live = [c["call_id"] for c in calls if c["state"] == "live"]
            if len(live) >= count:
                return live
            await asyncio.sleep(0.2)
