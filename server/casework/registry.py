"""Where driver, vehicle and insurance records come from.

The checks ask a ``Registry``; the default one is tables in our own database that
``kuaichu registry import`` fills. A connector to the traffic-management or insurance platforms
would implement the same three lookups, raising ``RegistryUnavailable`` when it cannot answer, so
that a check says "unknown" instead of a wrong "fail".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import RegistryLicence, RegistryPolicy, RegistryVehicle


class RegistryUnavailable(Exception):
    """The registry could not answer; the check's result is unknown, not failed."""


@dataclass(frozen=True)
class LicenceRecord:
    licence_no: str
    id_number: str
    name: str
    classes: str
    valid_from: date
    valid_until: date
    status: str


@dataclass(frozen=True)
class VehicleRecord:
    plate: str
    vin: str
    vehicle_type: str
    automatic: bool
    owner_name: str
    registered_on: date
    inspection_until: date
    status: str


@dataclass(frozen=True)
class PolicyRecord:
    policy_no: str
    insurer: str
    plate: str
    starts_at: datetime
    ends_at: datetime


def record_json(record: LicenceRecord | VehicleRecord | PolicyRecord) -> dict[str, Any]:
    """As kept with a check; names and ID numbers are masked there (the party row has them)."""
    out: dict[str, Any] = {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(record).items()}
    for key in ("name", "owner_name"):
        if key in out:
            out[key] = out[key][:1] + "*" * (len(out[key]) - 1)
    if "id_number" in out:
        out["id_number"] = out["id_number"][:6] + "********" + out["id_number"][-4:]
    return out


class Registry(Protocol):
    async def licence(self, licence_no: str) -> LicenceRecord | None: ...

    async def vehicle(self, plate: str) -> VehicleRecord | None: ...

    async def policies(self, plate: str) -> list[PolicyRecord]: ...


class TableRegistry:
    """The registry as tables in the case database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def licence(self, licence_no: str) -> LicenceRecord | None:
        row = await self._get(RegistryLicence, licence_no)
        if row is None:
            return None
        return LicenceRecord(
            row.licence_no, row.id_number, row.name, row.classes, row.valid_from, row.valid_until, row.status
        )

    async def vehicle(self, plate: str) -> VehicleRecord | None:
        row = await self._get(RegistryVehicle, plate)
        if row is None:
            return None
        return VehicleRecord(
            row.plate,
            row.vin,
            row.vehicle_type,
            row.automatic,
            row.owner_name,
            row.registered_on,
            row.inspection_until,
            row.status,
        )

    async def policies(self, plate: str) -> list[PolicyRecord]:
        try:
            async with self._sessions() as session:
                rows = (await session.scalars(select(RegistryPolicy).where(RegistryPolicy.plate == plate))).all()
        except SQLAlchemyError as exc:
            raise RegistryUnavailable(str(exc)) from exc
        return [PolicyRecord(r.policy_no, r.insurer, r.plate, r.starts_at, r.ends_at) for r in rows]

    async def _get(self, table: Any, key: str) -> Any:
        try:
            async with self._sessions() as session:
                return await session.get(table, key)
        except SQLAlchemyError as exc:
            raise RegistryUnavailable(str(exc)) from exc
