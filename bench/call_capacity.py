"""How many simultaneous recorded calls one server worker sustains, and what one unit spends on a call.

Starts the real stack: a private Mosquitto running a freshly provisioned fleet's mutual-TLS
configuration (``tests.pki``) and, for each measurement, a fresh server worker as its own process
(``kuaichu server run``, SQLite), whose CPU time is read from ``/proc/PID/stat`` (user + system,
as a percentage of one core).

First, one unit: a simulated in-car unit as its own process (``kuaichu device run``: the real
firmware, the rendered camera at the default 640x480, 15 fps, VP8-encoded live), idle for a
while, then pressed; its call is answered by a console (``bench/call_viewers.py``). Its CPU and
resident memory are read over a window of the call, and the server's for that one call.

Then the load: N calls at once, for N = 1, 2, 3, 4, 6, 8, ... A simulated unit in a call costs
nearly half a core (rendering and encoding its video), so six of them would not leave the server
two cores to be measured on; the calls come instead from feeders (``bench/call_feeders.py``, a few processes),
each a unit as the server sees it (own certificate, a report accepted as a case, the offer and
answer over MQTT) sending the same VP8 frames a unit's encoder makes, ready-encoded once
(``bench/vp8_clip.py``: the simulated scene at 640x480, 15 fps, 1.5 Mbit/s), and a tone as its
microphone. Every call has one console watching it (``bench/call_viewers.py``, aiortc peers in one
process, joining over the WebSocket as the console page does and sending a microphone track). So
the server does per call what it does for a real one: receive and decode the unit's video and
sound, record them (H.264 and PCM segments), encode the video again for the console, and send the
dispatcher's voice to the unit.

After a warm-up, a window (30 s) is measured: the CPU of the server, the broker, the feeders, the
viewers and the whole machine. Frames dropped: the feeders note which clip frames (each stamped
with its number) they sent in the window; the recording is decoded afterwards and the numbers read
back; a frame sent and not in the recording was dropped. The console's share is counted too:
frames the viewer decoded in the window against frames sent in it. A step holds when both drop
under 5 %; the steps go on until one does not hold or the server is CPU-bound: its event loop
(one thread, every call's packets) busy 90 % of a core or more, or the machine 95 % busy or more.

    .venv/bin/python -m bench.call_capacity [--steps 1,2,3,4,6,8,10] [--window 30] [--warmup 5]

Last line: ``calls=N cpu_pct_per_call=… dropped_pct=… unit_cpu_pct=… unit_rss_mb=…`` for the largest
N that held (``calls=0`` if none did); a step that fails (a server error, a call that never goes
live) is printed with its reason and ends the climb like one that does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.call_stack import Server, live_calls, running_server, start_unit, stop, wait_fix
from bench.fleet import DeviceProcesses, cpu_s
from bench.stack import ForeignLoad, load_line, start_shares
from bench.vp8_clip import make_clip
from device.sim.control import send_control
from runtime import runner
from tests.pki import FleetPki, session_pki
from tests.services import Mosquitto

FPS = 15
DROP_LIMIT = 0.05
SATURATED_PCT = 95.0  # of the machine's CPU: nothing left for the server to grow into
LOOP_BOUND_PCT = 90.0  # of a core, the server's event loop: it cannot take more packets


@dataclass
class Meter:
    """CPU seconds of some processes, of the server's event-loop thread (``loop``: it runs every
    call's packets, and one thread has one core at most) and of the whole machine, between two
    readings."""

    procs: dict[str, list[psutil.Process]]
    server: psutil.Process

    def read(self) -> tuple[float, dict[str, float], float]:
        machine = psutil.cpu_times()
        busy = sum(machine) - machine.idle - machine.iowait
        seconds = {name: sum(cpu_s(p) for p in ps) for name, ps in self.procs.items()}
        seconds["loop"] = sum(t.user_time + t.system_time for t in self.server.threads() if t.id == self.server.pid)
        return time.time(), seconds, busy

    def pct(
        self, start: tuple[float, dict[str, float], float], end: tuple[float, dict[str, float], float]
    ) -> dict[str, float]:
        """Per name, per cent of one core; ``machine``: per cent of all cores."""
        elapsed = end[0] - start[0]
        shares = {name: (end[1][name] - start[1][name]) / elapsed * 100 for name in start[1]}
        shares["machine"] = (end[2] - start[2]) / elapsed / psutil.cpu_count() * 100
        return shares


@dataclass
class Step:
    calls: int
    cpu: dict[str, float]
    sent: int
    recorded: int
    viewed: int
    packets_lost: int
    worst_call_pct: float

    @property
    def dropped_pct(self) -> float:
        return (1 - self.recorded / self.sent) * 100 if self.sent else 100.0

    @property
    def viewer_dropped_pct(self) -> float:
        return (1 - self.viewed / self.sent) * 100 if self.sent else 100.0

    @property
    def holds(self) -> bool:
        return self.sent > 0 and max(self.dropped_pct, self.viewer_dropped_pct) < DROP_LIMIT * 100

    @property
    def cpu_bound(self) -> str | None:
        """Why the server has no room for another call, if it has none."""
        if self.cpu["loop"] >= LOOP_BOUND_PCT:
            return f"the server's event loop is {self.cpu['loop']:.0f} % busy"
        if self.cpu["machine"] >= SATURATED_PCT:
            return f"the machine is {self.cpu['machine']:.0f} % busy"
        return None

    def describe(self) -> str:
        c = self.cpu
        verdict = "holds" if self.holds else "does NOT hold"
        return (
            f"{self.calls} calls: server {c['server']:.0f} % of a core ({c['server'] / self.calls:.1f} % a call, "
            f"its event loop {c['loop']:.0f} %), "
            f"broker {c['broker']:.1f} %, feeders {c['feeders']:.0f} %, viewers {c['viewers']:.0f} %, "
            f"machine {c['machine']:.0f} % busy (other processes {c['others']:.0f} %); "
            f"frames sent {self.sent}, recorded {self.recorded} "
            f"({self.dropped_pct:.1f} % dropped, worst call {self.worst_call_pct:.1f} %), "
            f"shown to the consoles {self.viewed} ({self.viewer_dropped_pct:.1f} % dropped; "
            f"{self.packets_lost} RTP packets lost on the way) -> {verdict}"
        )


def recorded_numbers(evidence: Path, call_id: str) -> set[int]:
    """The clip frame numbers read back from a call's recording, every segment of it."""
    from device.sim.scene import read_frame_counter

    numbers: set[int] = set()
    for segment in sorted(evidence.glob(f"*/call-{call_id}-*.mkv")):
        with av.open(str(segment)) as container:
            for frame in container.decode(video=0):
                number = read_frame_counter(np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8))
                if number is not None:
                    numbers.add(number)
    return numbers


