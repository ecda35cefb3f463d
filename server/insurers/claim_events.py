"""A case as an insurer is shown it (``GET /api/insurers/v1/cases/{case_no}``), and a party's
one-key claim as the ``claim.requested`` event, both built by the webhook events' own code
(``server.insurers.events``) so that the API, the determination's events and the claim's carry
one ``data``: the claim's event is that data plus a ``claim`` object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.casework.parties import POSITIONS
from server.db.insurers import Claim
from server.db.models import Case, Determination, Evidence, Party
from server.insurers import events

CLAIM_REQUESTED = "claim.requested"


async def case_data(session: AsyncSession, case: Case, code: str) -> dict[str, Any] | None:
    """The current determination's ``data`` for insurer ``code``; None before a determination or
    when no party of the case is insured with it."""
    determination = await session.scalar(
        select(Determination).where(Determination.case_id == case.id).order_by(Determination.version.desc()).limit(1)
    )
    if determination is None:
        return None
    return (await events.event_data(session, case, determination, None)).get(code)


class OutboxClaimEvents:
    """``claim.requested`` into the webhook outbox, in the transaction that makes the claim."""

    async def claim_requested(self, session: AsyncSession, claim: Claim, now: datetime) -> None:
        case = await session.get(Case, claim.case_id)
        party = await session.get(Party, claim.party_id)
        determination = await session.get(Determination, claim.determination_id)
        assert case is not None and party is not None and determination is not None
        data = await case_data(session, case, claim.insurer_code)
        assert data is not None  # the claim's insurer was found from this party's policy
        photos = await session.scalars(
            select(Evidence).where(Evidence.party_id == party.id, Evidence.kind != "review").order_by(Evidence.id)
        )
        data["claim"] = {
            "claim_id": claim.id,
            "status": claim.status,
            "requested_at": events.local_time(claim.requested_at),
            "position": POSITIONS[party.position - 1],
            "phone": party.phone,
            "vehicle": {"plate": party.plate, "vehicle_type": party.vehicle_type, "policy_no": party.policy_no},
            "preferred_contact": claim.preferred_contact,
            # The party's own photos by SHA-256: each is in ``evidence`` with its signed link.
            "photos": [e.sha256 for e in photos],
        }
        key = f"{CLAIM_REQUESTED}:{claim.insurer_code}:{claim.id}"
        await events.write_event(session, key, claim.insurer_code, case, determination, CLAIM_REQUESTED, data, now)
