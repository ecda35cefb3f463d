"""Reviews (复核) at the console: the issuing unit's officers forward them, the reviewers of the unit
above accept them or not and conclude them. Each operator sees the reviews of the units they serve;
a role's moves are refused to the others (403) before anything about the review is said.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from server.api.deps import OfficerDep, Operator, OperatorDep, ReviewerDep, RowId, StateDep, actor
from server.errors import Forbidden
from server.portal.review_desk import Staff
from server.users import Role

router = APIRouter(prefix="/api/reviews", tags=["reviews"])


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    accept: bool
    reason: str = Field(min_length=2, max_length=1000, description="told to every party")


class Conclusion(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: Literal["upheld", "redetermine"]
    text: str = Field(min_length=2, max_length=2000, description="the conclusion, told to every party")


def staff(operator: Operator, request: Request) -> Staff:
    if operator.role is Role.DISPATCHER:
        raise Forbidden("复核由民警和复核民警办理 (reviews are for officers and reviewers)")
    return Staff(operator.role, operator.visible_units, actor(operator, request))


@router.get("")
async def reviews(operator: OperatorDep, request: Request, state: StateDep) -> list[dict[str, Any]]:
    """The reviews of the operator's units, those waiting for them first: each with ``due`` (the
    current stage's deadline), ``overdue``, ``owner`` (officer / reviewer) and the ``actions`` they may take."""
    return await state.review_desk.listing(staff(operator, request))


@router.get("/{review_id}")
async def review(review_id: RowId, operator: OperatorDep, request: Request, state: StateDep) -> dict[str, Any]:
    """One review with what the applicants wrote, their evidence and links to the case file."""
    return await state.review_desk.detail(review_id, staff(operator, request))


@router.post("/{review_id}/forward")
async def forward(review_id: RowId, operator: OfficerDep, request: Request, state: StateDep) -> dict[str, Any]:
    return await state.review_desk.forward(review_id, staff(operator, request))


@router.post("/{review_id}/decision")
async def decide(
    review_id: RowId, body: Decision, operator: ReviewerDep, request: Request, state: StateDep
) -> dict[str, Any]:
    return await state.review_desk.decide(review_id, staff(operator, request), body.accept, body.reason)


@router.post("/{review_id}/conclusion")
async def conclude(
    review_id: RowId, body: Conclusion, operator: ReviewerDep, request: Request, state: StateDep
) -> dict[str, Any]:
    return await state.review_desk.conclude(review_id, staff(operator, request), body.outcome == "upheld", body.text)
