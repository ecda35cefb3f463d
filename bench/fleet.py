"""How many heartbeating devices one server worker keeps up with, and how fast they all come back
after a broker restart.

Starts the real stack: a private Mosquitto running a freshly provisioned fleet's mutual-TLS
configuration (``tests.pki``), one server worker as its own process (``kuaichu server run``, SQLite
on disk), and N devices spread over a few processes (``bench/fleet_devices.py``): each the
firmware's own broker link with its own certificate, persistent session, keepalive, retained
presence and last will, heartbeating every 10 s at QoS 0. The certificates are issued in this
process by ``provisioning.ca`` from the fleet's CA (key and certificate only: the QR code and
archive a technician carries cost 60 ms a device and play no part here).

Steady state: once every device is in the server's database, a window (60 s) in which the server
process's CPU time is read (user + system, as a percentage of one core), and the server's devices
table is read every third of a period. It keeps up when every heartbeat the devices sent in the
window was written by the server (each one is seen, since a device's last heartbeat stays in the
table for about a period; hence a period of at least twice the server's ``STATUS_GATHER_S``), no
device's last heartbeat was ever older than two periods, and the server used under 50 % of one
core. The lag is the time from a heartbeat's ``at`` to the server's ``last_seen`` for it.

Storm: the broker is stopped and started again on the same port with the same configuration;
``storm_s`` runs from the broker listening again until the server has a fresh presence or heartbeat
from every device (its database read every 0.25 s), ``devices_up_s`` until every device's link is up.

``--find-max`` runs the whole thing for each N in turn (a fresh broker, server and database each
time) and stops at the first N the server does not keep up with, or whose devices do not all link
within 90 s of being switched on plus 50 ms a device (then the broker or the simulation is the
limit on this machine).

    .venv/bin/python -m bench.fleet [--devices 2000 | --find-max 2000,4000,6000] [--window 60]

Last line: ``devices=N storm_s=… server_cpu_pct=…`` for the largest N that was kept up with
(``devices=0`` if none was).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.fleet_devices import device_id, raise_fd_limit
from bench.stack import ForeignLoad, kuaichu, load_line, percentile, server_config, start_shares, wait_listening
from provisioning.bundle import CA_NAME, CERT_NAME, KEY_NAME
from provisioning.ca import Usage, issue, load_authority, write_cert, write_key
from runtime import runner
from server.config import load_server_config
from server.db.engine import make_sync_engine
from server.db.models import Device
from server.intake import STATUS_GATHER_S
from tests.pki import PASSPHRASE, FleetPki, session_pki
from tests.services import Mosquitto, free_port

CPU_LIMIT_PCT = 50.0
# Devices switched on a second, spread at random: as many as the broker and the simulated devices
# connect on this machine's two cores without handshakes timing out (300 a second did not, at 4,000).
BOOT_RATE = 100.0


class NotLinked(Exception):
    """The devices did not all connect: the broker or the simulation is the limit, not the server."""


def issue_certificates(pki: FleetPki, count: int) -> float:
    """Key and certificate for devices 0..count-1 into their bundle folders; returns seconds taken."""
    start = time.perf_counter()
    ca = load_authority(pki.layout.ca_cert, pki.layout.ca_key, PASSPHRASE)
    for index in range(count):
        folder = pki.layout.device(device_id(index))
        if folder.exists():
            continue
        folder.mkdir(mode=0o700)
        cert, key = issue(ca, device_id(index), Usage.CLIENT)
        write_cert(folder / CA_NAME, ca.cert)
        write_cert(folder / CERT_NAME, cert)
        write_key(folder / KEY_NAME, key)
    return time.perf_counter() - start


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


@dataclass
class Steady:
    devices: int
    window_s: float
    server_cpu_pct: float
    broker_cpu_pct: float
    fleet_cpu_pct: float
    others_pct: float
    sent: int
    processed: int
    lags_s: list[float]
    stale_max: int

    @property
    def keeps_up(self) -> bool:
        return self.processed == self.sent and self.stale_max == 0 and self.server_cpu_pct < CPU_LIMIT_PCT

    def describe(self) -> str:
        lags = sorted(self.lags_s) or [float("nan")]
        p99 = percentile(lags, 0.99)
        return (
            f"{self.devices} devices, {self.window_s:.0f} s window: server {self.server_cpu_pct:.1f} % of a core, "
            f"broker {self.broker_cpu_pct:.1f} %, device processes {self.fleet_cpu_pct:.1f} %, "
            f"other processes {self.others_pct:.1f} % of the whole machine; "
            f"heartbeats sent {self.sent}, written by the server {self.processed}; "
            f"lag p50 {statistics.median(lags) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms; "
            f"most devices stale at once {self.stale_max} -> {'keeps up' if self.keeps_up else 'does NOT keep up'}"
        )


@dataclass
class Storm:
    devices_up_s: float
    storm_s: float
    cpu_s: dict[str, float]

    def describe(self) -> str:
        return (
            f"broker restart: every device linked again after {self.devices_up_s:.1f} s, "
            f"the server had a fresh presence or heartbeat from every device after {self.storm_s:.1f} s; "
            "CPU seconds meanwhile: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.cpu_s.items())
        )


@dataclass
class DeviceProcesses:
    """The device processes and their stdin/stdout conversation."""

    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def ask(self, line: str) -> list[str]:
        answers = []
        for proc in self.procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(line.encode() + b"\n")
            answers.append((await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip())
        return answers

    async def all_ready(self, within_s: float) -> bool:
        """Whether each process said ``ready`` (every one of its devices linked), each within ``within_s``."""
        for proc in self.procs:
            assert proc.stdout is not None
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), within_s)
            except TimeoutError:
                return False
            if line.strip() != b"ready":
                return False
        return True

    async def sent_between(self, start: float, end: float) -> int:
        return sum(int(answer) for answer in await self.ask(f"sent {start:.6f} {end:.6f}"))

    async def linked(self, since: float) -> tuple[int, float | None]:
        """How many devices are linked, and when the last process had all of its devices linked if
        every one has since ``since``."""
        answers = [dict(field.split("=") for field in answer.split()) for answer in await self.ask("status")]
        times = [float(answer["all_up_at"]) for answer in answers]
        return sum(int(answer["connected"]) for answer in answers), max(times) if min(times) > since else None

    def cpu_s(self) -> float:
        return sum(cpu_s(psutil.Process(proc.pid)) for proc in self.procs)

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


class DeviceTable:
    """The server's devices table, read from outside the server as the fleet page would read it."""

    def __init__(self, url: str) -> None:
        self._engine = make_sync_engine(url)

    def _read(self) -> dict[str, tuple[bool, datetime, Any]]:
        query = select(Device.id, Device.online, Device.last_seen, Device.last_heartbeat).where(
            Device.id.like("fleet-%")
        )
        with self._engine.connect() as conn:
            return {row.id: (row.online, row.last_seen, row.last_heartbeat) for row in conn.execute(query)}

    async def read(self) -> dict[str, tuple[bool, datetime, Any]]:
        return await asyncio.to_thread(self._read)

    def close(self) -> None:
        self._engine.dispose()


