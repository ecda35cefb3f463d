"""How a server worker rolls a signed release out to a fleet: an admin starts a rollout of plate
models to every unit at once, and N units take it.

The real parts: a private Mosquitto with a freshly provisioned fleet (``tests.pki``), one server
worker as its own process (``kuaichu server run``) serving a TUF repository that
``provisioning.release`` made (``init``, ``sign`` the shipped plate models as a release,
``publish``) under ``/updates/``. An admin logs in and starts the rollout through the API
(``POST /api/updates/rollouts``: kind models, share 100 %, batch = every unit), as the fleet page
does. Each simulated unit is an MQTT client with its own certificate (``tests.update_units``): it
heartbeats so the server knows it, waits for the rollout's ``update.check`` on its cmd topic, then
takes the release with the firmware's own update client (``device.update.fetch.Fetcher``, its own
metadata cache, starting from the trusted root: root, timestamp, snapshot and targets refreshed,
each signature checked, ``latest.json`` read, the release downloaded and its length and hash
checked) and says each step in its heartbeat's ``models_update`` as the firmware's agent does.
``--concurrency`` units download at a time, on threads of this process.

The units do not install the models or run a trial (the install, the trial and its rollback are
what tests/test_update_models.py checks): a verified download is followed by ``installed`` and
``healthy``. ``updated`` and ``rolled_back`` are the server's own counts for the rollout once it is
done; a unit that refused or failed is printed. ``p95_s`` is a unit's time from the admin's request
to its ``healthy``; ``server_cpu_pct`` the server process's CPU time over the rollout, as a
percentage of one core.

    .venv/bin/python -m bench.ota [--units 200] [--concurrency 25]

Last line: ``units=N updated=… rolled_back=… server_cpu_pct=… p95_s=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.report_latency import PASSWORD, prepare_server
from bench.stack import ForeignLoad, kuaichu, load_line, percentile, wait_listening
from device.update.fetch import Fetcher
from protocol.messages import UpdateStep
from provisioning import release
from runtime import runner
from server.config import load_server_config
from tests.pki import session_pki
from tests.services import free_port
from tests.update_units import Unit, units

MODELS = Path(__file__).resolve().parents[1] / "models"
PASSPHRASE = b"bench release passphrase"


def fetch(url: str, root: Path, cache: Path, version: str) -> None:
    """The unit's update client: the models release ``version``, downloaded and verified."""
    fetcher = Fetcher(url, root, cache, max_bytes=100 << 20)
    [offer] = [o for o in fetcher.offers({"firmware": None, "models": None}) if o.kind == "models"]
    if offer.version != version:
        raise RuntimeError(f"models {offer.version} signed, {version} offered")
    fetcher.download(offer, lambda: False)


async def take(unit: Unit, url: str, root: Path, cache: Path, gate: asyncio.Semaphore, began: float) -> float | None:
    """One unit taking what its rollout offers: its time from the admin's request to healthy, or
    None when it could not (said to the server as failed, as the firmware would)."""
    command = await unit.commands.get()
    assert command.rollout is not None and command.release is not None and command.kind == "models"
    try:
        async with gate:
            await asyncio.to_thread(fetch, url, root, cache, command.release)
    except Exception as exc:  # a refusal or failure counts, and the run goes on
        print(f"unit {unit.id}: {type(exc).__name__}: {exc}")
        why = f"下载失败 (download failed): {type(exc).__name__}: {exc}"[:120]
        await unit.step(command.rollout, UpdateStep.FAILED, reason=why, release=command.release, kind="models")
        return None
    for step in (UpdateStep.DOWNLOADED, UpdateStep.INSTALLED, UpdateStep.HEALTHY):
        await unit.step(command.rollout, step, release=command.release, kind="models")
    return time.perf_counter() - began


async def rollout_done(admin: httpx.AsyncClient, rollout_id: int) -> dict[str, Any]:
    """The rollout as the fleet page shows it, once the server says it is done."""
    while True:
        listed = (await admin.get("/api/updates/rollouts")).json()["rollouts"]
        [found] = [r for r in listed if r["id"] == rollout_id]
        if found["state"] != "active":
            return dict(found)
        await asyncio.sleep(0.5)


