"""The officer's determination over HTTP, and the public verification of a determination PDF.

Issuing is for officers who serve the case's unit. The verification page and its API need no
login (a party or an insurer scans the QR code) and show no personal data.
"""

from __future__ import annotations

import hmac
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from server.api.casework import changed
from server.api.deps import (
    SESSION_COOKIE,
    ActorDep,
    CaseDep,
    OfficerDep,
    OperatorDep,
    RowId,
    StateDep,
    operator_from_token,
)
from server.api.portal import PARTY_COOKIE
from server.cases import now_utc
from server.casework.determination import DeterminationIn, Officer
from server.casework.facts_draft import DraftParty, draft_facts
from server.casework.liability import LIABILITIES, SITUATIONS, propose
from server.casework.parties import POSITIONS
from server.errors import Forbidden, Invalid, NotFound, Unauthenticated

router = APIRouter(tags=["determination"])
MAX_PDF_BYTES = 5 * 1024 * 1024


@router.get("/api/situations")
async def situations(operator: OperatorDep) -> dict[str, Any]:
    """Each situation's name and usual outcome for two parties when 甲 is at fault."""
    return {
        "liabilities": LIABILITIES,
        "situations": {
            key: {"name": s.name, "proposal": propose(key, 2, 0)[0], "legal_basis": propose(key, 2, 0)[1]}
            for key, s in SITUATIONS.items()
        },
    }


@router.get("/api/situations/{situation}/proposal")
async def proposal(
    situation: str,
    operator: OperatorDep,
    parties: int = Query(ge=2, le=len(POSITIONS)),
    at_fault: int = Query(ge=0, lt=len(POSITIONS)),
) -> dict[str, Any]:
    """The usual liabilities (party order) and legal basis when party ``at_fault`` (0-based) is to blame."""
    if situation not in SITUATIONS or at_fault >= parties:
        raise Invalid("没有这种事故情形或当事人 (unknown situation or party)")
    shares, basis = propose(situation, parties, at_fault)
    return {"liabilities": shares, "legal_basis": basis}


@router.get("/api/cases/{case_id}/proposal")
async def case_proposal(
    operator: OperatorDep,
    case: CaseDep,
    state: StateDep,
    situation: str,
    at_fault: int = Query(ge=0, lt=len(POSITIONS)),
) -> dict[str, Any]:
    """The situation's usual outcome for this case's parties (``at_fault``: 0-based, party order),
    and a draft of the facts from what was collected, for the officer to edit."""
    parties = [
        DraftParty(p["label"], p["name"], p["role"], p["plate"], p["vehicle_type"])
        for p in (await state.work.work(case.id))["parties"]
    ]
    if situation not in SITUATIONS or len(parties) < 2 or at_fault >= len(parties):
        raise Invalid("没有这种事故情形或当事人 (unknown situation or party)")
    shares, basis = propose(situation, len(parties), at_fault)
    facts = case.facts or {}
    draft = draft_facts(
        case.triggered_at, facts.get("place"), facts.get("weather"), facts.get("injury"), parties, situation, at_fault
    )
    return {"liabilities": shares, "legal_basis": basis, "facts": draft}


@router.post("/api/cases/{case_id}/determinations", status_code=status.HTTP_201_CREATED)
async def issue(
    body: DeterminationIn, operator: OfficerDep, case: CaseDep, actor: ActorDep, state: StateDep
) -> dict[str, Any]:
    issued = await state.determinations.issue(case.id, body, Officer(actor, operator.display_name, operator.police_no))
    await changed(state, await state.work.work(case.id))
    versions = await state.determinations.of_case(case.id)
    found = next(v for v in versions if v["id"] == issued.determination.id)
    return found | {"render_ms": round(issued.render_ms, 1)}


@router.get("/api/cases/{case_id}/determinations")
async def versions(case: CaseDep, state: StateDep) -> list[dict[str, Any]]:
    return await state.determinations.of_case(case.id)


@router.get("/api/determinations/{determination_id}/pdf")
async def pdf(determination_id: RowId, operator: OperatorDep, state: StateDep) -> FileResponse:
    found = await state.determinations.get(determination_id)
    if found is None or not operator.sees(found[1].unit_adcode):
        raise NotFound("认定书不存在，请刷新页面 (no such determination)")
    row, case = found
    return FileResponse(
        state.determinations.folder / row.path,
        media_type="application/pdf",
        filename=f"{case.case_no}-v{row.version}.pdf",
    )


@router.get("/api/verify/{token}")
async def registered(token: str, state: StateDep) -> dict[str, Any]:
    found = await state.determinations.by_token(token)
    if found is None:
        raise NotFound("没有与此验证码对应的认定书，请核对 (no determination with this code)")
    return found


@router.get("/api/verify/{token}/pdf")
async def registered_pdf(token: str, request: Request, state: StateDep) -> FileResponse:
    """The document itself carries the parties' names, ID and phone numbers: a QR code printed on
    it, or a photo of one, opens it only to a party of the case (their own session) or an operator
    who serves its unit."""
    found = await state.determinations.file_by_token(token)
    if found is None:
        raise NotFound("没有与此验证码对应的认定书，请核对 (no determination with this code)")
    path, name, case_id, unit = found
    operator = await operator_from_token(state, request.cookies.get(SESSION_COOKIE))
    if operator is not None and operator.sees(unit):
        return FileResponse(path, media_type="application/pdf", filename=name)
    visitor = await state.portal.visitor(request.cookies.get(PARTY_COOKIE))
    if visitor.case_id != case_id or visitor.party_id is None:
        raise Forbidden(
            "完整认定书只提供给本案当事人：请用短信中的链接登录后下载 (only the case's parties may download it)"
        )
    return FileResponse(path, media_type="application/pdf", filename=name)


@router.get("/pki/root.crt")
async def root_certificate(state: StateDep) -> Response:
    """The Kuaichu document root (DER): trusted in a PDF reader, it shows which unit signed a determination."""
    der = await state.determinations.root_certificate()
    return Response(der, media_type="application/pkix-cert", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/api/cases/{case_id}/deliveries")
async def deliveries(case: CaseDep, state: StateDep) -> list[dict[str, Any]]:
    return await state.sms.of_case(case.id)


class Receipt(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64, description="the provider's id for the message")
    ref: str | None = Field(default=None, max_length=64, description="our reference, as given with the message")
    status: Literal["delivered", "failed"]
    at: AwareDatetime | None = None


@router.post("/api/sms/receipts", status_code=status.HTTP_204_NO_CONTENT)
async def receipt(body: Receipt, request: Request, state: StateDep) -> None:
    """The SMS provider's delivery report, authenticated by the receipt token."""
    expected = state.receipt_token
    given = request.headers.get("authorization", "")
    if expected is None or not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        raise Unauthenticated("回执令牌无效 (bad receipt token)")
    if not await state.sms.receipt(body.id, body.ref, body.status == "delivered", body.at or now_utc()):
        raise NotFound("没有这条短信 (no such message)")


@router.post("/api/verify")
async def check(request: Request, state: StateDep) -> dict[str, Any]:
    """Upload a PDF (the raw body): is it a genuine, unaltered determination, and the current version?"""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PDF_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, "文件过大，不是快处认定书 (a determination is far smaller)"
            )
    return await state.determinations.check(bytes(body))
