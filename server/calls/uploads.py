"""Stills and clips from the devices: asked for by a dispatcher, received in chunks, kept as evidence.

A console asks for a still (or the seconds before the press, or before its click) during a call;
the request gets an id, is written down with the operator who asked, and goes to the device on
``cmd``. The device answers with chunks on its ``upload`` channel, which arrive here in order, one
at a time. Every chunk is checked before a byte is written: the upload must be this device's, for
the case and call it was asked for, declaring the same file as its first chunk, and start where the
bytes received so far end (anything else is answered with the offset wanted, so the device resumes
from there after a drop). A finished file whose SHA-256 is not the declared one is discarded;
a good one is linked into the case's evidence folder, recorded with the operator, and shown on
the consoles of the case's unit. The request, the stored file (with its SHA-256) and an upload given
up each go into the case's event log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from protocol import ProtocolError
from protocol.ids import REPORT_ID_PATTERN, new_report_id
from protocol.messages import Command, EvidenceKind, Upload, decode, encode, utc_iso
from protocol.topics import Channel, device_topic
from server.calls.manager import CallError, Publish
from server.calls.recorder import sha256_of
from server.calls.store import CallStore
from server.calls.upload_files import IncomingFolder, UploadRequest
from server.cases import now_utc
from server.casework.events import Actor, device_actor
from server.db.models import Evidence
from server.in_order import InOrder
from server.lifecycles.call import CallState
from server.live_feed import CaseHub
from server.portal.attachments import image_problem

logger = logging.getLogger(__name__)

_UPLOAD_ID_IN_RAW = re.compile(rb'"upload_id"\s*:\s*"(' + REPORT_ID_PATTERN.strip("^$").encode() + rb')"')
_DECLARED = ("content_type", "size", "sha256", "captured_at", "captured_until")
JPEG_MAGIC = b"\xff\xd8\xff"
MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"  # the EBML header every Matroska file starts with


class UploadRefused(Exception):
    """The chunk cannot be taken and the device must give the upload up; the message says why."""


class UploadReceiver:
    def __init__(self, store: CallStore, hub: CaseHub, publish: Publish, folder: Path) -> None:
        self._store = store
        self._hub = hub
        self._publish = publish
        self._incoming = IncomingFolder(folder)
        self._arrived = InOrder(self._receive, "upload message")

    # --- the console's side ---------------------------------------------------------------------

    async def request(
        self,
        kind: EvidenceKind,
        call_id: str,
        actor: Actor,
        sees: Callable[[str], bool],
        seconds: int = 10,
        until: datetime | None = None,
    ) -> str:
        """Ask the call's device for a still or a clip for the operator ``actor``; returns the upload
        id the evidence will carry. A clip ends at ``until`` (the click, by this server's clock) or,
        without it, at the report's press."""
        call = await self._store.get(call_id)
        case = await self._store.case_by_id(call.case_id) if call is not None else None
        if call is None or case is None or not sees(case.unit_adcode):
            raise CallError("no such call")  # someone else's call is absent, not forbidden
        if call.state == CallState.ENDED:
            raise CallError("the call has ended")
        if actor.user_id is None:
            raise CallError("evidence is asked for by an operator")
        if call.device_id is None:
            raise CallError("a phone's call: take the still from its picture")  # server/calls/participants.py
        now = now_utc()
        request = UploadRequest(
            upload_id=new_report_id(),
            kind=kind.value,
            device_id=call.device_id,
            call_id=call_id,
            case_id=case.id,
            case_no=case.case_no,
            unit=case.unit_adcode,
            operator_id=actor.user_id,
            requested_at=utc_iso(now),
        )
        await asyncio.to_thread(self._incoming.save, request)
        asked: dict[str, Any] = {"call_id": call_id, "upload_id": request.upload_id, "kind": kind.value}
        if kind is EvidenceKind.CLIP:
            asked["seconds"] = seconds
            if until is not None:
                asked["until"] = utc_iso(until)
        await self._store.log(case.id, actor, "evidence.requested", asked, now)
        command = Command(
            type="still.request" if kind is EvidenceKind.STILL else "clip.request",
            call_id=call_id,
            upload_id=request.upload_id,
            case_no=case.case_no,
            report_id=case.report_id if kind is EvidenceKind.CLIP else None,
            seconds=seconds if kind is EvidenceKind.CLIP else None,
            until=until if kind is EvidenceKind.CLIP else None,
        )
        await self._publish(device_topic(call.device_id, Channel.CMD), encode(command), 1)
        logger.info(
            "call %s: operator %d asked device %s for a %s (upload %s)",
            call_id,
            actor.user_id,
            call.device_id,
            kind.value,
            request.upload_id,
        )
        return request.upload_id

    # --- the device's side ----------------------------------------------------------------------

    def on_message(self, device_id: str, payload: bytes) -> None:
        """A message on a device's upload channel; handled in arrival order by ``run``."""
        self._arrived.put(device_id, payload)

    async def run(self) -> None:
        await self._arrived.run()

    async def _receive(self, device_id: str, payload: bytes) -> None:
        try:
            upload = decode(Upload, payload)
        except ProtocolError as exc:
            found = _UPLOAD_ID_IN_RAW.search(payload[:4096])
            upload_id = found.group(1).decode() if found else None
            logger.warning("device %s: upload %s refused: %s (%s)", device_id, upload_id, exc.reason, exc.detail)
            if upload_id is not None:
                await self._refuse(device_id, upload_id, f"{exc.reason}: {exc.detail}")
            return
        request = await asyncio.to_thread(self._incoming.load, upload.upload_id)
        try:
            if request is None:
                await self._after_the_end(device_id, upload)
            elif upload.type == "unavailable":
                await self._unavailable(device_id, request, upload)
            else:
                await self._chunk(device_id, request, upload)
        except UploadRefused as exc:
            logger.warning("device %s: upload %s refused: %s", device_id, upload.upload_id, exc)
            await self._refuse(device_id, upload.upload_id, str(exc))

    async def _after_the_end(self, device_id: str, upload: Upload) -> None:
        """A chunk for an upload that is not open: a repeat after the server finished it (its
        answer lost), or something never asked for."""
        ext = {EvidenceKind.STILL: "jpg", EvidenceKind.CLIP: "mkv"}[upload.kind]
        stored = await self._store.evidence_at(f"{upload.case_no}/{upload.kind.value}-{upload.upload_id}.{ext}")
        case = await self._store.case_by_id(stored.case_id) if stored is not None else None
        if stored is None or case is None or case.device_id != device_id:
            raise UploadRefused("no such upload")
        if upload.sha256 != stored.sha256:
            raise UploadRefused("this upload is already stored, with another sha256")
        await self._reply(device_id, Command(type="upload.done", upload_id=upload.upload_id, sha256=stored.sha256))

    async def _unavailable(self, device_id: str, request: UploadRequest, upload: Upload) -> None:
        self._check_belongs(device_id, request, upload)
        logger.warning(
            "call %s: device %s has no %s to send: %s", request.call_id, device_id, request.kind, upload.reason
        )
        await asyncio.to_thread(self._incoming.discard, request.upload_id)
        await self._failed(request, upload.reason or "")

    async def _chunk(self, device_id: str, request: UploadRequest, upload: Upload) -> None:
        self._check_belongs(device_id, request, upload)
        declared: dict[str, Any] = {name: _jsonable(getattr(upload, name)) for name in _DECLARED}
        if request.declared is None:
            request.declared = declared
            await asyncio.to_thread(self._incoming.save, request)
        elif request.declared != declared:
            await self._give_up(request, "the file changed during its upload")
        size = int(declared["size"])
        have = await asyncio.to_thread(self._incoming.received, request.upload_id)
        offset = upload.offset or 0
        if offset > have:
            reason = f"chunk at byte {offset} out of order: expected byte {have}"
            logger.warning("device %s: upload %s: %s", device_id, request.upload_id, reason)
            await self._reply(
                device_id, Command(type="upload.ack", upload_id=request.upload_id, offset=have, reason=reason)
            )
            return
        if offset == have and have < size:
            have = await asyncio.to_thread(self._incoming.append, request.upload_id, offset, upload.chunk())
        # A chunk before the end is a repeat (the device resuming): the answer says where to go on.
        if have < size:
            await self._reply(device_id, Command(type="upload.ack", upload_id=request.upload_id, offset=have))
            return
        await self._finish(device_id, request, str(declared["sha256"]))

    async def _finish(self, device_id: str, request: UploadRequest, sha256: str) -> None:
        digest = await asyncio.to_thread(self._incoming.digest, request.upload_id)
        if digest != sha256:
            await self._give_up(request, f"sha256 mismatch: received {digest}")
        received = self._incoming.received_file(request.upload_id)
        if problem := await asyncio.to_thread(_content_problem, request.kind, received):
            await self._give_up(request, problem)
        relative = f"{request.case_no}/{request.file_name()}"
        target = self._store.evidence_dir / relative
        try:
            await asyncio.to_thread(self._incoming.place, request.upload_id, target)
        except FileExistsError:
            # The same file is this upload, placed before the server stopped; another is never replaced.
            if await asyncio.to_thread(sha256_of, target) != digest:
                await self._give_up(request, "a file of that name is already stored")
        # Recorded already if the server stopped between this and answering the device.
        evidence = await self._store.evidence_at(relative) or await self._store.add_file(
            self._evidence(device_id, request, relative, digest),
            device_actor(device_id),
            upload_id=request.upload_id,
            requested_by=request.operator_id,
        )
        await asyncio.to_thread(self._incoming.discard, request.upload_id)
        await self._reply(device_id, Command(type="upload.done", upload_id=request.upload_id, sha256=digest))
        logger.info(
            "call %s: %s %s stored as evidence %d (sha256 %s), asked for by operator %d",
            request.call_id,
            request.kind,
            request.upload_id,
            evidence.id,
            digest,
            request.operator_id,
        )
        event = {
            "type": "evidence.new",
            "upload_id": request.upload_id,
            "evidence": evidence_json(evidence, request.case_no),
        }
        self._hub.deliver(request.unit, json.dumps(event, ensure_ascii=False))

    def _evidence(self, device_id: str, request: UploadRequest, relative: str, digest: str) -> Evidence:
        declared = request.declared or {}
        return Evidence(
            case_id=request.case_id,
            call_id=request.call_id,
            kind=request.kind,
            path=relative,
            sha256=digest,
            size_bytes=int(declared["size"]),
            media_start=_time(declared["captured_at"]),
            media_end=_time(declared["captured_until"] or declared["captured_at"]),
            created_at=now_utc(),
            operator_id=request.operator_id,
            note=f"upload {request.upload_id} from {device_id}",
        )

    def _check_belongs(self, device_id: str, request: UploadRequest, upload: Upload) -> None:
        """An upload is refused, and the real one left alone, unless it is the one asked for."""
        if request.device_id != device_id:
            raise UploadRefused("not this device's upload")
        if (upload.case_no, upload.call_id, upload.kind.value) != (request.case_no, request.call_id, request.kind):
            raise UploadRefused("not the case, call or kind this upload was asked for")

    async def _give_up(self, request: UploadRequest, reason: str) -> None:
        """The upload is wrong beyond repair: what was received goes, the console is told."""
        await asyncio.to_thread(self._incoming.discard, request.upload_id)
        await self._failed(request, reason)
        raise UploadRefused(reason)

    async def _failed(self, request: UploadRequest, reason: str) -> None:
        failed = {"call_id": request.call_id, "upload_id": request.upload_id, "kind": request.kind, "reason": reason}
        await self._store.log(request.case_id, device_actor(request.device_id), "evidence.failed", failed, now_utc())
        event = {
            "type": "evidence.failed",
            "upload": {
                "upload_id": request.upload_id,
                "kind": request.kind,
                "call_id": request.call_id,
                "case_no": request.case_no,
                "reason": reason,
            },
        }
        self._hub.deliver(request.unit, json.dumps(event, ensure_ascii=False))

    async def _refuse(self, device_id: str, upload_id: str, reason: str) -> None:
        await self._reply(device_id, Command(type="upload.refused", upload_id=upload_id, reason=reason[:120]))

    async def _reply(self, device_id: str, command: Command) -> None:
        await self._publish(device_topic(device_id, Channel.CMD), encode(command), 1)


def evidence_json(evidence: Evidence, case_no: str) -> dict[str, Any]:
    """An evidence file as the console shows it."""
    return {
        "id": evidence.id,
        "case_id": evidence.case_id,
        "case_no": case_no,
        "call_id": evidence.call_id,
        "kind": evidence.kind,
        "file": evidence.path,
        "url": f"/api/evidence/{evidence.id}",
        "sha256": evidence.sha256,
        "size_bytes": evidence.size_bytes,
        "media_start": utc_iso(evidence.media_start) if evidence.media_start else None,
        "media_end": utc_iso(evidence.media_end) if evidence.media_end else None,
        "operator_id": evidence.operator_id,
        "note": evidence.note,
        "party_id": evidence.party_id,  # a party's phone: its call, a still of it, or its photo
        "meta": evidence.meta,
    }


def _content_problem(kind: str, path: Path) -> str | None:
    """What a whole upload is not, though its hash is the declared one (a unit's bug or a stranger
    with its certificate): a still must open as a JPEG; a clip must at least be Matroska (decoding
    it would cost seconds). Blocking."""
    with path.open("rb") as f:
        head = f.read(4)
    if kind == EvidenceKind.STILL:
        if not head.startswith(JPEG_MAGIC):
            return "照片不是JPEG格式，请重新取证 (the still is no JPEG)"
        problem = image_problem(path)
        return f"照片{problem}" if problem else None
    if head != MATROSKA_MAGIC:
        return "视频不是Matroska格式，请重新取证 (the clip is no Matroska file)"
    return None


def _jsonable(value: object) -> object:
    return utc_iso(value) if isinstance(value, datetime) else value


def _time(value: object) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
