"""The insurers' API (``/api/insurers/v1``, docs/insurers.md): an insurer's own cases, their
determinations and evidence, and the claims made to it, with its status updates to them.

Every route names ``InsurerDep``: the insurer authenticated the way the operator chose for it, then
counted against its rate (429 with ``Retry-After``). ``CallLog`` writes a row for every call under
the prefix, refused ones too, after the answer has gone.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.status import HTTP_429_TOO_MANY_REQUESTS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.deps import RowId, StateDep
from server.db.models import Case, Determination, Evidence
from server.errors import Invalid, NotFound
from server.insurers.api_access import Caller
from server.insurers.tls import CLIENT_CERT
from server.lifecycles.claim import ClaimStatus

PREFIX = "/api/insurers/v1"
router = APIRouter(prefix=PREFIX, tags=["insurers"])
CALLER = "insurer"  # the request state's key for the call log


async def current_insurer(request: Request, state: StateDep) -> Caller:
    authorization = request.headers.get("authorization", "")
    scheme, _, key = authorization.partition(" ")
    bearer = key.strip() if scheme.lower() == "bearer" else None
    caller = await state.insurer_api.authenticate(bearer, getattr(request.state, CLIENT_CERT, None))
    setattr(request.state, CALLER, caller.code)
    wait = state.insurer_api.wait_s(caller.code)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise HTTPException(
            HTTP_429_TOO_MANY_REQUESTS,
            f"请求过于频繁，请{retry}秒后重试 (rate limited: retry after {retry} s)",
            headers={"Retry-After": str(retry)},
        )
    return caller


InsurerDep = Annotated[Caller, Depends(current_insurer)]


class Adjuster(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    phone: str = Field(pattern=r"^1\d{10}$|^0\d{2,3}-?\d{7,8}$")


class StatusUpdate(BaseModel):
    """One of: ``accepted``; ``adjuster_assigned`` with ``adjuster``; ``assessed`` or ``paid`` with
    ``amount_cny``; ``closed`` with ``reason``."""

    status: Literal["accepted", "adjuster_assigned", "assessed", "paid", "closed"]
    adjuster: Adjuster | None = None
    amount_cny: Decimal | None = Field(default=None, ge=0, le=10_000_000, max_digits=12, decimal_places=2)
    reason: str | None = Field(default=None, min_length=1, max_length=500)


@router.get("/cases/{case_no}")
async def case(case_no: str, caller: InsurerDep, state: StateDep) -> dict[str, Any]:
    """The case as the events' ``data`` has it, for this insurer: its insured in full, the others
    masked, links signed for it. Another insurer's case is 404, as an absent one."""
    return await state.insurer_api.case_view(caller, case_no)


@router.get("/cases/{case_no}/determinations/{version}/pdf")
async def determination_pdf(case_no: str, version: int, caller: InsurerDep, state: StateDep) -> FileResponse:
    async with state.cases.sessions() as session:
        found, _ = await state.insurer_api.visible_case(session, caller, case_no)
        row = await session.scalar(
            select(Determination).where(Determination.case_id == found.id, Determination.version == version)
        )
    if row is None:
        raise NotFound("该案件没有这一版认定书 (no such version)")
    return FileResponse(
        str(state.determinations.folder / row.path), media_type="application/pdf", filename=f"{case_no}-v{version}.pdf"
    )


@router.get("/evidence/{evidence_id}")
async def evidence(evidence_id: RowId, caller: InsurerDep, state: StateDep) -> FileResponse:
    """A masked copy (other people's faces and non-party plates blurred) of an evidence file of a
    case this insurer may see."""
    async with state.cases.sessions() as session:
        row = await session.get(Evidence, evidence_id)
        found = None if row is None else await session.get(Case, row.case_id)
        if row is None or found is None:
            raise NotFound("没有这份证据 (no such evidence)")
        await state.insurer_api.visible_case(session, caller, found.case_no)
    path, media_type = await state.masked.masked_copy(evidence_id)
    return FileResponse(str(path), media_type=media_type, filename=path.name)


@router.get("/claims")
async def claims(caller: InsurerDep, state: StateDep, status: ClaimStatus | None = None) -> list[dict[str, Any]]:
    """Claims made to this insurer, oldest first, each with its updates; ``?status=requested`` for new ones."""
    return await state.claims.listing(caller, status)


@router.post("/claims/{claim_id}/status")
async def claim_status(claim_id: RowId, body: StatusUpdate, caller: InsurerDep, state: StateDep) -> dict[str, Any]:
    """The claim's next status; one the claim's lifecycle does not allow from where it is is 409.
    The party sees it on their progress and gets an SMS."""
    new = ClaimStatus(body.status)
    if new is ClaimStatus.ADJUSTER_ASSIGNED and body.adjuster is None:
        raise Invalid("安排查勘员须给出查勘员姓名和电话 (adjuster {name, phone} needed)")
    if new in (ClaimStatus.ASSESSED, ClaimStatus.PAID) and body.amount_cny is None:
        raise Invalid("定损和赔付须给出金额 (amount_cny needed)")
    if new is ClaimStatus.CLOSED and body.reason is None:
        raise Invalid("结案须给出原因 (reason needed)")
    return await state.claims.update(
        caller,
        claim_id,
        new,
        adjuster=None if body.adjuster is None else (body.adjuster.name, body.adjuster.phone),
        amount_cny=body.amount_cny,
        reason=body.reason,
    )


class CallLog:
    """Every call under ``/api/insurers/v1`` as a row of ``insurer_api_calls`` (insurer, method,
    path, status, address), written once the answer has gone so no insurer waits on it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        request_state = scope.setdefault("state", {})
        answered = 500

        async def sending(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            await scope["app"].state.kuaichu.insurer_api.log_call(
                request_state.get(CALLER), scope["method"], scope["path"], answered, client[0] if client else "unknown"
            )
