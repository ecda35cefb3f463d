"""Figures for the console: each case's milestones (report -> answered -> evidence complete ->
cleared -> determined -> delivered), and per district and day the cases, eligible vs escalated,
and the median and 90th percentile handling time (report to the clear-the-road command, the
figure the Kunming pilot quoted: 5 minutes on average)."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.messages import utc_iso
from server.db.models import Call, Case, Determination

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MILESTONES = ("reported", "answered", "evidence_complete", "cleared", "determined", "delivered")


def milestones(case: Case, answered: datetime | None, determined: datetime | None) -> dict[str, Any]:
    """Each milestone's time and its seconds from the report; None where it has not happened."""
    at = {
        "reported": case.received_at,
        "answered": answered,
        "evidence_complete": case.handed_over_at or case.escalated_at,
        "cleared": case.clear_sent_at,
        "determined": determined,
        "delivered": case.delivered_at,
    }
    return {
        name: None
        if when is None
        else {"at": utc_iso(when), "after_s": round((when - case.received_at).total_seconds(), 1)}
        for name, when in at.items()
    }


def handling_s(case: Case) -> float | None:
    """Report to the road cleared (or, where it never was, to the evidence handed over)."""
    end = case.clear_sent_at or case.handed_over_at
    return None if end is None else (end - case.received_at).total_seconds()


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


class Dashboard:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def case_milestones(self, case_id: int) -> dict[str, Any]:
        async with self._sessions() as session:
            case = await session.get(Case, case_id)
            if case is None:
                return {}
            answered = await session.scalar(
                select(func.min(Call.live_at)).where(Call.case_id == case_id, Call.answered_by.is_not(None))
            )
            determined = await session.scalar(
                select(func.min(Determination.issued_at)).where(Determination.case_id == case_id)
            )
        return milestones(case, answered, determined)

    async def by_unit_and_day(self, units: frozenset[str] | None, days: int, now: datetime) -> list[dict[str, Any]]:
        since = (now.astimezone(LOCAL_TZ) - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        async with self._sessions() as session:
            query = select(Case).where(Case.received_at >= since)
            if units is not None:
                query = query.where(Case.unit_adcode.in_(sorted(units)))
            cases = (await session.scalars(query)).all()
        groups: dict[tuple[str, str], list[Case]] = {}
        for case in cases:
            day = case.received_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d")
            groups.setdefault((case.unit_adcode, day), []).append(case)
        rows = []
        for (adcode, day), group in sorted(groups.items()):
            handled = [s for s in (handling_s(c) for c in group) if s is not None]
            rows.append(
                {
                    "unit": {"adcode": adcode, "name": group[0].unit.name},
                    "day": day,
                    "cases": len(group),
                    "eligible": sum(1 for c in group if c.handed_over_at is not None),
                    "escalated": sum(1 for c in group if c.escalated_at is not None),
                    "handling_median_min": round(statistics.median(handled) / 60, 2) if handled else None,
                    "handling_p90_min": round(_p90(handled) / 60, 2) if handled else None,
                }
            )
        return rows