async def ask_json(procs: DeviceProcesses, line: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for answer in await procs.ask(line):
        merged.update(json.loads(answer))
    return merged


async def start_viewers(server: Server, call_ids: list[str], log: Path) -> DeviceProcesses:
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.call_viewers",
            server.url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr.fileno(),
        )
    viewers = DeviceProcesses([proc])
    if await viewers.ask("join " + " ".join(call_ids)) != ["ready"]:
        raise RuntimeError(f"the consoles did not see their calls; see {log}")
    return viewers


async def end_calls(server: Server, call_ids: list[str]) -> None:
    for call_id in call_ids:
        (await server.http.post(f"/api/calls/{call_id}/end")).raise_for_status()


async def unit_in_call(
    root: Path, pki: FleetPki, broker_port: int, idle_s: float, warmup_s: float, window_s: float
) -> dict[str, float]:
    """One real unit: its CPU idle, then its CPU and memory in a call, and the server's for it."""
    async with running_server(root, pki, broker_port) as server:
        unit, control = await start_unit(root / "unit", broker_port, "cap-unit")
        viewers: DeviceProcesses | None = None
        try:
            await wait_fix(server.http, "cap-unit")
            proc = psutil.Process(unit.pid)
            server_proc = psutil.Process(server.proc.pid)
            meter = Meter({"unit": [proc], "server": [server_proc]}, server_proc)
            start = meter.read()
            await asyncio.sleep(idle_s)
            idle = meter.pct(start, meter.read())
            idle_rss = proc.memory_info().rss / 2**20
            answer = await send_control(control, {"cmd": "press", "hold_s": 0.2})
            if not answer.get("ok"):
                raise RuntimeError(f"the unit refused the press: {answer}")
            call_ids = await live_calls(server.http, 1)
            viewers = await start_viewers(server, call_ids, root / "viewers.log")
            await asyncio.sleep(warmup_s)
            start = meter.read()
            rss = [proc.memory_info().rss / 2**20]
            while time.time() < start[0] + window_s:
                await asyncio.sleep(1)
                rss.append(proc.memory_info().rss / 2**20)
            busy = meter.pct(start, meter.read())
            await end_calls(server, call_ids)
        finally:
            if viewers is not None:
                await viewers.stop()
            await stop(unit)
    figures = {
        "unit_idle_cpu_pct": idle["unit"],
        "unit_idle_rss_mb": idle_rss,
        "unit_cpu_pct": busy["unit"],
        "unit_rss_mb": max(rss),
        "server_cpu_pct": busy["server"],
    }
    print(
        f"one simulated unit (640x480, 15 fps): idle {figures['unit_idle_cpu_pct']:.0f} % of a core, "
        f"{idle_rss:.0f} MB; in a call {figures['unit_cpu_pct']:.0f} % of a core, up to {max(rss):.0f} MB resident; "
        f"the server {busy['server']:.0f} % of a core for that call (one console watching; its event loop "
        f"{busy['loop']:.0f} %)",
        flush=True,
    )
    return figures


