"""A fleet sharded over two brokers, one of them killed: how fast its units are on the other.

Starts two private Mosquittos running the same freshly provisioned fleet configuration
(``tests.pki``: the same CA, certificate and ACL on each, as ``kuaichu provision`` deploys them), one
server worker (``kuaichu server run``, SQLite) connected to both, and N devices spread over a few
processes (``bench/fleet_devices.py``): each the firmware's own broker link listing both brokers in
the order its bundle would give it, so that about half the fleet is on each, heartbeating every
10 s. Once the server knows every device, broker A is killed (SIGKILL: no clean close, no will).
``moved_s`` runs from the kill until every device's link is up again (those of A on B);
``storm_s`` until the server has a presence or heartbeat newer than the kill from every device.

    .venv/bin/python -m bench.broker_failover [--devices 2000] [--processes 4] [--limit 300]

Last line: ``devices=N on_a=M moved_s=… storm_s=…`` (``nan`` where it did not happen within
``--limit`` seconds).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.fleet import (
    BOOT_RATE,
    DeviceProcesses,
    DeviceTable,
    NotLinked,
    back_after,
    issue_certificates,
    wait_all_known,
)
from bench.fleet_devices import broker_ports, device_id, raise_fd_limit
from bench.stack import kuaichu, load_line, server_config, start_shares, wait_listening
from runtime import runner
from server.config import load_server_config
from tests.pki import FleetPki, session_pki
from tests.services import Mosquitto, free_port


def sharded_config(root: Path, pki: FleetPki, a: Mosquitto, b: Mosquitto) -> Path:
    """``bench.stack.server_config`` for broker A, with B as the further broker."""
    config = server_config(root, pki, a.port, free_port())
    first = f"port = {pki.server_port(a.port)}\n"
    other = f'others = [{{host = "127.0.0.1", port = {pki.server_port(b.port)}}}]\n'
    config.write_text(config.read_text().replace(first, first + other, 1))
    return config


async def after_kill(devices: int, table: DeviceTable, fleet: DeviceProcesses, killed: float, limit_s: float) -> str:
    moved, stored = await back_after(devices, table, fleet, killed, limit_s)
    moved_s = f"{moved - killed:.1f}" if moved is not None else "nan"
    storm_s = f"{stored - killed:.1f}" if stored is not None else "nan"
    return f"moved_s={moved_s} storm_s={storm_s}"


async def run(pki: FleetPki, devices: int, processes: int, period: float, limit_s: float) -> str:
    root = Path(tempfile.mkdtemp(prefix=f"kc-bench-failover-{devices}-"))
    print(load_line())
    with pki.mosquitto(root / "a.log") as a, pki.mosquitto(root / "b.log") as b:
        on_a = sum(1 for i in range(devices) if broker_ports(device_id(i), [a.port, b.port])[0] == a.port)
        config = sharded_config(root, pki, a, b)
        cfg = load_server_config(config)
        with (root / "server.log").open("wb") as server_log:
            server = await kuaichu("server", "run", "--config", str(config), stderr=server_log.fileno())
        fleet = DeviceProcesses()
        table: DeviceTable | None = None
        try:
            await wait_listening(cfg.http.port, server)
            start = time.perf_counter()
            boot_s = devices / BOOT_RATE
            fleet.procs = await start_shares(
                "bench.fleet_devices",
                devices,
                processes,
                str(a.port),
                str(pki.layout.root),
                str(period),
                str(boot_s),
                str(b.port),
                logs=root,
            )
            if not await fleet.all_ready(boot_s + 90 + devices / 20):
                raise NotLinked(f"{devices} devices: not all linked (logs in {root})")
            print(f"{devices} devices linked after {time.perf_counter() - start:.1f} s, {on_a} of them on broker A")
            table = DeviceTable(cfg.database_url)
            await wait_all_known(devices, table, timeout=3 * period + 30)
            assert a.proc is not None
            a.proc.kill()
            killed = time.time()
            a.proc.wait()
            print("broker A killed (SIGKILL)")
            figures = await after_kill(devices, table, fleet, killed, limit_s)
            return f"devices={devices} on_a={on_a} {figures}"
        finally:
            await fleet.stop()
            if table is not None:
                table.close()
            server.terminate()
            await server.wait()


async def bench(devices: int, processes: int, period: float, limit_s: float) -> str:
    with session_pki() as pki:
        print(f"{devices} device certificates issued in {issue_certificates(pki, devices):.1f} s")
        try:
            return await run(pki, devices, processes, period, limit_s)
        except NotLinked as exc:
            print(exc)
            return f"devices={devices} on_a=0 moved_s=nan storm_s=nan"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000, help="devices, about half on each broker")
    parser.add_argument("--processes", type=int, default=4, help="processes the devices are spread over")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="seconds between a device's heartbeats")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds to wait after the kill")
    args = parser.parse_args()
    raise_fd_limit()  # the brokers started from here inherit it: one descriptor per device
    print(
        f"machine: {platform.machine()}, {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    print(runner.run(bench(args.devices, args.processes, args.heartbeat, args.limit)))


if __name__ == "__main__":
    main()
