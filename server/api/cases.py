"""The dispatcher queue over HTTP: cases of the units the operator serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from server.api.deps import CaseDep, OperatorDep, StateDep
from server.cases import case_summary, now_utc
from server.casework.dashboard import Dashboard
from server.db.models import Unit
from server.errors import Forbidden

router = APIRouter(prefix="/api", tags=["cases"])


@router.get("/units")
async def units(operator: OperatorDep, state: StateDep) -> list[dict[str, str]]:
    async with state.cases.sessions() as session:
        rows = (await session.scalars(select(Unit).order_by(Unit.adcode))).all()
    return [{"adcode": u.adcode, "name": u.name} for u in rows if operator.sees(u.adcode)]


@router.get("/cases")
async def list_cases(
    operator: OperatorDep,
    state: StateDep,
    unit: str | None = Query(default=None, pattern=r"^\d{6}$"),
    limit: int = Query(default=200, ge=1, le=1000),
    case_status: str | None = Query(default=None, alias="status", pattern=r"^[a-z_]{1,16}$"),
) -> list[dict[str, Any]]:
    visible = operator.visible_units
    if unit is not None:
        if not operator.sees(unit):
            raise Forbidden("您不负责该单位，请选择您所在的单位 (you do not serve this unit)")
        wanted: list[str] | None = [unit]
    else:
        wanted = sorted(visible) if visible is not None else None
    return [case_summary(c) for c in await state.cases.list_for_units(wanted, limit, case_status)]


@router.get("/dashboard")
async def dashboard(
    operator: OperatorDep, state: StateDep, days: int = Query(default=14, ge=1, le=90)
) -> list[dict[str, Any]]:
    """Per district (of the units the operator serves) and local day: cases, eligible vs
    escalated, median and 90th-percentile handling time in minutes."""
    return await Dashboard(state.cases.sessions).by_unit_and_day(operator.visible_units, days, now_utc())


@router.get("/cases/{case_id}/milestones")
async def milestones(case: CaseDep, state: StateDep) -> dict[str, Any]:
    """Report -> answered -> evidence complete -> cleared -> determined -> delivered."""
    return await Dashboard(state.cases.sessions).case_milestones(case.id)


@router.get("/cases/{case_id}")
async def get_case(case: CaseDep) -> dict[str, Any]:
    return case_summary(case)
