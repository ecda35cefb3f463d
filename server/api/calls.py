"""Live calls and evidence over HTTP: which calls are running, ending one, a case's evidence files.

Joining a call (the console's SDP offer and the server's answer) goes over the live WebSocket.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status

from protocol.ids import REPORT_ID_PATTERN
from protocol.messages import utc_iso
from server.api.deps import OperatorDep, StateDep
from server.api.state import ServerState
from server.calls.manager import CallError, CallManager
from server.calls.store import CallStore

router = APIRouter(prefix="/api", tags=["calls"])

CallIdPath = Annotated[str, Path(pattern=REPORT_ID_PATTERN)]


def calls_of(state: ServerState) -> CallManager:
    if state.calls is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this server worker does not take calls")
    return state.calls


@router.get("/calls")
async def active_calls(operator: OperatorDep, state: StateDep) -> dict[str, Any]:
    calls = calls_of(state)
    return {"calls": calls.active(operator.sees), "ice_servers": calls.ice_servers_json()}


@router.post("/calls/{call_id}/end", status_code=status.HTTP_204_NO_CONTENT)
async def end_call(call_id: CallIdPath, operator: OperatorDep, state: StateDep) -> None:
    try:
        await calls_of(state).end_by(call_id, operator.id, operator.sees)
    except CallError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.get("/cases/{case_id}/evidence")
async def evidence(case_id: int, operator: OperatorDep, state: StateDep) -> list[dict[str, Any]]:
    case = await state.cases.get(case_id)
    if case is None or not operator.sees(case.unit_adcode):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    store = CallStore(state.cases.sessions, state.cfg.evidence_dir)
    return [
        {
            "id": e.id,
            "kind": e.kind,
            "call_id": e.call_id,
            "file": e.path,
            "sha256": e.sha256,
            "size_bytes": e.size_bytes,
            "media_start": utc_iso(e.media_start) if e.media_start else None,
            "media_end": utc_iso(e.media_end) if e.media_end else None,
            "note": e.note,
        }
        for e in await store.evidence_of(case_id)
    ]