async def all_known(admin: httpx.AsyncClient, ids: list[str]) -> None:
    """Until the server has heard every unit's heartbeat (a rollout to 100 % is of the units it knows)."""
    while not set(ids) <= {d["id"] for d in (await admin.get("/api/devices")).json()["devices"]}:
        await asyncio.sleep(0.2)


async def bench(count: int, concurrency: int) -> str:
    work = Path(tempfile.mkdtemp(prefix=f"kc-bench-ota-{count}-"))
    layout = release.init(work / "station", PASSPHRASE)
    version = time.strftime("%Y.%m.%d")
    release.sign(work / "station", PASSPHRASE, "models", version, release.models_archive(MODELS))
    release.publish(work / "station", PASSPHRASE, work / "served")
    print(load_line())
    ids = [f"ota-{i:04d}" for i in range(count)]
    with session_pki() as pki, pki.mosquitto(work / "mosquitto.log") as broker:
        for device_id in ids:  # the units' certificates, issued before anything is timed
            pki.device_tls(device_id)
        config = await prepare_server(work, pki, broker.port, free_port())
        with config.open("a") as f:
            f.write(f'\n[updates]\nrepository = "{work / "served"}"\n')
        cfg = load_server_config(config)
        with (work / "server.log").open("wb") as log:
            server = await kuaichu("server", "run", "--config", str(config), stderr=log.fileno())
        try:
            await wait_listening(cfg.http.port, server)
            base = f"http://127.0.0.1:{cfg.http.port}"
            async with units(broker.port, ids) as fleet, httpx.AsyncClient(base_url=base, timeout=30) as admin:
                (await admin.post("/api/login", json={"username": "bench", "password": PASSWORD})).raise_for_status()
                for unit in fleet.values():
                    await unit.beat()
                await asyncio.wait_for(all_known(admin, ids), 120)
                gate = asyncio.Semaphore(concurrency)
                proc = psutil.Process(server.pid)
                before = proc.cpu_times()
                foreign = ForeignLoad()
                began = time.perf_counter()
                taking = [
                    asyncio.create_task(
                        take(u, f"{base}/updates", layout.trusted_root, work / "units" / u.id, gate, began)
                    )
                    for u in fleet.values()
                ]
                body = {"release": version, "kind": "models", "percent": 100, "batch": count, "max_rollback_pct": 100}
                started = await admin.post("/api/updates/rollouts", json=body)
                started.raise_for_status()
                times = await asyncio.wait_for(asyncio.gather(*taking), 1200)
                ended = await asyncio.wait_for(rollout_done(admin, started.json()["id"]), 120)
                wall = time.perf_counter() - began
                after = proc.cpu_times()
        finally:
            server.terminate()
            await server.wait()
    done = sorted(t for t in times if t is not None)
    cpu = (after.user + after.system - before.user - before.system) / wall * 100
    size = (layout.targets / "models" / f"plates-{version}.tar").stat().st_size
    counts = ended["counts"]
    print(f"release: plate models {version}, {size / 1e6:.1f} MB; {count} units, {concurrency} downloading at a time")
    print(
        f"rollout {ended['state']} in {wall:.1f} s; other processes used {foreign.pct():.0f} % of the machine meanwhile"
    )
    print("server's counts: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    if done:
        print(f"unit time: p50 {percentile(done, 0.5):.2f} s, p95 {percentile(done, 0.95):.2f} s, max {done[-1]:.2f} s")
    p95 = percentile(done, 0.95) if done else float("nan")
    print(f"failed or refused: {count - len(done)}")
    return (
        f"units={count} updated={counts['healthy']} rolled_back={counts['rolled_back']} "
        f"server_cpu_pct={cpu:.1f} p95_s={p95:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=200, help="simulated units in the rollout")
    parser.add_argument("--concurrency", type=int, default=25, help="units downloading at once")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    print(runner.run(bench(args.units, args.concurrency)))


if __name__ == "__main__":
    main()
