"""What a one-key claim (一键理赔) says to the party, on their progress and by SMS, and to the
insurer in the API. Pure: built from the claim and its updates, so the phone, the SMS and the
insurer's list tell one story.

The SMS masks the adjuster (王*, 138****0000) as the portal masks another person: a message can be
read off a locked phone's screen. The party's page, behind their code, shows the adjuster in full,
so that they can call back.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from server.casework.parties import POSITIONS
from server.db.insurers import Claim, ClaimUpdate
from server.db.models import Party
from server.lifecycles.claim import CLAIM, ClaimStatus
from server.portal.masking import mask_name, mask_phone
from server.portal.timeline import Step, local_text

# How people say the companies' names; an insurer not listed goes by its name in the directory.
SHORT_NAMES = {"PICC": "人保财险", "PAIC": "平安财险", "CPIC": "太平洋财险"}
PREFERRED_CONTACT = {
    "any": "随时",
    "morning": "上午（9—12时）",
    "afternoon": "下午（14—18时）",
    "evening": "晚上（18—21时）",
}


def short_name(code: str, name: str) -> str:
    return SHORT_NAMES.get(code, name)


def yuan(amount: Decimal | None) -> str:
    return "" if amount is None else f"{amount:.2f}元"


def step(update: ClaimUpdate, insurer: str) -> Step:
    """One update as a step of the party's progress, with what happens next."""
    status = ClaimStatus(update.status)
    nxt = CLAIM.next_steps[status]
    if status is ClaimStatus.REQUESTED:
        return Step("claim_requested", f"已申请一键理赔（{insurer}）", update.at, nxt)
    if status is ClaimStatus.ACCEPTED:
        return Step("claim_accepted", f"{insurer}已受理理赔", update.at, nxt)
    if status is ClaimStatus.ADJUSTER_ASSIGNED:
        who = f"{update.adjuster_name} {update.adjuster_phone}"
        return Step("claim_adjuster_assigned", f"{insurer}查勘员 {who} 将联系您", update.at, nxt)
    if status is ClaimStatus.ASSESSED:
        return Step("claim_assessed", f"{insurer}已定损 {yuan(update.amount_cny)}", update.at, nxt)
    if status is ClaimStatus.PAID:
        return Step("claim_paid", f"{insurer}已赔付 {yuan(update.amount_cny)}", update.at, nxt)
    reason = f"原因：{update.reason}。" if update.reason else ""
    return Step("claim_closed", f"{insurer}理赔已结案", update.at, reason + nxt)


def steps(updates: Sequence[ClaimUpdate], insurer: str) -> list[Step]:
    """Every update so far, then the step the claim waits for (not done yet), as the review's do."""
    out = [step(u, insurer) for u in updates]
    last = ClaimStatus(updates[-1].status) if updates else None
    if last in (ClaimStatus.REQUESTED, None):
        out.append(Step("claim_accepted", f"{insurer}受理理赔", None, "保险公司一般在1个工作日内受理。"))
    elif last is ClaimStatus.ACCEPTED:
        out.append(Step("claim_adjuster_assigned", "安排查勘员联系您", None, CLAIM.next_steps[last]))
    return out


def sms_text(update: ClaimUpdate, insurer: str, case_no: str) -> str:
    """What the party's phone is told at each update (kind ``claim``)."""
    status = ClaimStatus(update.status)
    if status is ClaimStatus.REQUESTED:
        return f"【快处】您对事故案件{case_no}的理赔申请已发送给{insurer}，保险公司受理后将安排查勘员联系您。"
    if status is ClaimStatus.ACCEPTED:
        return f"【快处】{insurer}已受理您的理赔申请（事故案件{case_no}），将安排查勘员与您联系。"
    if status is ClaimStatus.ADJUSTER_ASSIGNED:
        name, phone = mask_name(update.adjuster_name or ""), mask_phone(update.adjuster_phone or "")
        return f"【快处】{insurer}查勘员 {name} {phone} 将联系您，请保持电话畅通。"
    if status is ClaimStatus.ASSESSED:
        return f"【快处】{insurer}已对事故案件{case_no}定损，金额{yuan(update.amount_cny)}。如有异议请联系查勘员。"
    if status is ClaimStatus.PAID:
        return f"【快处】{insurer}已就事故案件{case_no}赔付{yuan(update.amount_cny)}，请留意到账。"
    reason = f"，原因：{update.reason[:100]}" if update.reason else ""
    return f"【快处】{insurer}对事故案件{case_no}的理赔已结案{reason}。"


def party_view(claim: Claim | None, insurer: str | None, can_claim: bool, reason: str, photos: int) -> dict[str, Any]:
    """The 一键理赔 section of the party's page."""
    out: dict[str, Any] = {
        "can_claim": can_claim and claim is None,
        "reason": reason,
        "insurer": insurer,
        "photos": photos,
        "contact_times": PREFERRED_CONTACT,
        "claim": None,
    }
    if claim is not None:
        status = ClaimStatus(claim.status)
        out["claim"] = {
            "id": claim.id,
            "status": status.value,
            "label": CLAIM.labels[status].split(" ")[0],
            "next": CLAIM.next_steps[status],
            "requested_at_local": local_text(claim.requested_at),
            "adjuster": None
            if claim.adjuster_name is None
            else {"name": claim.adjuster_name, "phone": claim.adjuster_phone},
            "amount_cny": None if claim.amount_cny is None else f"{claim.amount_cny:.2f}",
        }
    return out


def insurer_view(claim: Claim, case_no: str, party: Party, updates: Sequence[ClaimUpdate]) -> dict[str, Any]:
    """A claim as ``GET /api/insurers/v1/claims`` lists it: the claimant is the insurer's own
    policyholder, so in full, as in the ``claim.requested`` event."""
    return {
        "claim_id": claim.id,
        "case_no": case_no,
        "claimant": {
            "position": POSITIONS[party.position - 1],
            "name": party.name,
            "phone": party.phone,
            "plate": party.plate,
            "vehicle_type": party.vehicle_type,
            "policy_no": party.policy_no,
        },
        "status": claim.status,
        "preferred_contact": claim.preferred_contact,
        "adjuster": None
        if claim.adjuster_name is None
        else {"name": claim.adjuster_name, "phone": claim.adjuster_phone},
        "amount_cny": None if claim.amount_cny is None else float(claim.amount_cny),
        "closed_reason": claim.closed_reason,
        "requested_at": claim.requested_at.isoformat(),
        "updated_at": claim.updated_at.isoformat(),
        "updates": [
            {
                "status": u.status,
                "at": u.at.isoformat(),
                **({"adjuster": {"name": u.adjuster_name, "phone": u.adjuster_phone}} if u.adjuster_name else {}),
                **({"amount_cny": float(u.amount_cny)} if u.amount_cny is not None else {}),
                **({"reason": u.reason} if u.reason else {}),
            }
            for u in updates
        ],
    }