async def step(
    root: Path,
    pki: FleetPki,
    broker: Mosquitto,
    calls: int,
    processes: int,
    clip: Path,
    warmup_s: float,
    window_s: float,
) -> Step:
    assert broker.proc is not None
    feeders = DeviceProcesses()
    viewers: DeviceProcesses | None = None
    async with running_server(root, pki, broker.port) as server:
        try:
            fleet_dir = str(pki.layout.root)
            feeders.procs = await start_shares(
                "bench.call_feeders", calls, processes, str(broker.port), fleet_dir, str(clip), logs=root
            )
            for proc in feeders.procs:
                assert proc.stdout is not None
                if (await asyncio.wait_for(proc.stdout.readline(), 120)).strip() != b"ready":
                    raise RuntimeError(
                        f"a feeder process did not get its calls going; see {root}/bench.call_feeders-*.log"
                    )
            call_ids = await live_calls(server.http, calls)
            viewers = await start_viewers(server, call_ids, root / "viewers.log")
            server_proc = psutil.Process(server.proc.pid)
            meter = Meter(
                {
                    "server": [server_proc],
                    "broker": [psutil.Process(broker.proc.pid)],
                    "feeders": [psutil.Process(p.pid) for p in feeders.procs],
                    "viewers": [psutil.Process(p.pid) for p in viewers.procs],
                },
                server_proc,
            )
            await asyncio.sleep(warmup_s)
            start = meter.read()
            others = ForeignLoad()
            await asyncio.sleep(window_s)
            end = meter.read()
            others_pct = others.pct()
            sent: dict[str, list[int]] = await ask_json(feeders, f"sent {start[0]:.6f} {end[0]:.6f}")
            viewed: dict[str, list[int]] = await ask_json(viewers, f"count {start[0]:.6f} {end[0]:.6f}")
            await asyncio.sleep(1)  # the window's last frames reach the recorder
            await end_calls(server, call_ids)
        finally:
            if viewers is not None:
                await viewers.stop()
            await feeders.stop()
    # The server has stopped: every recording is closed.
    recorded = 0
    worst = 0.0
    for call_id, numbers in sent.items():
        if len(set(numbers)) != len(numbers):
            raise RuntimeError("the clip looped within the window: make it longer")
        kept = len(set(numbers) & await asyncio.to_thread(recorded_numbers, server.data_dir / "evidence", call_id))
        recorded += kept
        worst = max(worst, (1 - kept / len(numbers)) * 100 if numbers else 100.0)
    return Step(
        calls=calls,
        cpu=meter.pct(start, end) | {"others": others_pct},
        sent=sum(len(n) for n in sent.values()),
        recorded=recorded,
        viewed=sum(min(viewed[c][0], len(n)) for c, n in sent.items()),
        packets_lost=sum(lost for _, lost in viewed.values()),
        worst_call_pct=worst,
    )


