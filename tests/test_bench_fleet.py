"""The fleet benchmark end to end in its smallest form: a few devices, a short window, one broker
restart. Timings are the benchmark's business; this proves that it runs and reports honestly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_fleet_benchmark_runs_and_ends_with_its_figures() -> None:
    quick = ["--devices", "3", "--processes", "2", "--heartbeat", "2", "--window", "4"]
    done = subprocess.run(
        [sys.executable, "-m", "bench.fleet", *quick],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    sent = re.search(r"heartbeats sent (\d+), written by the server (\d+)", done.stdout)
    assert sent is not None, done.stdout
    # Three devices for four seconds, one heartbeat every two: each one sent was counted and stored.
    assert int(sent.group(1)) >= 3
    assert sent.group(1) == sent.group(2)
    final = re.fullmatch(r"devices=(\d+) storm_s=(\d+\.\d) server_cpu_pct=(\d+\.\d)", lines[-1])
    assert final is not None, lines[-1]
    assert final.group(1) == "3"
