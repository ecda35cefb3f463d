"""Running a ``kuaichu`` process's main coroutine, on uvloop.

uvloop cuts the event loop's own cost per message roughly in half, which is most of what a worker
spends per report besides the database; every long-running command uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
