"""Evidence as the console's players play it (``GET /api/evidence/{id}/play``): the file as stored
where Chromium plays it (the call's recording segments: VP8 and PCM in Matroska), and a WebM copy
made on the first request and kept where it does not (the seconds before the press, Motion-JPEG;
``server.calls.playable``). The stored file and its hash stay what ``/api/evidence/{id}`` serves."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from server.api.calls import MEDIA_TYPES
from server.api.deps import OperatorDep, RowId, StateDep
from server.calls.playable import PlayableCache, needs_webm
from server.calls.store import CallStore
from server.errors import Invalid, NotFound

router = APIRouter(prefix="/api", tags=["calls"])

PLAYABLE = frozenset({"clip", "recording"})
# One cache per server's data folder: a process may hold several servers (the tests do).
_caches: dict[Path, PlayableCache] = {}


@router.get("/evidence/{evidence_id}/play")
async def playable(evidence_id: RowId, operator: OperatorDep, state: StateDep) -> FileResponse:
    store = CallStore(state.cases.sessions, state.cfg.evidence_dir)
    item = await store.evidence(evidence_id)
    case = await state.cases.get(item.case_id) if item is not None else None
    if item is None or case is None or not operator.sees(case.unit_adcode):
        raise NotFound("证据文件不存在，请刷新页面 (no such evidence)")
    if item.kind not in PLAYABLE:
        raise Invalid("这份证据不是视频，请直接打开 (this evidence is not a video)")
    source = state.cfg.evidence_dir / item.path
    if not needs_webm(item):
        return FileResponse(source, media_type=MEDIA_TYPES[source.suffix])
    folder = state.cfg.server.data_dir / "playable"
    cache = _caches.setdefault(folder, PlayableCache(folder))
    return FileResponse(await cache.webm(item, source), media_type="video/webm")
