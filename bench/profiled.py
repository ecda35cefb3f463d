"""``kuaichu`` under cProfile, counting the main thread's CPU time rather than wall time, so that
an event loop waiting for messages does not fill the profile; the stats go to FILE on exit.

    python -m bench.profiled FILE ARGS...    (ARGS as for ``kuaichu``)
"""

from __future__ import annotations

import cProfile
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from kuaichu.cli import main

if __name__ == "__main__":
    profiler = cProfile.Profile(time.thread_time)
    try:
        profiler.runcall(main, sys.argv[2:])
    finally:
        profiler.dump_stats(sys.argv[1])
