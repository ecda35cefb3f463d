"""Turning accepted reports into cases, exactly once per report id.

Reports are written in batches, one transaction and one fsync for every report that arrived while
the previous batch was committing (group commit); a report id already known, or committed by
another worker in the meantime, yields the existing case instead of a second one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.messages import Report, Trigger, utc_iso
from server.casework.events import GENESIS, device_actor, event_row, first_events, phone_actor
from server.db.models import Case, CaseCounter, Device, DeviceStatus, Unit
from server.errors import Conflict, NoSuchCase
from server.geo.fences import FenceSet
from server.lifecycles.case import CASE, CaseAction
from server.routing import Routing, all_units, route

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Case numbers carry the local (Beijing time) date, as a dispatcher reads and says them.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

# The case writer's statements, built once: it runs them for every batch.
_DEVICES, _CASES = cast(Table, Device.__table__), cast(Table, Case.__table__)
_FIND_DEVICES = select(_DEVICES.c.id, _DEVICES.c.status).where(_DEVICES.c.id.in_(bindparam("ids", expanding=True)))
_SEE_DEVICE = (
    update(_DEVICES)
    .where(_DEVICES.c.id == bindparam("device_id"))
    .values(last_seen=bindparam("seen"), firmware=bindparam("fw"))
)
_ADD_DEVICES = insert(_DEVICES)
_FIND_CASES = select(_CASES).where(_CASES.c.report_id.in_(bindparam("ids", expanding=True)))
_ADD_CASES = insert(_CASES).returning(_CASES.c.id, sort_by_parameter_order=True)


@dataclass(frozen=True)
class Outcome:
    report: Report
    case: Case | None  # None for a test report (acknowledged, no case) and for a refusal
    duplicate: bool
    refusal: str | None = None  # why no case was opened for a real report (a retired device)


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
        "reporter_phone": case.reporter_phone,  # a phone's report (手机报警): no unit
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
        "health": report.get("health"),
    }
    return summary


class CaseStore:
    """Cases: read through the async sessions, written by one thread with its own connection.

    The writer is synchronous on purpose: a batch is a handful of statements, and running them
    back to back on one thread costs a fraction of a millisecond each, where the async driver pays
    a thread hop for every cursor call. Intake is the only writer of new cases, one batch at a time.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], writer: Engine, fences: FenceSet) -> None:
        self.sessions = sessions
        self._writer = writer
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="case-writer")
        self._fences = fences
        self._units: dict[str, Unit] = {}  # by adcode; they change only with the shipped fences

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def ensure_units(self) -> None:
        """One unit per fence plus the city command centre; names follow the shipped boundaries."""
        async with self.sessions.begin() as session:
            for adcode, name in all_units(self._fences):
                unit = await session.get(Unit, adcode)
                if unit is None:
                    unit = Unit(adcode=adcode, name=name)
                    session.add(unit)
                elif unit.name != name:
                    unit.name = name
                self._units[adcode] = unit

    async def open_cases(self, reports: list[Report], received_at: datetime) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._open_cases, reports, received_at)

    def _open_cases(self, reports: list[Report], received_at: datetime) -> list[Outcome]:
        try:
            return self._open_batch(reports, received_at)
        except IntegrityError:
            # Another worker committed one of these report ids first: go one by one so that each
            # report either inserts or finds the winner's case.
            logger.info("case batch of %d conflicted; retrying one by one", len(reports))
            outcomes: list[Outcome] = []
            for report in reports:
                try:
                    outcomes.extend(self._open_batch([report], received_at))
                except IntegrityError:
                    outcomes.extend(self._open_batch([report], received_at))
            return outcomes

    def _open_batch(self, reports: list[Report], received_at: datetime) -> list[Outcome]:
        """A handful of statements for the whole batch, whatever its size: this is the hot path.

        They are SQLAlchemy Core statements built once, not ORM sessions, whose bookkeeping cost
        several times the SQL itself; the cases handed back are built from the rows written.
        """
        with self._writer.begin() as conn:
            retired = self._touch_devices(conn, reports, received_at)
            real = [r for r in reports if r.trigger is not Trigger.TEST and r.device_id not in retired]
            known = {
                row["report_id"]: self._case(dict(row))
                for row in conn.execute(_FIND_CASES, {"ids": [r.report_id for r in real]}).mappings()
            }
            fresh: dict[str, tuple[Report, Routing]] = {}
            for report in real:
                if report.report_id not in known:
                    fresh.setdefault(report.report_id, (report, route(report, self._fences)))
            numbers = allocate_numbers(conn, [(r.report_id, r.triggered_at, t.unit_adcode) for r, t in fresh.values()])
            rows = [
                self._case_row(report, routing, numbers[report_id], received_at)
                for report_id, (report, routing) in fresh.items()
            ]
            created: dict[str, Case] = {}
            if rows:
                # One multi-row INSERT ... RETURNING, the ids in the order of the rows.
                for row, case_id in zip(rows, conn.execute(_ADD_CASES, rows).scalars(), strict=True):
                    created[row["report_id"]] = self._case({"id": case_id, **row})
                first_events(conn, [opened_event(case, received_at) for case in created.values()])
        outcomes: list[Outcome] = []
        for report in reports:
            if report.device_id in retired:
                outcomes.append(Outcome(report, None, duplicate=False, refusal="device_retired"))
            elif report.trigger is Trigger.TEST:
                outcomes.append(Outcome(report, None, duplicate=False))
            elif report.report_id in known:
                outcomes.append(Outcome(report, known[report.report_id], duplicate=True))
            else:
                case = created[report.report_id]
                # A report id twice in one batch: the first opens the case, the second is its retry.
                first = fresh.pop(report.report_id, None) is not None
                outcomes.append(Outcome(report, case, duplicate=not first))
        return outcomes

    def _case(self, row: Mapping[str, Any]) -> Case:
        """A case as written, with its unit, for the answers and events of this batch."""
        return Case(unit=self._units[row["unit_adcode"]], **row)

    @staticmethod
    def _touch_devices(conn: Connection, reports: list[Report], now: datetime) -> set[str]:
        """Mark the senders as seen, creating the ones not registered yet; returns the retired ones."""
        latest = {r.device_id: r for r in reports}
        found: dict[str, str] = {
            device_id: status for device_id, status in conn.execute(_FIND_DEVICES, {"ids": list(latest)})
        }
        retired = {device_id for device_id, status in found.items() if status == DeviceStatus.RETIRED}
        seen = [
            {"device_id": device_id, "seen": now, "fw": latest[device_id].health.firmware}
            for device_id in found.keys() - retired
        ]
        if seen:
            conn.execute(_SEE_DEVICE, seen)
        new = [
            {
                "id": device_id,
                "kind": report.device_kind.value,
                "status": DeviceStatus.UNREGISTERED.value,
                "first_seen": now,
                "last_seen": now,
                "online": True,
                "state_since": now,
                "firmware": report.health.firmware,
            }
            for device_id, report in latest.items()
            if device_id not in found
        ]
        if new:
            conn.execute(_ADD_DEVICES, new)
        return retired

    @staticmethod
    def _case_row(report: Report, routing: Routing, case_no: str, received_at: datetime) -> dict[str, Any]:
        return {
            "case_no": case_no,
            "report_id": report.report_id,
            "device_id": report.device_id,
            "unit_adcode": routing.unit_adcode,
            "status": CASE.initial,
            "flag": routing.flag,
            "trigger": report.trigger.value,
            "triggered_at": report.triggered_at,
            "received_at": received_at,
            "lat": routing.lat,
            "lon": routing.lon,
            "lat_gcj02": routing.lat_gcj02,
            "lon_gcj02": routing.lon_gcj02,
            "position_source": routing.source,
            "report": report.model_dump(mode="json", exclude_none=True),
        }

    @property
    def fences(self) -> FenceSet:
        return self._fences

    def unit(self, adcode: str) -> Unit:
        return self._units[adcode]

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Another way a case opens (a phone's report, server/phones/) written by the case writer's
        thread in a transaction of its own, so it never races the intake's batches."""

        def run() -> T:
            with self._writer.begin() as conn:
                return work(conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def get(self, case_id: int) -> Case | None:
        async with self.sessions() as session:
            return await session.get(Case, case_id)

    async def list_for_units(
        self, adcodes: list[str] | None, limit: int = 200, status: str | None = None
    ) -> list[Case]:
        """Newest first; ``None`` means every unit (admins); ``status`` picks one stage (the officers'
        queue is ``handed_over``)."""
        async with self.sessions() as session:
            query = select(Case).order_by(Case.received_at.desc(), Case.id.desc()).limit(limit)
            if adcodes is not None:
                query = query.where(Case.unit_adcode.in_(adcodes))
            if status is not None:
                query = query.where(Case.status == status)
            return list((await session.scalars(query)).all())


def allocate_numbers(conn: Connection, fresh: list[tuple[str, datetime, str]]) -> dict[str, str]:
    """``{adcode}{yyyymmdd}{nnnn}`` per new case (report id, triggered at, unit), in report order
    within each unit and local day.

    One upsert per unit and day reserves a whole run of numbers; it is atomic on SQLite and on
    PostgreSQL, so workers sharing a database never hand out the same number.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for report_id, triggered_at, unit_adcode in fresh:
        day = triggered_at.astimezone(LOCAL_TZ).strftime("%Y%m%d")
        groups.setdefault((unit_adcode, day), []).append(report_id)
    upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    numbers: dict[str, str] = {}
    for (adcode, day), report_ids in sorted(groups.items()):
        count = len(report_ids)
        stmt = (
            upsert(CaseCounter)
            .values(unit_adcode=adcode, day=day, last=count)
            .on_conflict_do_update(index_elements=["unit_adcode", "day"], set_={"last": CaseCounter.last + count})
            .returning(CaseCounter.last)
        )
        last = conn.execute(stmt).scalar_one()
        for offset, report_id in enumerate(sorted(report_ids)):
            numbers[report_id] = f"{adcode}{day}{last - count + offset + 1:04d}"
    return numbers


def opened_event(case: Case, at: datetime) -> dict[str, Any]:
    """The first link of a case's event log: the report as the device (or phone) sent it, by its hash."""
    report = json.dumps(case.report, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    detail = {
        "case_no": case.case_no,
        "report_id": case.report_id,
        "unit": case.unit_adcode,
        "report_sha256": hashlib.sha256(report.encode()).hexdigest(),
    }
    actor = device_actor(case.device_id) if case.device_id is not None else phone_actor(case.reporter_phone or "")
    return event_row(case.id, 1, GENESIS, at, actor, "case.opened", detail)


def now_utc() -> datetime:
    return datetime.now(UTC)


async def case_for_work(session: AsyncSession, case_id: int) -> Case:
    """The case, locked for the caller's transaction, while its evidence may still change (the case
    lifecycle's ``work``): once handed over, decided or delivered, what the officer decided on and
    the parties received stays as it was, so every edit is refused with why."""
    case = await session.scalar(select(Case).where(Case.id == case_id).with_for_update(of=Case))
    if case is None:
        raise NoSuchCase()
    if not CASE.allows(case.status, CaseAction.WORK):
        raise Conflict(
            f"案件已不在接警阶段，不能再修改 (the case is {case.status.replace('_', ' ')}; its evidence is closed)"
        )
    return case
