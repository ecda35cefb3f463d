"""The training-data builders' worker processes."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Workers started afresh, not forked: a fork of a process that runs threads (a test session,
    ``models.retrain`` under the console) can leave a child stuck on a lock copied mid-use, and the
    pool's exit then waits for it forever."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
