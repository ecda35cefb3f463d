"""Live calls and evidence over HTTP: which calls are running, ending one, a case's evidence files
and each file itself (to operators who serve the case's unit).

Joining a call (the console's SDP offer and the server's answer) goes over the live WebSocket.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from fastapi.responses import FileResponse

from protocol.ids import REPORT_ID_PATTERN
from server.api.deps import ActorDep, CaseDep, OperatorDep, RowId, StateDep
from server.api.state import ServerState
from server.calls.manager import CallManager
from server.calls.store import CallStore
from server.calls.uploads import evidence_json
from server.errors import Conflict, NotFound

router = APIRouter(prefix="/api", tags=["calls"])

MEDIA_TYPES = {
    ".jpg": "image/jpeg",  # stills
    ".mkv": "video/x-matroska",  # clips and recordings
    ".ogg": "audio/ogg",  # the sound of a degraded call
    ".png": "image/png",  # a party's evidence with a review request
    ".pdf": "application/pdf",  # likewise
    ".heic": "image/heic",  # a party's photo from an iPhone
}
CallIdPath = Annotated[str, Path(pattern=REPORT_ID_PATTERN)]


def calls_of(state: ServerState) -> CallManager:
    if state.calls is None:
        raise Conflict("本服务节点不处理通话，请连接通话节点 (this server worker does not take calls)")
    return state.calls


@router.get("/calls")
async def active_calls(operator: OperatorDep, state: StateDep) -> dict[str, Any]:
    calls = calls_of(state)
    return {"calls": calls.active(operator.sees), "ice_servers": calls.ice_servers_json()}


@router.post("/calls/{call_id}/end", status_code=status.HTTP_204_NO_CONTENT)
async def end_call(call_id: CallIdPath, operator: OperatorDep, actor: ActorDep, state: StateDep) -> None:
    await calls_of(state).end_by(call_id, actor, operator.sees)


@router.get("/cases/{case_id}/evidence")
async def evidence(case: CaseDep, state: StateDep) -> list[dict[str, Any]]:
    store = CallStore(state.cases.sessions, state.cfg.evidence_dir)
    return [evidence_json(e, case.case_no) for e in await store.evidence_of(case.id)]


@router.get("/evidence/{evidence_id}")
async def evidence_file(evidence_id: RowId, operator: OperatorDep, state: StateDep) -> FileResponse:
    """The file itself, with the SHA-256 recorded when it was stored in ``X-Evidence-SHA256``."""
    store = CallStore(state.cases.sessions, state.cfg.evidence_dir)
    item = await store.evidence(evidence_id)
    case = await state.cases.get(item.case_id) if item is not None else None
    if item is None or case is None or not operator.sees(case.unit_adcode):
        raise NotFound("证据文件不存在，请刷新页面 (no such evidence)")
    path = state.cfg.evidence_dir / item.path
    return FileResponse(
        path, media_type=MEDIA_TYPES[path.suffix], filename=path.name, headers={"X-Evidence-SHA256": item.sha256}
    )