async def steady_window(
    devices: int,
    window_s: float,
    period: float,
    table: DeviceTable,
    procs: dict[str, psutil.Process],
    fleet: DeviceProcesses,
) -> Steady:
    seen: set[tuple[str, str]] = set()
    lags: list[float] = []
    stale_max = 0
    start = time.time()
    end = start + window_s
    cpu_start = {name: cpu_s(p) for name, p in procs.items()}
    fleet_start = fleet.cpu_s()
    others = ForeignLoad()

    async def sample_until(until: float) -> None:
        nonlocal stale_max
        while (now := time.time()) < until:
            rows = await table.read()
            if now <= end:
                fresh = sum(1 for _, last_seen, _ in rows.values() if last_seen.timestamp() >= now - 2 * period)
                stale_max = max(stale_max, devices - fresh)
            for ident, (_, last_seen, heartbeat) in rows.items():
                if heartbeat is None or (ident, heartbeat["at"]) in seen:
                    continue
                at = datetime.fromisoformat(heartbeat["at"]).timestamp()
                if start <= at <= end:
                    seen.add((ident, heartbeat["at"]))
                    lags.append(last_seen.timestamp() - at)
            await asyncio.sleep(max(0.0, period / 3 - (time.time() - now)))

    sampler = asyncio.create_task(sample_until(end + period / 2 + 2))
    await asyncio.sleep(window_s)
    cpu_end = {name: cpu_s(p) for name, p in procs.items()}
    fleet_end = fleet.cpu_s()
    others_pct = others.pct()
    elapsed = time.time() - start
    await sampler
    pct = {name: (cpu_end[name] - cpu_start[name]) / elapsed * 100 for name in procs}
    return Steady(
        devices=devices,
        window_s=elapsed,
        server_cpu_pct=pct["server"],
        broker_cpu_pct=pct["broker"],
        fleet_cpu_pct=(fleet_end - fleet_start) / elapsed * 100,
        others_pct=others_pct,
        sent=await fleet.sent_between(start, end),
        processed=len(seen),
        lags_s=lags,
        stale_max=stale_max,
    )


async def back_after(
    devices: int, table: DeviceTable, fleet: DeviceProcesses, since: float, limit_s: float
) -> tuple[float | None, float | None]:
    """When every device's link was up again after ``since``, and when the server had stored a fresh
    heartbeat from every one (``None`` where ``limit_s`` ran out first): both ends of a reconnection
    storm, whether the broker restarted or one of several was killed."""
    devices_done: float | None = None
    server_done: float | None = None
    shown = 0.0
    while time.time() - since < limit_s and (server_done is None or devices_done is None):
        now = time.time()
        rows = await table.read()
        fresh = sum(1 for online, last_seen, _ in rows.values() if online and last_seen.timestamp() >= since)
        if server_done is None and fresh == devices:
            server_done = now
        linked, all_up = await fleet.linked(since)
        devices_done = devices_done or all_up
        if now - since >= shown:
            print(f"  +{now - since:4.1f} s: {linked} devices linked, {fresh} fresh at the server")
            shown = (now - since) // 5 * 5 + 5
        await asyncio.sleep(0.25)
    return devices_done, server_done


