"""Plates the case's unit read: the readings with their crops, a new reading on request, and the
dispatcher's confirmation or correction of each read.

Reading them is open to every operator who serves the case's unit; asking the unit and reviewing
a read are for dispatchers. ``read`` waits for the unit's answer (a full-resolution still and its
read take a second or two), up to ``ANSWER_WAIT_S``: the dispatcher asked and is looking at the
page, and an answer that comes later is stored all the same and shows on the next look.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from server.api.deps import ActorDep, CaseDep, DispatcherDep, RowId, StateDep
from server.errors import Conflict

router = APIRouter(prefix="/api/cases/{case_id}/plates", tags=["plates"])

ANSWER_WAIT_S = 5.0


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=16, description="the plate as the dispatcher reads it in the crop")


@router.get("")
async def readings(case: CaseDep, state: StateDep) -> dict[str, Any]:
    """The case's readings, newest first, each with its reads best first and their crops."""
    return {"readings": await state.plates.readings(case)}


@router.post("/read")
async def read(operator: DispatcherDep, case: CaseDep, state: StateDep) -> dict[str, Any]:
    """Ask the unit to read the plates in a full-resolution still now; the reading, when it answers in time."""
    if case.device_id is None:
        raise Conflict("这起事故是手机报警的，没有车载设备识别车牌，请截图后手动录入号牌 (no unit)")
    device = await state.devices.get(case.device_id)
    if device is None or not device.online:
        raise Conflict("设备离线，无法识别车牌 (the unit is offline)")
    return await state.plates.request(case, operator.id, ANSWER_WAIT_S)


@router.put("/reads/{read_id}")
async def review(
    read_id: RowId, body: ReviewBody, operator: DispatcherDep, case: CaseDep, actor: ActorDep, state: StateDep
) -> dict[str, Any]:
    """Confirm the read (its own text) or correct it; the read, its crop and the answer all stay."""
    return await state.plates.review(case, read_id, body.text, actor)
