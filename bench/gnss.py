"""How fast the GNSS reader turns receiver bytes into fixes: ``kuaichu device gnss-replay``'s path
(splitter, checksum, pynmea2, epoch merging) on 100,000 sentences, in one process on one core.

The bytes are the hand-written receiver captures (``tests/data/nmea``, every style) and the
simulated receiver's Kunming drive, repeated until there are enough sentences, fed in the 4 KiB
chunks ``gnss-replay`` reads. The figure is sentences per second of the process's CPU time (one
core, single thread), the best of ``--runs``; wall-clock time is printed beside it, since on a
machine shared with other work the two differ.

    .venv/bin/python -m bench.gnss [--sentences 100000] [--runs 3]

Last line: ``sentences=… fixes=… cpu_s=… wall_s=… sentences_per_s=…``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root

from device.gnss_replay import CHUNK_BYTES
from device.hal.gnss_simulated import DEFAULT_TRACK
from device.hal.nmea import LineSplitter, NmeaReader

CAPTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "nmea"


def corpus(sentences: int) -> tuple[bytes, int]:
    """Whole captures of every receiver style, in turn, until there are ``sentences`` candidate
    sentences (a few more: the last capture is not cut)."""
    captures = [path.read_bytes() for path in sorted(CAPTURES.rglob("*.nmea"))]
    captures.append(DEFAULT_TRACK.read_bytes())
    counts = [len(LineSplitter().feed(capture + b"\n")) for capture in captures]
    chunks: list[bytes] = []
    count = 0
    while count < sentences:
        capture = len(chunks) % len(captures)
        chunks.append(captures[capture])
        count += counts[capture]
    return b"".join(chunks), count


def replay(data: bytes) -> int:
    reader = NmeaReader()
    fixes = 0
    for start in range(0, len(data), CHUNK_BYTES):
        fixes += len(reader.feed(data[start : start + CHUNK_BYTES]))
    return fixes + len(reader.flush())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    data, sentences = corpus(args.sentences)
    print(f"{sentences} sentences, {len(data) / 1e6:.1f} MB, {args.runs} runs")
    best_cpu = best_wall = float("inf")
    fixes = 0
    for run in range(1, args.runs + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        fixes = replay(data)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
        print(f"run {run}: {fixes} fixes, cpu {cpu:.2f} s, wall {wall:.2f} s, {sentences / cpu:,.0f} sentences/s")
    print(
        f"sentences={sentences} fixes={fixes} cpu_s={best_cpu:.3f} wall_s={best_wall:.3f} "
        f"sentences_per_s={sentences / best_cpu:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