async def broker_storm(
    devices: int, broker: Mosquitto, server: psutil.Process, table: DeviceTable, fleet: DeviceProcesses, limit_s: float
) -> Storm:
    await asyncio.to_thread(broker.restart)
    up = time.time()
    assert broker.proc is not None
    cpu_start = {"server": cpu_s(server), "device processes": fleet.cpu_s()}
    devices_done, server_done = await back_after(devices, table, fleet, up, limit_s)
    nan = float("nan")
    cpu_end = {"server": cpu_s(server), "device processes": fleet.cpu_s()}
    return Storm(
        devices_up_s=devices_done - up if devices_done is not None else nan,
        storm_s=server_done - up if server_done is not None else nan,
        cpu_s={"broker": cpu_s(psutil.Process(broker.proc.pid))}
        | {name: cpu_end[name] - cpu_start[name] for name in cpu_start},
    )


async def wait_all_known(devices: int, table: DeviceTable, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while len(await table.read()) < devices:
            await asyncio.sleep(0.5)


async def run(
    pki: FleetPki, devices: int, processes: int, period: float, window_s: float, profile: Path | None
) -> tuple[Steady, Storm | None]:
    root = Path(tempfile.mkdtemp(prefix=f"kc-bench-fleet-{devices}-"))
    print(load_line())
    with pki.mosquitto(root / "mosquitto.log") as broker:
        assert broker.proc is not None
        config = server_config(root, pki, broker.port, free_port())
        cfg = load_server_config(config)
        with (root / "server.log").open("wb") as server_log:
            server = await kuaichu(
                "server", "run", "--config", str(config), stderr=server_log.fileno(), profile=profile
            )
        fleet = DeviceProcesses()
        table: DeviceTable | None = None
        try:
            await wait_listening(cfg.http.port, server)
            start = time.perf_counter()
            fleet.procs = await start_shares(
                "bench.fleet_devices",
                devices,
                processes,
                str(broker.port),
                str(pki.layout.root),
                str(period),
                str(boot_s := devices / BOOT_RATE),
                logs=root,
            )
            if not await fleet.all_ready(boot_s + 90 + devices / 20):
                took = time.perf_counter() - start
                raise NotLinked(f"{devices} devices: not all linked after {took:.0f} s (logs in {root})")
            print(f"{devices} devices linked in {len(fleet.procs)} processes after {time.perf_counter() - start:.1f} s")
            table = DeviceTable(cfg.database_url)
            await wait_all_known(devices, table, timeout=3 * period + 30)
            procs = {"server": psutil.Process(server.pid), "broker": psutil.Process(broker.proc.pid)}
            steady = await steady_window(devices, window_s, period, table, procs, fleet)
            print(steady.describe())
            storm = None
            if steady.keeps_up:
                storm = await broker_storm(devices, broker, procs["server"], table, fleet, limit_s=300)
                print(storm.describe())
            return steady, storm
        finally:
            await fleet.stop()
            if table is not None:
                table.close()
            server.terminate()
            await server.wait()


async def bench(steps: list[int], processes: int, period: float, window_s: float, profile: Path | None) -> str:
    best: tuple[Steady, Storm | None] | None = None
    with session_pki() as pki:
        print(f"{max(steps)} device certificates issued in {issue_certificates(pki, max(steps)):.1f} s")
        for devices in steps:
            try:
                steady, storm = await run(pki, devices, processes, period, window_s, profile)
            except NotLinked as exc:
                print(f"{exc}; stopping here")
                break
            except Exception as exc:
                # Whatever broke the step (a server error, a timeout), the last step that kept up stands.
                print(f"{devices} devices: failed ({type(exc).__name__}: {exc}); stopping here")
                break
            if not steady.keeps_up:
                break
            best = steady, storm
    if best is None:
        return "devices=0 storm_s=nan server_cpu_pct=nan"
    steady, storm = best
    storm_s = storm.storm_s if storm is not None else float("nan")
    return f"devices={steady.devices} storm_s={storm_s:.1f} server_cpu_pct={steady.server_cpu_pct:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--devices", type=int, default=2000, help="one run with this many devices")
    what.add_argument("--find-max", metavar="N,N,...", help="runs for each N in turn, until one fails")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of steady state measured")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="seconds between a device's heartbeats")
    parser.add_argument("--processes", type=int, default=4, help="processes the devices are spread over")
    parser.add_argument("--profile", type=Path, help="run the server under cProfile, writing its stats here")
    args = parser.parse_args()
    if args.heartbeat < 2 * STATUS_GATHER_S:
        parser.error(f"--heartbeat must be at least {2 * STATUS_GATHER_S:g} s: the server gathers heartbeats that long")
    steps = [int(n) for n in args.find_max.split(",")] if args.find_max else [args.devices]
    raise_fd_limit()  # the broker started from here inherits it: one descriptor per device
    print(
        f"machine: {platform.machine()}, {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    print(runner.run(bench(steps, args.processes, args.heartbeat, args.window, args.profile)))


if __name__ == "__main__":
    main()
