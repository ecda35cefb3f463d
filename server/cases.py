"""Turning accepted reports into cases, exactly once per report id.

Reports are written in batches, one transaction and one fsync for every report that arrived while
the previous batch was committing (group commit); a report id already known, or committed by
another worker in the meantime, yields the existing case instead of a second one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.messages import Report, Trigger, utc_iso
from server.db.models import Case, CaseCounter, Device, Unit
from server.geo.fences import FenceSet
from server.routing import all_units, route

logger = logging.getLogger(__name__)

# Case numbers carry the local (Beijing time) date, as a dispatcher reads and says them.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Outcome:
    report: Report
    case: Case | None  # None for a test report: acknowledged, no case
    duplicate: bool


def case_summary(case: Case) -> dict[str, Any]:
    """What the dispatcher queue shows of a case; the WebSocket and the HTTP API send the same."""
    report = case.report
    summary: dict[str, Any] = {
        "id": case.id,
        "case_no": case.case_no,
        "status": case.status,
        "unit": {"adcode": case.unit_adcode, "name": case.unit.name},
        "flag": case.flag,
        "trigger": case.trigger,
        "device_id": case.device_id,
        "device_kind": report["device_kind"],
        "triggered_at": utc_iso(case.triggered_at),
        "received_at": utc_iso(case.received_at),
        "position": None
        if case.lat is None
        else {
            "lat": case.lat,
            "lon": case.lon,
            "lat_gcj02": case.lat_gcj02,
            "lon_gcj02": case.lon_gcj02,
            "source": case.position_source,
            "trusted": bool(report.get("position", {}).get("trusted", case.position_source == "site")),
        },
        "vehicle": report.get("vehicle"),
        "site": report.get("site"),
        "health": report["health"],
    }
    return summary


class CaseStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], fences: FenceSet) -> None:
        self.sessions = sessions
        self._fences = fences

    async def ensure_units(self) -> None:
        """One unit per fence plus the city command centre; names follow the shipped boundaries."""
        async with self.sessions.begin() as session:
            for adcode, name in all_units(self._fences):
                unit = await session.get(Unit, adcode)
                if unit is None:
                    session.add(Unit(adcode=adcode, name=name))
                elif unit.name != name:
                    unit.name = name

    async def open_cases(self, reports: list[Report], received_at: datetime) -> list[Outcome]:
        try:
            return await self._open_batch(reports, received_at)
        except IntegrityError:
            # Another worker committed one of these report ids first: go one by one so that each
            # report either inserts or finds the winner's case.
            logger.info("case batch of %d conflicted; retrying one by one", len(reports))
            outcomes: list[Outcome] = []
            for report in reports:
                try:
                    outcomes.extend(await self._open_batch([report], received_at))
                except IntegrityError:
                    outcomes.extend(await self._open_batch([report], received_at))
            return outcomes

    async def _open_batch(self, reports: list[Report], received_at: datetime) -> list[Outcome]:
        outcomes: list[Outcome] = []
        async with self.sessions.begin() as session:
            ids = [r.report_id for r in reports if r.trigger is not Trigger.TEST]
            existing = {
                c.report_id: c for c in (await session.scalars(select(Case).where(Case.report_id.in_(ids)))).all()
            }
            for report in reports:
                await self._touch_device(session, report, received_at)
                if report.trigger is Trigger.TEST:
                    outcomes.append(Outcome(report, None, duplicate=False))
                    continue
                case = existing.get(report.report_id)
                if case is not None:
                    outcomes.append(Outcome(report, case, duplicate=True))
                    continue
                case = await self._new_case(session, report, received_at)
                existing[report.report_id] = case
                outcomes.append(Outcome(report, case, duplicate=False))
        return outcomes

    async def _touch_device(self, session: AsyncSession, report: Report, now: datetime) -> None:
        device = await session.get(Device, report.device_id)
        if device is None:
            session.add(
                Device(
                    id=report.device_id,
                    kind=report.device_kind.value,
                    first_seen=now,
                    last_seen=now,
                    online=True,
                    firmware=report.health.firmware,
                )
            )
        else:
            device.last_seen = now
            device.firmware = report.health.firmware

    async def _new_case(self, session: AsyncSession, report: Report, received_at: datetime) -> Case:
        routing = route(report, self._fences)
        case_no = await self._next_case_no(session, routing.unit_adcode, report.triggered_at)
        case = Case(
            case_no=case_no,
            report_id=report.report_id,
            device_id=report.device_id,
            unit_adcode=routing.unit_adcode,
            status="new",
            flag=routing.flag,
            trigger=report.trigger.value,
            triggered_at=report.triggered_at,
            received_at=received_at,
            lat=routing.lat,
            lon=routing.lon,
            lat_gcj02=routing.lat_gcj02,
            lon_gcj02=routing.lon_gcj02,
            position_source=routing.source,
            report=report.model_dump(mode="json", exclude_none=True),
        )
        session.add(case)
        await session.flush()
        await session.refresh(case, ["unit"])
        return case

    async def _next_case_no(self, session: AsyncSession, adcode: str, when: datetime) -> str:
        """``{adcode}{yyyymmdd}{nnnn}``: atomic per unit and day, also across workers on PostgreSQL."""
        day = when.astimezone(LOCAL_TZ).strftime("%Y%m%d")
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(CaseCounter)
            .values(unit_adcode=adcode, day=day, last=1)
            .on_conflict_do_update(index_elements=["unit_adcode", "day"], set_={"last": CaseCounter.last + 1})
            .returning(CaseCounter.last)
        )
        seq = (await session.execute(stmt)).scalar_one()
        return f"{adcode}{day}{seq:04d}"

    async def get(self, case_id: int) -> Case | None:
        async with self.sessions() as session:
            return await session.get(Case, case_id)

    async def list_for_units(self, adcodes: list[str] | None, limit: int = 200) -> list[Case]:
        """Newest first; ``None`` means every unit (admins)."""
        async with self.sessions() as session:
            query = select(Case).order_by(Case.received_at.desc(), Case.id.desc()).limit(limit)
            if adcodes is not None:
                query = query.where(Case.unit_adcode.in_(adcodes))
            return list((await session.scalars(query)).all())


def now_utc() -> datetime:
    return datetime.now(UTC)