def render_clip(root: Path, steps: list[int], warmup_s: float, window_s: float) -> None:
    """The feeders' VP8 clip, made before the event loop starts: encoding it on a thread of a running
    uvloop loop (PyAV 18, uvloop 0.23) left every later subprocess spawn of that loop hanging."""
    # Long enough that no feeder loops within the window, however long the calls took to start.
    clip_s = warmup_s + window_s + 10 + 2 * max(steps)
    started = time.perf_counter()
    make_clip(root / "clip.ivf", round(clip_s * FPS))
    print(f"clip of {clip_s:.0f} s rendered and VP8-encoded in {time.perf_counter() - started:.0f} s", flush=True)


async def bench(
    root: Path,
    steps: list[int],
    processes: int,
    warmup_s: float,
    window_s: float,
    unit_idle_s: float,
    unit_window_s: float,
) -> str:
    with session_pki() as pki, pki.mosquitto(root / "mosquitto.log") as broker:
        for i in range(max(steps)):  # issued here: the feeder processes only read their bundles
            pki.device_tls(f"cap-{i:03d}")
        unit = await unit_in_call(
            root / "unit", pki, broker.port, idle_s=unit_idle_s, warmup_s=warmup_s, window_s=unit_window_s
        )
        best: Step | None = None
        for calls in steps:
            print(load_line(), flush=True)
            try:
                result = await step(
                    root / f"calls-{calls}",
                    pki,
                    broker,
                    calls,
                    processes,
                    clip=root / "clip.ivf",
                    warmup_s=warmup_s,
                    window_s=window_s,
                )
            except Exception as exc:
                # A step that breaks is a finding too: the figures of the last step that held still stand.
                print(f"{calls} calls: failed ({type(exc).__name__}: {exc}); logs in {root / f'calls-{calls}'}")
                break
            print(result.describe(), flush=True)
            if not result.holds:
                break
            best = result
            if result.cpu_bound is not None:
                print(f"{result.cpu_bound}: no room for more calls", flush=True)
                break
    unit_keys = f"unit_cpu_pct={unit['unit_cpu_pct']:.0f} unit_rss_mb={unit['unit_rss_mb']:.0f}"
    if best is None:
        return f"calls=0 cpu_pct_per_call=nan dropped_pct=nan {unit_keys}"
    per_call = best.cpu["server"] / best.calls
    return f"calls={best.calls} cpu_pct_per_call={per_call:.1f} dropped_pct={best.dropped_pct:.1f} {unit_keys}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="1,2,3,4,6,8,10", help="numbers of simultaneous calls, in turn")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured at each step")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of calls before each window")
    parser.add_argument("--unit-idle", type=float, default=10.0, help="seconds the real unit is measured idle")
    parser.add_argument("--unit-window", type=float, default=30.0, help="seconds of the real unit's call measured")
    parser.add_argument("--processes", type=int, default=2, help="processes the feeders are spread over")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )
    steps = [int(n) for n in args.steps.split(",")]
    root = Path(tempfile.mkdtemp(prefix="kc-bench-calls-"))
    print(load_line(), flush=True)
    render_clip(root, steps, args.warmup, args.window)
    print(runner.run(bench(root, steps, args.processes, args.warmup, args.window, args.unit_idle, args.unit_window)))


if __name__ == "__main__":
    main()
