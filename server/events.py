"""Live case events for the console's WebSockets.

Every server worker receives every case event from the broker (``kc/v1/srv/case-events``, a plain
subscription) and hands it to its own WebSocket clients, filtered by the units each operator
serves; so a case opened by one worker appears on consoles connected to any worker.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)

QUEUE_LIMIT = 1000


class Subscriber:
    def __init__(self, units: frozenset[str] | None) -> None:
        self.units = units  # None: every unit (admins)
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_LIMIT)  # events as JSON text
        self.overflowed = False

    def sees(self, adcode: str) -> bool:
        return self.units is None or adcode in self.units


class CaseHub:
    def __init__(self) -> None:
        self._subscribers: set[Subscriber] = set()

    def subscribe(self, units: frozenset[str] | None) -> Subscriber:
        sub = Subscriber(units)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def deliver(self, adcode: str, event: str) -> None:
        """Hand one event, already JSON, to every console that serves ``adcode``."""
        for sub in list(self._subscribers):
            if not sub.sees(adcode):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # A console that cannot keep up is told to reload rather than shown a queue with holes.
                sub.overflowed = True
                self._subscribers.discard(sub)
                logger.warning("case events: a console fell %d events behind; dropping its feed", QUEUE_LIMIT)
