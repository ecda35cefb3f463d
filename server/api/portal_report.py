"""视频报警 from the parties' web app: a phone with no unit reports with its browser's position
(``server.phones.reports``), and learns the ICE servers its call goes through."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from server.api.deps import StateDep
from server.api.portal import PARTY_COOKIE, VisitorDep, client_address
from server.db.models import Case
from server.errors import Conflict, Unauthenticated
from server.phones.reports import PhonePosition

router = APIRouter(tags=["parties"])


class Position(BaseModel):
    """``navigator.geolocation``'s coords: WGS-84 degrees and the accuracy radius in metres."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy: float = Field(gt=0, le=1_000_000)


@router.get("/api/portal/report")
async def report_rules(request: Request, state: StateDep) -> dict[str, Any]:
    """What the page needs before it asks for the position: whether this phone is logged in (with
    its number alone), the accuracy needed, the ICE servers."""
    try:
        visitor = await state.portal.visitor(request.cookies.get(PARTY_COOKIE))
    except Unauthenticated:
        visitor = None
    return {
        "logged_in": visitor is not None,
        "has_case": visitor is not None and visitor.case_id is not None,
        "accuracy_limit_m": state.cfg.phone.accuracy_limit_m,
        "ice_servers": ice_servers(state),
    }


@router.post("/api/portal/report", status_code=status.HTTP_201_CREATED)
async def report(body: Position, visitor: VisitorDep, request: Request, state: StateDep) -> dict[str, Any]:
    if visitor.party_id is not None and visitor.case_id is not None:
        async with state.cases.sessions() as session:
            case = await session.get(Case, visitor.case_id)
        if case is None or case.reporter_phone != visitor.phone:
            raise Conflict(
                "您已登录一起事故案件，如要报告另一起事故，请先退出登录，再用手机号重新登录报警；"
                "紧急情况请拨打122 (this session follows another case)"
            )
    token = request.cookies.get(PARTY_COOKIE) or ""
    where = PhonePosition(body.lat, body.lon, body.accuracy)
    opened = await state.phone_reports.report(
        visitor.phone, hashlib.sha256(token.encode()).hexdigest(), client_address(request), where
    )
    return {
        "case_no": opened.case_no,
        "unit": opened.unit_name,
        "resumed": opened.resumed,
        "message": (
            f"已回到您正在处理的报警（案件{opened.case_no}），请保持视频通话。"
            if opened.resumed
            else f"报警成功，案件编号{opened.case_no}，已转{opened.unit_name}。请保持视频通话，调度员马上接听。"
        ),
    }


def ice_servers(state: Any) -> list[dict[str, Any]]:
    """The same STUN/TURN servers as the consoles and the call worker ([calls] ice_servers)."""
    return [s.model_dump(exclude_none=True) for s in state.cfg.calls.ice_servers]
