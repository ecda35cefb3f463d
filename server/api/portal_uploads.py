"""A party's photos from the web app, uploaded in chunks that survive a dropped connection
(``server.phones.photos``): start (name, kind, size, SHA-256), ask where to go on, send a chunk at
an offset; the last chunk makes it evidence."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field

from server.api.deps import StateDep
from server.api.portal import VisitorDep
from server.errors import Invalid
from server.phones.photos import CHUNK_MAX

router = APIRouter(tags=["parties"])


class PhotoStart(BaseModel):
    name: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    size: int = Field(gt=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")


@router.post("/api/portal/photos", status_code=status.HTTP_201_CREATED)
async def start(body: PhotoStart, visitor: VisitorDep, state: StateDep) -> dict[str, Any]:
    return await state.photos.start(visitor, body.name, body.kind, body.size, body.sha256)


@router.get("/api/portal/photos/{upload_id}")
async def where(upload_id: str, visitor: VisitorDep, state: StateDep) -> dict[str, Any]:
    return await state.photos.offset(visitor, upload_id)


@router.put("/api/portal/photos/{upload_id}")
async def chunk(
    upload_id: str, offset: Annotated[int, Query(ge=0)], request: Request, visitor: VisitorDep, state: StateDep
) -> dict[str, Any]:
    data = bytearray()
    async for piece in request.stream():
        data += piece
        if len(data) > CHUNK_MAX:
            raise Invalid("分片太大 (chunk too large)")
    return await state.photos.chunk(visitor, upload_id, offset, bytes(data))
