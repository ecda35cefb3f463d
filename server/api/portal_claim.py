"""A party's one-key claim (一键理赔) from their phone: may I, to which insurer, and the claim itself.
Only the party's own session (``kc_party``) gets here, and only for their own case."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel

from server.api.deps import StateDep
from server.api.portal import VisitorDep

router = APIRouter(prefix="/api/portal", tags=["parties"])


class ClaimRequest(BaseModel):
    preferred_contact: Literal["any", "morning", "afternoon", "evening"] = "any"


@router.get("/claim")
async def standing(visitor: VisitorDep, state: StateDep) -> dict[str, Any]:
    """``can_claim``, ``reason`` in plain Chinese when not, ``insurer`` (its short name), how many
    ``photos`` of the party's would go with it, the ``contact_times`` offered, and the ``claim``."""
    return await state.claims.for_party(visitor)


@router.post("/claim", status_code=status.HTTP_201_CREATED)
async def request_claim(body: ClaimRequest, visitor: VisitorDep, state: StateDep) -> dict[str, Any]:
    """Send the claim to the party's insurer (a ``claim.requested`` event); pressing again answers
    the claim already made."""
    return await state.claims.request(visitor, body.preferred_contact)
