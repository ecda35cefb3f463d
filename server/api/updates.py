"""An admin tells a group of units to look for a signed release now (``update.check`` on each
unit's cmd topic), or rolls a release (firmware or plate models) out to a group a batch at a time
(``/rollouts``, kept by ``server/rollouts.py``): a share of the fleet, the units in one district,
or a list. What each unit then did shows on the fleet page (docs/updates.md).

A share picks units by a hash of their id, so the same units are in every share of that size and a
larger share adds units to a smaller one: 10 % then 50 % reaches the first 10 % again, not others.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Self

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from protocol.messages import Command, ReleaseKind, ReleaseVersion
from protocol.messages.base import DeviceId
from server.api.deps import AdminDep, StateDep
from server.api.state import ServerState
from server.db.models import Device, DeviceStatus
from server.errors import Conflict
from server.outbound import command_each
from server.rollouts import district_of, in_share, published

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
            raise PydanticCustomError(
                "one_group",
                "请只选一种范围：按比例、按区县或按设备编号 (give exactly one of a share, a district, a list of units)",
                {"fields": ["percent", "district", "devices"]},
            )
        return self


class RolloutRequest(Announcement):
    release: ReleaseVersion = Field(description="the signed, published release to offer")
    kind: ReleaseKind = Field(default="firmware", description="firmware, or plate models (released apart)")
    max_rollback_pct: float = Field(
        default=20, ge=0, le=100, description="pause when more of the finished units roll back than this share"
    )
    batch: int = Field(default=10, ge=1, le=10_000, description="units under way at once")


async def _group(body: Announcement, state: ServerState) -> list[Device]:
    """The units not retired in the body's share, district or list; unknown ids refuse the request."""
    active = [d for d in await state.devices.list() if d.status != DeviceStatus.RETIRED]
    if body.devices is not None:
        wanted = set(body.devices)
        group = [d for d in active if d.id in wanted]
        unknown = sorted(wanted - {d.id for d in group})
        if unknown:
            raise Conflict(f"没有这些设备（或已退役）：{', '.join(unknown)} (no such units, or retired)")
        return group
    if body.district is not None:
        return [d for d in active if district_of(d, state.cases.fences) == body.district]
    assert body.percent is not None
    return [d for d in active if in_share(d.id, body.percent)]


@router.post("/announce")
async def announce(body: Announcement, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    """``update.check`` to each unit of the group: which were told, which the broker did not take.
    Each looks now, and takes only what a rollout offered it."""
    group = [d.id for d in await _group(body, state)]
    not_taken = await command_each(state.outbound, group, Command(type="update.check"))
    told = set(group) - set(not_taken)
    logger.info("update.check to %d units (%d not taken by the broker)", len(told), len(not_taken))
    return {"told": sorted(told), "not_taken": sorted(not_taken)}


@router.post("/rollouts")
async def start_rollout(body: RolloutRequest, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    """A rollout of a published release to the group; its first batch is told at once."""
    problem = await asyncio.to_thread(published, state.cfg.updates.repository, body.kind, body.release)
    if problem is not None:
        raise Conflict(problem)
    group = await _group(body, state)
    if body.devices is not None:
        kind, value = "devices", f"{len(body.devices)}"
    elif body.district is not None:
        kind, value = "district", body.district
    else:
        kind, value = "percent", f"{body.percent:g}"
    return await state.rollouts.create(
        body.kind, body.release, (kind, value), [d.id for d in group], body.max_rollback_pct, body.batch, admin.username
    )


@router.get("/rollouts")
async def rollouts(admin: AdminDep, state: StateDep) -> dict[str, Any]:
    """The latest rollouts, each with its counts and every unit's step, for the fleet page."""
    return {"rollouts": await state.rollouts.latest()}


@router.post("/rollouts/{rollout_id}/resume")
async def resume_rollout(rollout_id: int, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    return await state.rollouts.resume(rollout_id)


@router.post("/rollouts/{rollout_id}/cancel")
async def cancel_rollout(rollout_id: int, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    return await state.rollouts.cancel(rollout_id)
