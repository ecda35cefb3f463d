"""A party's review (复核) request from their phone: may I, until when, and the request itself with
its main evidence as a multipart form. Only the party's own session (``kc_party``) gets here, and
only for their own case; an operator's session is no party's.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status

from server.api.deps import StateDep
from server.api.portal import VisitorDep
from server.errors import Invalid
from server.portal.attachments import Attachment, recognise

router = APIRouter(prefix="/api/portal", tags=["parties"])
REQUEST_CHARS, REASONS_CHARS = 2000, 4000


@router.get("/review")
async def standing(visitor: VisitorDep, state: StateDep) -> dict[str, Any]:
    """``can_file``; ``deadline`` (ISO) and ``deadline_words`` ("2026年12月4日24时"); ``sentence`` when
    the party may ask; ``reason`` in plain Chinese when not; ``review``: the review so far, if any."""
    return await state.reviews.standing(visitor)


@router.post("/review", status_code=status.HTTP_201_CREATED)
async def file_review(
    visitor: VisitorDep,
    state: StateDep,
    request: Annotated[str, Form()] = "",
    reasons: Annotated[str, Form()] = "",
    files: Annotated[list[UploadFile] | None, File()] = None,
) -> dict[str, Any]:
    """The request (what the party asks for), the reasons, and up to the configured number of JPEG,
    PNG or PDF files; refused after the party's three days, with why."""
    request, reasons = request.strip(), reasons.strip()
    if not request:
        raise Invalid("请写明您的复核请求，例如“请求撤销原认定，重新认定责任” (the request is empty)")
    if len(reasons) < 5:
        raise Invalid("请写明申请复核的理由，至少5个字 (the reasons are missing)")
    if len(request) > REQUEST_CHARS or len(reasons) > REASONS_CHARS:
        raise Invalid(
            f"复核请求最多{REQUEST_CHARS}字、理由最多{REASONS_CHARS}字，请精简后再提交 (request or reasons too long)"
        )
    uploads = [f for f in files or [] if f.filename or f.size]
    if len(uploads) > state.reviews.max_files:
        raise Invalid(f"最多上传{state.reviews.max_files}个文件，请挑选主要证据 (too many files)")
    limit = state.reviews.max_file_bytes
    attachments: list[Attachment] = []
    for upload in uploads:
        data = await upload.read(limit + 1)
        # On a thread: each picture is opened to check it is one, seconds of CPU for a large one.
        attachments.append(await asyncio.to_thread(recognise, upload.filename or "", data, limit))
    return await state.reviews.file(visitor, request, reasons, attachments)
