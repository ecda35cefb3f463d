"""Plates the case's unit read: the readings with their crops, a new reading on request, and the
dispatcher's confirmation or correction of each read.

Reading them is open to every operator who serves the case's unit; asking the unit and reviewing
a read are for dispatchers. ``read`` waits for the unit's answer (a full-resolution still and its
read take a second or two), up to ``ANSWER_WAIT_S``: the dispatcher asked and is looking at the
page, and an answer that comes later is stored all the same and shows on the next look.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from server.api.casework import actor
from server.api.deps import DispatcherDep, Operator, OperatorDep, StateDep
from server.api.state import ServerState
from server.db.models import Case
from server.plates import PlatesError

router = APIRouter(prefix="/api/cases/{case_id}/plates", tags=["plates"])

ANSWER_WAIT_S = 5.0


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=16, description="the plate as the dispatcher reads it in the crop")


async def case_of(state: ServerState, operator: Operator, case_id: int) -> Case:
    case = await state.cases.get(case_id)
    if case is None or not operator.sees(case.unit_adcode):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    return case


@router.get("")
async def readings(case_id: int, operator: OperatorDep, state: StateDep) -> dict[str, Any]:
    """The case's readings, newest first, each with its reads best first and their crops."""
    return {"readings": await state.plates.readings(await case_of(state, operator, case_id))}


@router.post("/read")
async def read(case_id: int, operator: DispatcherDep, state: StateDep) -> dict[str, Any]:
    """Ask the unit to read the plates in a full-resolution still now; the reading, when it answers in time."""
    case = await case_of(state, operator, case_id)
    device = await state.devices.get(case.device_id)
    if device is None or not device.online:
        raise HTTPException(status.HTTP_409_CONFLICT, "the unit is offline")
    try:
        return await state.plates.request(case, operator.id, ANSWER_WAIT_S)
    except PlatesError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.put("/reads/{read_id}")
async def review(
    case_id: int, read_id: int, body: ReviewBody, operator: DispatcherDep, state: StateDep, request: Request
) -> dict[str, Any]:
    """Confirm the read (its own text) or correct it; the read, its crop and the answer all stay."""
    case = await case_of(state, operator, case_id)
    try:
        return await state.plates.review(case, read_id, body.text, actor(operator, request))
    except PlatesError as exc:
        raise HTTPException(exc.status, str(exc)) from None
