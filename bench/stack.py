"""What every benchmark starts the same way: a server worker in its own process on a provisioned
mutual-TLS broker, and the certificate files a simulated device reads.

The benchmarks time the system, not themselves, so the server runs as ``kuaichu server run`` would
in production: its own process, its own event loop, its own CPU accounting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from asyncio.subprocess import PIPE
from pathlib import Path

import psutil

from provisioning.bundle import CA_NAME, CERT_NAME, KEY_NAME
from provisioning.fleet import Layout
from runtime.mqtt import TlsSection
from tests.pki import FleetPki, tls_table
from tests.services import free_port


def server_config(root: Path, pki: FleetPki, broker_port: int, http_port: int) -> Path:
    """A ``server.toml`` for one worker on this broker (``broker_port`` is the devices' listener; the
    worker connects to the server workers' own), with the fleet's server certificate."""
    config = root / "server.toml"
    config.write_text(
        f'[server]\ndata_dir = "{root / "server"}"\n\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {pki.server_port(broker_port)}\n\n'
        + tls_table(pki.server_tls())
        + f'[http]\nhost = "127.0.0.1"\nport = {http_port}\nsecure_cookies = false\n'
    )
    return config


def worker_configs(root: Path, pki: FleetPki, broker_port: int, workers: int, extra: str = "") -> list[Path]:
    """A ``server.toml`` (in ``root/wN/``) for each of ``workers`` workers on this broker sharing one
    data folder, so one SQLite database unless ``extra`` (appended to each) names another; each has
    its own worker id and HTTP port, and only the first is the media worker."""
    configs = []
    for w in range(workers):
        folder = root / f"w{w + 1}"
        folder.mkdir()
        config = server_config(folder, pki, broker_port, free_port())
        text = config.read_text().replace(f'data_dir = "{folder / "server"}"', f'data_dir = "{root / "server"}"')
        runs = "" if w == 0 else 'runs = ["intake", "console"]\n'  # the first one runs everything
        text = text.replace("[server]\n", f'[server]\nworker_id = "w{w + 1}"\n{runs}', 1)
        config.write_text(text + extra)
        configs.append(config)
    return configs


async def kuaichu(*args: str, stderr: int | None = None, profile: Path | None = None) -> asyncio.subprocess.Process:
    """``kuaichu ARGS`` as a child process, logging warnings and worse; profiled by
    ``bench.profiled`` into the file ``profile`` if one is given."""
    command = ["bench.profiled", str(profile)] if profile is not None else ["kuaichu.cli"]
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", *command, "--log-level", "WARNING", *args, stdout=subprocess.DEVNULL, stderr=stderr
    )


async def wait_listening(port: int, proc: asyncio.subprocess.Process, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            await asyncio.sleep(0.1)


async def start_shares(
    module: str, devices: int, processes: int, *args: str, logs: Path | None = None
) -> list[asyncio.subprocess.Process]:
    """``python -m MODULE FIRST COUNT ARGS...`` for each share of ``devices`` over at most
    ``processes``, speaking over stdin/stdout; stderr to ``logs/MODULE-FIRST.log`` if given."""
    share = -(-devices // processes)
    procs = []
    for first in range(0, devices, share):
        count = str(min(share, devices - first))
        with contextlib.ExitStack() as files:
            stderr = files.enter_context((logs / f"{module}-{first}.log").open("wb")).fileno() if logs else None
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", module, str(first), count, *args, stdin=PIPE, stdout=PIPE, stderr=stderr
                )
            )
    return procs


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def bundle_tls(fleet_dir: Path, device_id: str) -> TlsSection:
    """The certificate files of a device's bundle in the provisioning folder ``fleet_dir``."""
    folder = Layout(fleet_dir).device(device_id)
    return TlsSection(ca_file=folder / CA_NAME, cert_file=folder / CERT_NAME, key_file=folder / KEY_NAME)


def load_line() -> str:
    """The machine's load averages, printed before a run so that a busy machine shows in the record."""
    one, five, fifteen = os.getloadavg()
    return f"load average before the run: {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def percentile(ordered: list[float], share: float) -> float:
    """The value at ``share`` (0..1) of the sorted list ``ordered``, nearest rank."""
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class ForeignLoad:
    """How much of the machine's CPU went to processes outside this benchmark while it ran.

    Others share this machine: a figure measured while they were busy says so. The benchmark's own
    CPU is this process and its descendants, those still running and those already waited for.
    """

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float]:
        me = psutil.Process()
        ours = 0.0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                ours += t.user + t.system + t.children_user + t.children_system
        machine = psutil.cpu_times()
        return time.monotonic(), sum(machine) - machine.idle - machine.iowait, ours

    def pct(self) -> float:
        """Per cent of the whole machine (all cores) used by others since this was made."""
        now, busy, ours = self._read()
        elapsed = now - self._start[0]
        return float(max(0.0, (busy - self._start[1]) - (ours - self._start[2])) / elapsed / psutil.cpu_count() * 100)
