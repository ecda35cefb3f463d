"""Clearing the road: the dispatcher's command to the unit, and for an in-car unit the GNSS
confirmation that the vehicle has moved off.

The watch reads what every worker already keeps, the device's last heartbeat (with its position)
in the database, so it survives restarts and sees heartbeats taken by any worker. A unit that has
not moved ``move_off_m`` from the scene within ``move_off_s`` of the command flags its case; the
consoles showing the case hear of the move-off or the flag at once (``case.update``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.messages import Heartbeat
from server.cases import case_summary, now_utc
from server.casework.events import Actor, append, lock_case
from server.config import ClearingSection
from server.db.models import Case, Device

logger = logging.getLogger(__name__)
SYSTEM = Actor(None, "system", "gnss")
LOOK_BACK = timedelta(days=1)
EARTH_M = 6_371_000.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(a))


class ClearingWatch:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cfg: ClearingSection,
        case_changed: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        self._sessions = sessions
        self._cfg = cfg
        self._case_changed = case_changed

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                logger.exception("clearing watch: a round failed; trying again")
            await asyncio.sleep(self._cfg.check_every_s)  # a cancel here ends the watch: the worker stops

    async def check(self, now: datetime | None = None) -> None:
        now = now or now_utc()
        # Every worker asks every round: only the commands of the last day (an index), not every
        # case ever cleared. A command older than that which no worker looked at (all of them down
        # for a day) is not flagged late: its case has long moved on.
        since = now - timedelta(seconds=self._cfg.move_off_s) - LOOK_BACK
        async with self._sessions() as session:
            open_ids = (
                await session.scalars(
                    select(Case.id).where(
                        Case.clear_sent_at >= since,
                        Case.moved_off_at.is_(None),
                        Case.clear_overdue_at.is_(None),
                        # A kiosk stays where it is (the parties walk away from it): its case is
                        # never moved off nor overdue, and would be locked every round for ever.
                        Case.report["device_kind"].as_string() == "in-car",
                    )
                )
            ).all()
        for case_id in open_ids:
            async with self._sessions.begin() as session:
                changed = await self._check_case(session, case_id, now)
            if changed is not None:
                await self._case_changed(changed)

    async def _check_case(self, session: AsyncSession, case_id: int, now: datetime) -> dict[str, Any] | None:
        """The case's summary if it moved off or is flagged now, else None. Every worker's watch
        looks at the same cases: the case is locked before it is read again (on SQLite too, where
        the lock is the database's write lock), so the one that comes second sees the first's
        move-off or flag and logs nothing."""
        await lock_case(session, case_id)
        case = await session.get(Case, case_id)
        if case is None or case.clear_sent_at is None or case.moved_off_at or case.clear_overdue_at:
            return None
        device = await session.get(Device, case.device_id)
        moved = self._moved(case, device) if device is not None else None
        if moved is not None:
            at, metres = moved
            case.moved_off_at = at
            await append(session, case.id, SYSTEM, "road.moved_off", {"distance_m": round(metres)}, at)
            logger.info("case %d: the unit moved off %.0f m", case.id, metres)
            return case_summary(case)
        if now - case.clear_sent_at > timedelta(seconds=self._cfg.move_off_s):
            case.clear_overdue_at = now
            case.flag = f"not moved off within {self._cfg.move_off_s:g} s of the clear-the-road command"
            await append(session, case.id, SYSTEM, "road.not_moved_off", {"after_s": self._cfg.move_off_s}, now)
            logger.warning("case %d: the unit has not moved off", case.id)
            return case_summary(case)
        return None

    def _moved(self, case: Case, device: Device) -> tuple[datetime, float] | None:
        """When and how far, if the unit's last heartbeat after the command is far enough away."""
        if case.lat is None or case.lon is None or device.last_heartbeat is None:
            return None
        if device.last_heartbeat_at is None or case.clear_sent_at is None:
            return None
        if device.last_heartbeat_at < case.clear_sent_at:
            return None
        position = Heartbeat.model_validate(device.last_heartbeat).position
        if position is None or not position.trusted:
            return None
        metres = distance_m(case.lat, case.lon, position.lat, position.lon)
        return (device.last_heartbeat_at, metres) if metres >= self._cfg.move_off_m else None
