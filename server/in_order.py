"""Device messages handled one at a time, in the order they arrived.

The MQTT client's callback must not wait on the database, and two messages of one upload or one
reading must not be written at once; so the callback only queues, and one task works the queue.
A message that fails is logged and the next one is handled: one bad message never stops a device's
later ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)


class InOrder:
    def __init__(self, handle: Callable[[str, bytes], Awaitable[Any]], what: str) -> None:
        self._handle = handle
        self._what = what  # says in the log which kind of message failed
        self._arrived: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    def put(self, device_id: str, payload: bytes) -> None:
        self._arrived.put_nowait((device_id, payload))

    async def run(self) -> None:
        while True:
            device_id, payload = await self._arrived.get()
            try:
                await self._handle(device_id, payload)
            except Exception:
                logger.exception("device %s: %s could not be handled", device_id, self._what)
