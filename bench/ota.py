"""How a server worker hands a signed release to a fleet: N units check and download it at once.

The real parts: a private Mosquitto with a freshly provisioned fleet (``tests.pki``), one server
worker as its own process (``kuaichu server run``) serving a TUF repository that
``provisioning.release`` made (``init``, ``sign`` the shipped plate models as a release,
``publish``) under ``/updates/``. Each simulated unit is the firmware's own update client
(``device.update.fetch.Fetcher``) with its own metadata cache, starting from the trusted root:
it refreshes the metadata (root, timestamp, snapshot, targets, each signature checked), reads
``latest.json``, downloads the release and checks its length and hash. ``--concurrency`` units
run at a time, on threads of this process.

A unit is ``updated`` once its download is verified. No unit installs or runs a trial here
(installing into virtualenvs, the trial and its rollback are what tests/test_update_install.py
checks), so ``rolled_back`` is 0 unless that changes; a unit that refused or failed is printed
and counted in the line before the last. ``p95_s`` is a unit's time from starting its check to a verified release;
``server_cpu_pct`` the server process's CPU time over the run, as a percentage of one core.

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

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.stack import ForeignLoad, kuaichu, load_line, percentile, server_config, wait_listening
from device.update.fetch import Fetcher
from provisioning import release
from runtime import runner
from server.config import load_server_config
from tests.pki import session_pki
from tests.services import free_port

MODELS = Path(__file__).resolve().parents[1] / "models"
PASSPHRASE = b"bench release passphrase"


def unit(url: str, root: Path, cache: Path) -> float:
    """One unit taking the release; its time in seconds."""
    start = time.perf_counter()
    fetcher = Fetcher(url, root, cache, max_bytes=100 << 20)
    for offer in fetcher.offers({"firmware": None, "models": None}):
        fetcher.download(offer, lambda: False)
    return time.perf_counter() - start


async def bench(units: int, concurrency: int) -> str:
    work = Path(tempfile.mkdtemp(prefix=f"kc-bench-ota-{units}-"))
    layout = release.init(work / "station", PASSPHRASE)
    version = time.strftime("%Y.%m.%d")
    release.sign(work / "station", PASSPHRASE, "models", version, release.models_archive(MODELS))
    release.publish(work / "station", PASSPHRASE, work / "served")
    print(load_line())
    with session_pki() as pki, pki.mosquitto(work / "mosquitto.log") as broker:
        config = server_config(work, pki, broker.port, free_port())
        with config.open("a") as f:
            f.write(f'\n[updates]\nrepository = "{work / "served"}"\n')
        cfg = load_server_config(config)
        with (work / "server.log").open("wb") as log:
            server = await kuaichu("server", "run", "--config", str(config), stderr=log.fileno())
        try:
            await wait_listening(cfg.http.port, server)
            url = f"http://127.0.0.1:{cfg.http.port}/updates"
            gate = asyncio.Semaphore(concurrency)
            proc = psutil.Process(server.pid)
            before = proc.cpu_times()
            foreign = ForeignLoad()
            began = time.perf_counter()

            async def one(index: int) -> float | None:
                async with gate:
                    try:
                        return await asyncio.to_thread(unit, url, layout.trusted_root, work / "units" / f"{index:04}")
                    except Exception as exc:  # a refusal or failure counts, and the run goes on
                        print(f"unit {index}: {type(exc).__name__}: {exc}")
                        return None

            times = await asyncio.gather(*(one(i) for i in range(units)))
            wall = time.perf_counter() - began
            after = proc.cpu_times()
        finally:
            server.terminate()
            await server.wait()
    done = sorted(t for t in times if t is not None)
    cpu = (after.user + after.system - before.user - before.system) / wall * 100
    size = (layout.targets / "models" / f"plates-{version}.tar").stat().st_size
    print(f"release: plate models {version}, {size / 1e6:.1f} MB; {units} units, {concurrency} at a time")
    print(f"all units done in {wall:.1f} s; other processes used {foreign.pct():.0f} % of the machine meanwhile")
    if done:
        print(f"unit time: p50 {percentile(done, 0.5):.2f} s, p95 {percentile(done, 0.95):.2f} s, max {done[-1]:.2f} s")
    p95 = percentile(done, 0.95) if done else float("nan")
    print(f"failed or refused: {units - len(done)}")
    return f"units={units} updated={len(done)} rolled_back=0 server_cpu_pct={cpu:.1f} p95_s={p95:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=200, help="simulated units taking the release")
    parser.add_argument("--concurrency", type=int, default=25, help="units checking and downloading at once")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    print(runner.run(bench(args.units, args.concurrency)))


if __name__ == "__main__":
    main()
