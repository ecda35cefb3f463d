"""The events' side of the insurers' API: the signed links an event carries (the document, each
evidence file), which open without an API key because the signature is the authority, and the
administrators' view of the webhook outbox (insurers, events waiting or dead, resend).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from server.api.deps import AdminDep, RowId, StateDep
from server.cases import now_utc
from server.db.insurers import Insurer, InsurerStatus, WebhookStatus
from server.db.models import Determination
from server.errors import Forbidden, NotFound
from server.insurers import directory
from server.insurers.links import PREFIX, document_path, evidence_path

links = APIRouter(prefix=PREFIX, tags=["insurers"])
admin = APIRouter(prefix="/api/admin/insurers", tags=["insurers"])
Exp = Annotated[int, Query(description="expiry, Unix seconds")]
Sig = Annotated[str, Query(max_length=64, description="the server's HMAC over the path and exp")]


def _refused() -> Forbidden:
    return Forbidden("链接无效或已过期，请通过接口重新获取 (the link is invalid or has expired: fetch the case again)")


async def _check(state: StateDep, path: str, code: str, exp: int, sig: str) -> None:
    """The signature first (nothing about what exists is said to an unsigned request), then the
    insurer still active: a disabled insurer's links stop opening at once."""
    if not await state.webhooks.links.valid(path, exp, sig, now_utc()):
        raise _refused()
    async with state.cases.sessions() as session:
        insurer = await session.get(Insurer, code)
    if insurer is None or insurer.status != InsurerStatus.ACTIVE:
        raise _refused()


@links.get("/{code}/determinations/{determination_id}.pdf")
async def linked_document(code: str, determination_id: RowId, exp: Exp, sig: Sig, state: StateDep) -> FileResponse:
    """The determination's PDF as issued, from an event's ``pdf_url``."""
    await _check(state, document_path(code, determination_id), code, exp, sig)
    async with state.cases.sessions() as session:
        row = await session.get(Determination, determination_id)
    if row is None:
        raise NotFound("没有这份认定书 (no such determination)")
    name = row.path.replace("/", "-")
    return FileResponse(str(state.determinations.folder / row.path), media_type="application/pdf", filename=name)


@links.get("/{code}/evidence/{evidence_id}")
async def linked_evidence(code: str, evidence_id: RowId, exp: Exp, sig: Sig, state: StateDep) -> FileResponse:
    """An evidence file from an event's ``evidence[].url``: its masked copy (other people's faces and
    non-party plates blurred, ``server/evidence/copies.py``)."""
    await _check(state, evidence_path(code, evidence_id), code, exp, sig)
    path, media_type = await state.masked.masked_copy(evidence_id)
    return FileResponse(str(path), media_type=media_type, filename=path.name)


@admin.get("")
async def insurers(operator: AdminDep, state: StateDep) -> list[dict[str, Any]]:
    """The directory, with each insurer's events by status."""
    counts = await state.webhooks.counts()
    return [
        {**i, "events": counts.get(i["code"], {})} for i in await directory.listing(state.cases.sessions, now_utc())
    ]


@admin.get("/deliveries")
async def deliveries(
    operator: AdminDep, state: StateDep, status: WebhookStatus = WebhookStatus.DEAD
) -> list[dict[str, Any]]:
    """Events waiting for their next try (``pending``) or given up on (``dead``), oldest first."""
    return await state.webhooks.listing(status)


@admin.post("/deliveries/{delivery_id}/resend")
async def resend(delivery_id: RowId, operator: AdminDep, state: StateDep) -> dict[str, bool]:
    if not await state.webhooks.resend(delivery_id):
        raise NotFound("没有待发或已放弃的这条推送，请刷新 (no such event waiting or dead)")
    return {"queued": True}
