"""A party's phone in its case's live call (``server.calls.participants``): whether there is one and
how the phone stands in it, and the phone's offer answered. Only the worker that takes the calls
answers; behind a proxy, /api/portal/call goes where the consoles' live socket goes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from server.api.deps import StateDep
from server.api.portal import VisitorDep
from server.api.state import ServerState
from server.calls.participants import PhoneCalls
from server.errors import Unavailable

router = APIRouter(tags=["parties"])


class PhoneOffer(BaseModel):
    sdp: Annotated[str, Field(min_length=10, max_length=16 * 1024)]


def phone_calls(state: ServerState) -> PhoneCalls:
    if state.phone_calls is None:
        raise Unavailable("视频服务暂时不可用，请稍后再试或拨打122 (this server worker does not take calls)")
    return state.phone_calls


@router.get("/api/portal/call")
async def call_status(visitor: VisitorDep, state: StateDep) -> dict[str, Any]:
    answer = await phone_calls(state).status(visitor)
    answer["ice_servers"] = [s.model_dump(exclude_none=True) for s in state.cfg.calls.ice_servers]
    return answer


@router.post("/api/portal/call")
async def offer(body: PhoneOffer, visitor: VisitorDep, state: StateDep) -> dict[str, Any]:
    return {"sdp": await phone_calls(state).offer(visitor, body.sdp)}
