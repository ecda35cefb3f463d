"""Waiting in a test for something another task or process does, with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(
    what: str, check: Callable[[], Awaitable[T | None]], within_s: float = 20, every_s: float = 0.1
) -> T:
    """Await ``check()`` every ``every_s`` until it gives something truthy, and return that; fail the
    test with ``what`` was awaited once ``within_s`` has passed."""
    deadline = time.monotonic() + within_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        await asyncio.sleep(every_s)
