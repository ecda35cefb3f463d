"""An admin tells a group of units to look for a signed release now (``update.check`` on each
unit's cmd topic): a share of the fleet, the units in one district, or a list. What each unit then
did shows in its health on the fleet page (docs/updates.md).

A share picks units by a hash of their id, so the same units are in every share of that size and a
larger share adds units to a smaller one: 10 % then 50 % reaches the first 10 % again, not others.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Self

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocol.messages import Command
from protocol.messages.base import DeviceId
from server.api.deps import AdminDep, StateDep
from server.db.models import Device, DeviceStatus
from server.errors import Conflict
from server.geo.fences import FenceSet

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/updates", tags=["updates"])


class Announcement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    percent: float | None = Field(default=None, gt=0, le=100, description="this share of the units not retired")
    district: str | None = Field(default=None, pattern=r"^\d{6}$", description="the units in this district (adcode)")
    devices: list[DeviceId] | None = Field(default=None, min_length=1, max_length=10_000, description="these units")

    @model_validator(mode="after")
    def _one_group(self) -> Self:
        if sum(v is not None for v in (self.percent, self.district, self.devices)) != 1:
            raise ValueError("give exactly one of percent, district, devices")
        return self


def in_share(device_id: str, percent: float) -> bool:
    """Stable per unit: its place in [0, 100) by a hash of its id."""
    place = int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:8], "big") / 2**64 * 100
    return place < percent


def district_of(device: Device, fences: FenceSet) -> str | None:
    """A kiosk's surveyed site, else the last heartbeat's fix, in the district fences (WGS-84)."""
    where = device.site or (device.last_heartbeat or {}).get("position")
    if not where:
        return None
    fence = fences.locate(where["lon"], where["lat"], "WGS-84")
    return fence.adcode if fence is not None else None


@router.post("/announce")
async def announce(body: Announcement, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    """``update.check`` to each unit of the group: which were told, which the broker did not take."""
    active = [d for d in await state.devices.list() if d.status != DeviceStatus.RETIRED]
    if body.devices is not None:
        wanted = set(body.devices)
        group = [d for d in active if d.id in wanted]
        unknown = sorted(wanted - {d.id for d in group})
        if unknown:
            raise Conflict(f"没有这些设备（或已退役）：{', '.join(unknown)} (no such units, or retired)")
    elif body.district is not None:
        group = [d for d in active if district_of(d, state.cases.fences) == body.district]
    else:
        assert body.percent is not None
        group = [d for d in active if in_share(d.id, body.percent)]
    told: list[str] = []
    not_taken: list[str] = []
    for device in group:
        (told if await state.outbound.command(device.id, Command(type="update.check")) else not_taken).append(device.id)
    logger.info("update.check to %d units (%d not taken by the broker)", len(told), len(not_taken))
    return {"told": sorted(told), "not_taken": sorted(not_taken)}
