"""The fleet page's map: the districts' outlines from the server's own geofences (``server.geo.outline``),
computed once per worker and served to admins."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter

from server.api.deps import AdminDep, StateDep
from server.geo.fences import FenceSet
from server.geo.outline import district_map

router = APIRouter(prefix="/api/fleet", tags=["fleet"])


@cache
def _map_of(fences: FenceSet) -> dict[str, Any]:
    return district_map(fences)


@router.get("/map")
async def fleet_map(admin: AdminDep, state: StateDep) -> dict[str, Any]:
    return _map_of(state.cases.fences)
