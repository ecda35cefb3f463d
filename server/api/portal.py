"""The parties' web app: its pages and its API under /api/portal, with a session of its own
(``kc_party``) that opens nothing of the console's, and the console's opens nothing here."""

from __future__ import annotations

import asyncio
import logging
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, WebSocket, WebSocketDisconnect, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from server.api.deps import RowId, StateDep, get_ws_state
from server.api.origin import refuse_foreign_origin
from server.casework.document import qr_data_url
from server.errors import DomainError, Invalid
from server.portal.access import Visitor

logger = logging.getLogger(__name__)
router = APIRouter(tags=["parties"])
PARTY_COOKIE = "kc_party"
PAGES = resources.files("server.portal").joinpath("pages")
PHONE = r"^1\d{10}$"
CASE_NO = r"^\d{6,32}$"


class CodeRequest(BaseModel):
    """Where the code goes: a personal link's token, or a case number and the party's phone, or a
    phone alone (to report from it)."""

    token: str | None = Field(default=None, max_length=64)
    case_no: str | None = Field(default=None, pattern=CASE_NO)
    phone: str | None = Field(default=None, pattern=PHONE)


class CodeLogin(CodeRequest):
    code: str = Field(pattern=r"^\s*\d{6}\s*$")


def client_address(request: Request) -> str:
    """The phone's address as this worker sees it (behind a reverse proxy, uvicorn's
    ``--forwarded-allow-ips`` makes this the real client's)."""
    return request.client.host if request.client is not None else "unknown"


async def current_visitor(request: Request, state: StateDep) -> Visitor:
    return await state.portal.visitor(request.cookies.get(PARTY_COOKIE))


VisitorDep = Annotated[Visitor, Depends(current_visitor)]


def _page(name: str) -> FileResponse:
    return FileResponse(str(PAGES.joinpath(name)), headers={"Cache-Control": "no-store"})


@router.get("/p", include_in_schema=False)
async def home() -> FileResponse:
    return _page("portal.html")


@router.get("/p/print/{determination_id}", include_in_schema=False)
async def print_page(determination_id: RowId) -> FileResponse:
    return _page("print.html")


@router.get("/p/{token}", include_in_schema=False)
async def link_page(token: str) -> FileResponse:
    return _page("portal.html")


@router.get("/api/portal/link/{token}")
async def link(token: str, state: StateDep) -> dict[str, Any]:
    view = await state.portal.link(token)
    return {"case_no": view.case_no, "phone_hint": view.phone_hint}


@router.post("/api/portal/code", status_code=status.HTTP_202_ACCEPTED)
async def request_code(body: CodeRequest, request: Request, state: StateDep) -> dict[str, Any]:
    if body.token is None and body.phone is None:
        raise Invalid("请输入手机号 (a phone number is needed)")
    await state.portal.request_code(client_address(request), token=body.token, case_no=body.case_no, phone=body.phone)
    return {
        "message": "如果该号码是本案当事人的，验证码已发送，5分钟内有效 (if the number is a party's, a code was sent)"
    }


@router.post("/api/portal/login")
async def login(body: CodeLogin, response: Response, state: StateDep) -> dict[str, Any]:
    token, visitor = await state.portal.login(body.code, token=body.token, case_no=body.case_no, phone=body.phone)
    response.set_cookie(
        PARTY_COOKIE,
        token,
        expires=visitor.expires_at,
        httponly=True,
        samesite="lax",  # a link opened from the SMS app or a QR scanner carries it
        secure=state.cfg.http.secure_cookies,
        path="/",
    )
    return {"party": visitor.party_id is not None, "case": visitor.case_id is not None}


@router.post("/api/portal/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, response: Response, state: StateDep) -> None:
    token = request.cookies.get(PARTY_COOKIE)
    if token:
        await state.portal.logout(token)
    response.delete_cookie(PARTY_COOKIE, path="/")


@router.get("/api/portal/case")
async def case(visitor: VisitorDep, state: StateDep) -> dict[str, Any]:
    review, claim = await state.reviews.steps_for(visitor), await state.claims.steps_for(visitor)
    return await state.portal_views.case_view(visitor, review, claim)


@router.get("/api/portal/determinations/{determination_id}/pdf")
async def pdf(determination_id: RowId, visitor: VisitorDep, state: StateDep) -> FileResponse:
    row, case, _latest = await state.portal_views.visible_determination(visitor, determination_id)
    await state.reviews.viewed(visitor, row.id)  # the party's first look is delivery to them
    return FileResponse(
        str(state.determinations.folder / row.path),
        media_type="application/pdf",
        filename=f"{case.case_no}-v{row.version}.pdf",
    )


@router.get("/api/portal/determinations/{determination_id}")
async def sheet(determination_id: RowId, visitor: VisitorDep, state: StateDep) -> dict[str, Any]:
    """What the print view lays out: the document's own lines and its verification QR code."""
    row, case, latest = await state.portal_views.visible_determination(visitor, determination_id)
    await state.reviews.viewed(visitor, row.id)  # opening it to print is the party's look at it too
    sheet = await state.determinations.sheet(row)
    return {
        "case_no": case.case_no,
        "version": row.version,
        "current": row.version == latest,
        "lines": sheet["lines"],
        "qr": qr_data_url(sheet["verify_url"]),
        "pdf": f"/api/portal/determinations/{row.id}/pdf",
    }


@router.websocket("/api/portal/ws")
async def live(websocket: WebSocket) -> None:
    """A nudge whenever the party's case moves; the page then asks for its view again, so nothing
    of the staff's own feed ever reaches a phone."""
    state = get_ws_state(websocket)
    if await refuse_foreign_origin(websocket, state.cfg):
        return
    try:
        visitor = await state.portal.visitor(websocket.cookies.get(PARTY_COOKIE))
        view = await state.portal_views.case_view(visitor)
    except DomainError:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="login required")
        return
    await websocket.accept()
    needle = f'"{view["case_no"]}"'
    sub = state.hub.subscribe(frozenset({view["unit_adcode"]}))
    reader = asyncio.create_task(_until_closed(websocket))
    reader.add_done_callback(lambda _: sub.close())
    try:
        await websocket.send_json({"type": "hello"})
        while events := await sub.take():
            if sub.overflowed or any(needle in event for event in events):
                await websocket.send_json({"type": "changed"})
    except WebSocketDisconnect:
        pass
    finally:
        reader.cancel()
        state.hub.unsubscribe(sub)


async def _until_closed(websocket: WebSocket) -> None:
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        return
