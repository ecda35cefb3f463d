"""Press -> case visible in the dispatcher queue, for many devices pressing at once.

Starts the real stack: a private Mosquitto running a freshly provisioned fleet's mutual-TLS
configuration (``tests.pki``: the CA, pattern ACL and CRL ``kuaichu provision init`` writes, a
certificate per unit), one server worker as its own process (SQLite), and N
simulated in-car units in this process (the real firmware over MockFactory pins, pty GNSS, rendered
camera). A dispatcher console (admin) is logged in on the WebSocket, in a process of its own
(``bench/console_observer.py``) so that the fleet's busy event loop does not delay the reading. Each
round presses every device's button within a millisecond; a press's latency runs from driving its
pin low to the ``case.new`` event for that device arriving on the WebSocket (wall-clock times, same
machine). The long-press hold is set to 0: it is a deliberate delay for the driver, not part of the
system's response.

Each device's outbox writes with fsync before it sends. Fifty outboxes on this machine's one disk
would queue their fsyncs behind each other, which no real fleet does (each unit has its own SD
card), so the simulated devices keep their data on tmpfs (/dev/shm) while the server's database is
on disk. The cost of one outbox write on this disk is measured and printed separately.

With ``--wire``, the devices are plain MQTT clients that publish ready-made reports at the same
moment (one connection each, with its unit's certificate): the same server path without the fleet
simulation's own CPU load, which on a two-core machine competes with the server.

With ``--plates``, each simulated unit reads the plates in a still after its report, as a unit
ships (the still drawn at 2028x1520 and read by the three OCR models in the unit's process; the
reading sent to the server on the unit's ``plates`` topic), while its video stays the smallest.
Fifty such reads take the two cores for seconds, which a unit on its own Pi does not take from the
server: the units' processes run at nice 10, and a round is pressed once the last round's readings
are sent (``bench/simulated_units.py``). A round's own reads run beside its reports, as they do
on a unit.

Also measures the resident memory of one idle device process (``kuaichu device run``, simulated
hardware at the default 640x480, 15 fps).

    .venv/bin/python -m bench.report_latency [--devices 50] [--rounds 10] [--wire] [--plates]

Last line: ``p50_ms=… p99_ms=… max_ms=… device_rss_mb=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.stack import kuaichu, load_line, server_config, start_shares, wait_listening
from protocol.messages import encode
from runtime import runner
from server.config import load_server_config
from server.users import Role
from server.worker import open_state
from tests.pki import FleetPki, session_pki, tls_table
from tests.reports import WUHUA, in_car_report
from tests.services import free_port
from tests.wire import mqtt_client

PASSWORD = "benchmark password"


async def prepare_server(root: Path, pki: FleetPki, broker_port: int, http_port: int) -> Path:
    config = server_config(root, pki, broker_port, http_port)
    async with contextlib.AsyncExitStack() as stack:
        state, _ = await open_state(load_server_config(config), stack)
        await state.users.add_user("bench", PASSWORD, Role.ADMIN, [])
    return config


async def device_rss_mb(root: Path, pki: FleetPki, broker_port: int, settle_s: float) -> float:
    cfg_path = root / "rss-device.toml"
    data = root / "rss-device"
    cfg_path.write_text(
        f'[device]\nid = "rss-001"\nkind = "in-car"\ndata_dir = "{data}"\n\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {broker_port}\n\n'
        + tls_table(pki.device_tls("rss-001"))
        + '[vehicle]\nplate = "云A5H821"\n\n'
        '[gpio]\npin_factory = "mock"\n\n[gnss]\nbackend = "simulated"\n\n'
        '[camera]\nbackend = "simulated"\n\n[audio]\nbackend = "simulated"\n'
    )
    proc = await kuaichu("device", "run", "--config", str(cfg_path))
    try:
        await asyncio.sleep(settle_s)
        return float(psutil.Process(proc.pid).memory_info().rss) / (1024 * 1024)
    finally:
        proc.terminate()
        await proc.wait()


async def wire_clients(
    devices: int, pki: FleetPki, broker_port: int, stack: contextlib.AsyncExitStack
) -> list[aiomqtt.Client]:
    clients = []
    for i in range(devices):
        client = mqtt_client(broker_port, f"bench-{i:03d}", pki.device_tls(f"bench-{i:03d}"))
        clients.append(await stack.enter_async_context(client))
    return clients


async def run(
    devices: int,
    rounds: int,
    wire: bool = False,
    processes: int = 5,
    as_shipped: bool = False,
    plates: bool = False,
) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="kc-bench-"))
    shm = Path("/dev/shm")
    device_root = Path(tempfile.mkdtemp(prefix="kc-bench-devices-", dir=shm if shm.is_dir() else None))
    with session_pki() as pki, pki.mosquitto(root / "mosquitto.log") as broker:
        for i in range(devices):  # issued here: the fleet processes only read their bundles
            pki.device_tls(f"bench-{i:03d}")
        http_port = free_port()
        config = await prepare_server(root, pki, broker.port, http_port)
        server = await kuaichu("server", "run", "--config", str(config))
        stack = contextlib.AsyncExitStack()
        fleets: list[asyncio.subprocess.Process] = []
        try:
            await wait_listening(http_port, server)
            http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}")
            assert (await http.post("/api/login", json={"username": "bench", "password": PASSWORD})).is_success
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            observer = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.console_observer",
                f"ws://127.0.0.1:{http_port}/api/ws",
                cookie,
                stdout=asyncio.subprocess.PIPE,
            )
            assert observer.stdout is not None
            seen = observer.stdout
            assert (await asyncio.wait_for(seen.readline(), 30)).strip() == b"ready"

            clients: list[aiomqtt.Client] = []
            if wire:
                clients = await wire_clients(devices, pki, broker.port, stack)
            else:
                fleets = await start_shares(
                    "bench.simulated_units",
                    devices,
                    processes,
                    str(broker.port),
                    str(device_root),
                    str(pki.layout.root),
                    *(["as-shipped"] if as_shipped else []),
                    *(["plates"] if plates else []),
                )
                for proc in fleets:
                    assert proc.stdout is not None
                    assert (await asyncio.wait_for(proc.stdout.readline(), 90)).strip() == b"ready"
            what = "MQTT clients" if wire else f"simulated units in {len(fleets)} processes, each with a GNSS fix"
            print(f"{devices} {what}; {rounds} rounds of simultaneous presses")
            # This process presses (--wire: publishes) and reads the clock: a full collection of
            # the set-up's objects (certificates, fifty clients) would stall it by ~100 ms mid-round.
            gc.collect()
            gc.freeze()

            latencies: list[float] = []
            # Round 0 warms up what a worker does once in its life (statement compilation, lazy
            # imports, first validations); it is printed but not counted.
            for round_no in range(rounds + 1):
                pressed: dict[str, float] = {}
                if wire:
                    payloads = [(c, encode(in_car_report(f"bench-{i:03d}", WUHUA))) for i, c in enumerate(clients)]
                    start = time.time()
                    pressed = {f"bench-{i:03d}": start for i in range(devices)}
                    await asyncio.gather(
                        *(c.publish(f"kc/v1/dev/bench-{i:03d}/report", p, qos=1) for i, (c, p) in enumerate(payloads))
                    )
                for proc in fleets:
                    assert proc.stdin is not None
                    proc.stdin.write(b"press\n")
                for proc in fleets:
                    assert proc.stdout is not None
                    while (line := (await proc.stdout.readline()).decode().strip()) != "pressed":
                        device_id, at = line.split()
                        pressed[device_id] = float(at)
                async with asyncio.timeout(30):
                    while pressed:
                        device_id, arrived = (await seen.readline()).decode().split()
                        latencies.append((float(arrived) - pressed.pop(device_id)) * 1000)
                round_ms = latencies[-devices:]
                label = "warm-up" if round_no == 0 else f"round {round_no}"
                print(f"{label}: p50 {statistics.median(round_ms):.1f} ms, max {max(round_ms):.1f} ms")
                if round_no == 0:
                    del latencies[:]
                await asyncio.sleep(2.0)  # past case_hold_s: the devices are ready again
            observer.terminate()
            await observer.wait()
            await http.aclose()
        finally:
            for proc in fleets:
                if proc.stdin is not None:
                    proc.stdin.close()
            for proc in fleets:
                await proc.wait()
            await stack.aclose()
            server.terminate()
            await server.wait()
        rss = await device_rss_mb(root, pki, broker.port, settle_s=15.0)
    outbox_ms = await outbox_write_ms(root / "outbox-disk")

    latencies.sort()
    p99_index = min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[p99_index],
        "max_ms": latencies[-1],
        "device_rss_mb": rss,
        "outbox_write_ms": outbox_ms,
    }


async def outbox_write_ms(data_dir: Path, writes: int = 20) -> float:
    """Median time to store one report durably in a device outbox on this machine's disk."""
    from device.outbox import Outbox

    outbox = Outbox(data_dir / "outbox.sqlite")
    await outbox.open()
    times = []
    try:
        for _ in range(writes):
            report = in_car_report("bench-disk")
            start = time.perf_counter()
            await outbox.add(report)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        await outbox.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--wire", action="store_true", help="plain MQTT clients instead of simulated devices")
    parser.add_argument("--processes", type=int, default=5, help="processes the simulated units are spread over")
    parser.add_argument(
        "--as-shipped",
        action="store_true",
        help="units with the shipped camera (640x480, 15 fps) and pre-press video ring; use with few --devices",
    )
    parser.add_argument(
        "--plates", action="store_true", help="units read plates in a still after each report, as shipped"
    )
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {psutil.cpu_count()} CPUs, Python {platform.python_version()}")
    print(load_line())
    figures = runner.run(run(args.devices, args.rounds, args.wire, args.processes, args.as_shipped, args.plates))
    print(" ".join(f"{k}={v:.1f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
