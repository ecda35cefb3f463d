"""The console's live feed: cases and calls as they change, pushed to every WebSocket that may see
them (not the case's hash-chained event log, which is ``server/casework/events.py``).

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
    """One console's feed. Events wait here until its sender takes all of them at once: a batch of
    cases opened together costs the sender one wake-up, not one per case."""

    def __init__(self, units: frozenset[str] | None) -> None:
        self.units = units  # None: every unit (admins)
        self._events: list[str] = []  # as JSON text
        self._waiting = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def sees(self, adcode: str) -> bool:
        return self.units is None or adcode in self.units

    def put(self, event: str) -> bool:
        """Queue ``event``; False if the console already has ``QUEUE_LIMIT`` events waiting."""
        if len(self._events) >= QUEUE_LIMIT:
            return False
        self._events.append(event)
        self._waiting.set()
        return True

    def close(self) -> None:
        """The console went away: wake its sender, which finds nothing more to send."""
        self.closed = True
        self._waiting.set()

    async def take(self) -> list[str]:
        """Every event waiting, in order, once there is at least one; empty once closed."""
        while not self._events and not self.closed:
            self._waiting.clear()
            await self._waiting.wait()
        if self.closed:
            return []
        events, self._events = self._events, []
        return events


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
            if sub.sees(adcode) and not sub.put(event):
                # A console that cannot keep up is told to reload rather than shown a queue with holes.
                sub.overflowed = True
                self._subscribers.discard(sub)
                logger.warning("case events: a console fell %d events behind; dropping its feed", QUEUE_LIMIT)
