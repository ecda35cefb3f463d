"""Reference lists the console's pages show, served from their one Python source so that no page
keeps a copy: the vehicle types (GA 24.4 codes) a party's vehicle is chosen from, and the reasons
a case is escalated for."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import OperatorDep
from server.casework.escalation import reasons_json
from server.casework.licence_classes import VEHICLE_TYPES

router = APIRouter(tags=["reference"])


@router.get("/api/vehicle-types")
async def vehicle_types(operator: OperatorDep) -> list[dict[str, str]]:
    """Every vehicle type a party's vehicle may have: its code and its name."""
    return [{"code": code, "name": name} for code, (name, _) in VEHICLE_TYPES.items()]


@router.get("/api/escalation-reasons")
async def escalation_reasons(operator: OperatorDep) -> list[dict[str, str]]:
    """The regulation's exclusions from quick handling, and "other" (the dispatcher's words)."""
    return reasons_json()
