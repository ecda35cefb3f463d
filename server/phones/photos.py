"""Photos a party uploads from the web app (the scene, the damage, a licence, a registration), kept as
evidence of the case with the party's id.

An upload is resumable: it gets an id, the phone sends the bytes in chunks each naming its offset,
and after a dropped connection asks where to go on (the length received so far, on disk, so a
restarted worker forgets nothing). The first bytes must be a JPEG, a PNG or a HEIC (by content,
not by name), the size is declared up front and limited. A finished file whose SHA-256 differs
from the one declared is discarded; a good one is linked into the case's evidence folder (never
over another file), with its EXIF time and position as the photo said (Pillow; a HEIC is kept as
it is, EXIF only where Pillow reads it), and shows on the dispatcher's case page at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.calls.store import CallStore
from server.calls.upload_files import IncomingFolder
from server.calls.uploads import evidence_json
from server.cases import now_utc
from server.casework.events import phone_actor
from server.config import PhoneSection
from server.db.models import Case, Evidence
from server.errors import Conflict, Invalid, NotFound
from server.live_feed import CaseHub
from server.portal.access import Visitor
from server.portal.attachments import image_problem

logger = logging.getLogger(__name__)

KINDS = {"scene": "现场", "damage": "车辆损失", "licence": "驾驶证", "registration": "行驶证", "other": "其他"}
CHUNK_MAX = 512 * 1024
UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{16,40}$")
_HEIC_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis")
LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # EXIF times carry no zone; a Kunming phone's clock is Beijing time
NOT_A_PHOTO = "只能上传照片（JPEG、PNG或HEIC格式），请重新选择 (not a JPEG, PNG or HEIC photo)"


def photo_type(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) from a file's first bytes, or None if it is no photo we keep."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIC_BRANDS:
        return "image/heic", "heic"
    return None


def exif_of(path: Path) -> dict[str, Any] | None:
    """The photo's own time (Beijing time, as ISO) and GPS position (WGS-84, as the phone wrote it),
    where its EXIF has them; None if Pillow cannot read the file's EXIF. Blocking."""
    try:
        with Image.open(path) as image:
            exif = image.getexif()
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    out: dict[str, Any] = {}
    details = exif.get_ifd(0x8769)
    taken = details.get(36867) or details.get(36868) or exif.get(306)
    if isinstance(taken, str):
        try:
            local = datetime.strptime(taken.strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=LOCAL_TZ)
            out["taken_at"] = local.astimezone(UTC).isoformat().replace("+00:00", "Z")
            out["taken_at_local"] = taken.strip("\x00 ")
        except ValueError:
            out["taken_at_raw"] = taken[:40]
    gps = exif.get_ifd(0x8825)
    try:
        if 2 in gps and 4 in gps:
            lat, lon = _degrees(gps[2]), _degrees(gps[4])
            if gps.get(1) == "S":
                lat = -lat
            if gps.get(3) == "W":
                lon = -lon
            out["gps"] = {"lat": round(lat, 7), "lon": round(lon, 7), "datum": "WGS-84 (as EXIF)"}
    except (TypeError, ValueError, ZeroDivisionError):
        out["gps_raw"] = str(gps)[:120]
    if exif.get(271) or exif.get(272):
        out["camera"] = f"{exif.get(271, '')} {exif.get(272, '')}".strip()[:60]
    return out


def _degrees(value: Any) -> float:
    d, m, s = (float(v) for v in value)
    return d + m / 60 + s / 3600


@dataclass
class PhotoUpload:
    upload_id: str
    case_id: int
    case_no: str
    unit: str
    party_id: int
    phone: str
    name: str
    kind: str
    size: int
    sha256: str | None
    started_at: str
    content_type: str | None = None


class PhotoUploads:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cfg: PhoneSection,
        evidence_dir: Path,
        folder: Path,
        hub: CaseHub,
    ) -> None:
        self._sessions = sessions
        self._cfg = cfg
        self._store = CallStore(sessions, evidence_dir)
        self._incoming = IncomingFolder(folder)
        self._hub = hub
        self._locks: dict[str, asyncio.Lock] = {}

    async def start(self, visitor: Visitor, name: str, kind: str, size: int, sha256: str | None) -> dict[str, Any]:
        case_id, party_id = _party_of(visitor)
        if kind not in KINDS:
            raise Invalid("请选择照片内容：现场、车辆损失、驾驶证或行驶证 (unknown photo kind)")
        limit = int(self._cfg.photo_max_mb * 1024 * 1024)
        if size <= 0 or size > limit:
            raise Invalid(f"照片太大（不能超过{self._cfg.photo_max_mb:g}MB），请压缩后再上传 (photo too large)")
        async with self._sessions() as session:
            case = await session.get(Case, case_id)
            count = await session.scalar(
                select(func.count()).where(Evidence.case_id == case_id, Evidence.party_id == party_id)
            )
        if case is None:
            raise NotFound("没有找到您的案件，请重新登录 (no case for this session)")
        if (count or 0) >= self._cfg.photos_per_party:
            raise Conflict(f"每位当事人最多上传{self._cfg.photos_per_party}张照片 (too many photos)")
        upload = PhotoUpload(
            secrets.token_urlsafe(18),
            case.id,
            case.case_no,
            case.unit_adcode,
            party_id,
            visitor.phone,
            name[:80],
            kind,
            size,
            sha256,
            now_utc().isoformat(),
        )
        await asyncio.to_thread(self._save, upload)
        return {"upload_id": upload.upload_id, "offset": 0, "chunk_max": CHUNK_MAX}

    async def offset(self, visitor: Visitor, upload_id: str) -> dict[str, Any]:
        upload = await self._mine(visitor, upload_id)
        return {"upload_id": upload_id, "offset": await asyncio.to_thread(self._incoming.received, upload.upload_id)}

    async def chunk(self, visitor: Visitor, upload_id: str, offset: int, data: bytes) -> dict[str, Any]:
        """Append ``data`` at ``offset``; the answer's offset is where the next chunk starts, and
        once the last one is in, the evidence it became."""
        if len(data) > CHUNK_MAX:
            raise Invalid("分片太大 (chunk too large)")
        upload = await self._mine(visitor, upload_id)
        async with self._locks.setdefault(upload_id, asyncio.Lock()):
            have = await asyncio.to_thread(self._incoming.received, upload_id)
            if offset != have:
                # A repeat or a gap after a dropped connection: say where to go on.
                return {"upload_id": upload_id, "offset": have, "resend": True}
            if have + len(data) > upload.size:
                await self._give_up(upload_id)
                raise Invalid("照片比声明的大，请重新选择上传 (more bytes than declared)")
            if have == 0:
                found = photo_type(data[:16])
                if found is None:
                    await self._give_up(upload_id)
                    raise Invalid(NOT_A_PHOTO)
                upload.content_type = found[0]
                await asyncio.to_thread(self._save, upload)
            if data:
                have = await asyncio.to_thread(self._incoming.append, upload_id, offset, data)
            if have < upload.size:
                return {"upload_id": upload_id, "offset": have}
            evidence = await self._finish(upload)
        self._locks.pop(upload_id, None)
        return {"upload_id": upload_id, "offset": have, "done": True, "evidence": photo_json(evidence)}

    async def _finish(self, upload: PhotoUpload) -> Evidence:
        digest = await asyncio.to_thread(self._incoming.digest, upload.upload_id)
        if upload.sha256 is not None and digest != upload.sha256.lower():
            await self._give_up(upload.upload_id)
            raise Invalid("照片在上传中损坏，请重新上传 (sha256 mismatch)")
        # Its first bytes said JPEG or PNG; the whole must open as one. Pillow reads no HEIC here,
        # so a HEIC is kept on its first bytes alone.
        if upload.content_type != "image/heic":
            problem = await asyncio.to_thread(image_problem, self._incoming.received_file(upload.upload_id))
            if problem is not None:
                await self._give_up(upload.upload_id)
                raise Invalid(f"照片{problem}")
        extension = {"image/jpeg": "jpg", "image/png": "png", "image/heic": "heic"}[upload.content_type or ""]
        relative = f"{upload.case_no}/photo-{upload.upload_id}.{extension}"
        target = self._store.evidence_dir / relative
        # Placed before a restart already: the same upload id, the same bytes.
        with contextlib.suppress(FileExistsError):
            await asyncio.to_thread(self._incoming.place, upload.upload_id, target)
        exif = await asyncio.to_thread(exif_of, target)
        taken = _time((exif or {}).get("taken_at"))
        meta = {
            "name": upload.name,
            "type": upload.content_type,
            "kind": upload.kind,
            "size": upload.size,
            "exif": exif,
            "upload_id": upload.upload_id,
        }
        evidence = await self._store.evidence_at(relative) or await self._store.add_file(
            Evidence(
                case_id=upload.case_id,
                kind="photo",
                path=relative,
                sha256=digest,
                size_bytes=upload.size,
                media_start=taken,
                media_end=taken,
                created_at=now_utc(),
                note=f"{KINDS[upload.kind]}照片，当事人上传"[:120],
                party_id=upload.party_id,
                meta=meta,
            ),
            phone_actor(upload.phone),
            party_id=upload.party_id,
            meta=meta,
        )
        await asyncio.to_thread(self._incoming.discard, upload.upload_id)
        logger.info(
            "case %s: party %d uploaded photo %d (sha256 %s)", upload.case_no, upload.party_id, evidence.id, digest
        )
        event: dict[str, Any] = {"type": "evidence.new", "upload_id": upload.upload_id}
        event["evidence"] = evidence_json(evidence, upload.case_no)
        self._hub.deliver(upload.unit, json.dumps(event, ensure_ascii=False))
        return evidence

    async def _mine(self, visitor: Visitor, upload_id: str) -> PhotoUpload:
        upload = await asyncio.to_thread(self._load, upload_id) if UPLOAD_ID.match(upload_id) else None
        if upload is None or upload.party_id != visitor.party_id or upload.case_id != visitor.case_id:
            raise NotFound("上传已失效，请重新选择照片上传 (no such upload)")
        return upload

    async def _give_up(self, upload_id: str) -> None:
        await asyncio.to_thread(self._incoming.discard, upload_id)
        self._locks.pop(upload_id, None)

    def _save(self, upload: PhotoUpload) -> None:
        self._incoming.folder.mkdir(parents=True, exist_ok=True)
        path = self._incoming.folder / f"{upload.upload_id}.json"
        partial = path.with_suffix(".json.new")
        partial.write_text(json.dumps(asdict(upload)))
        partial.replace(path)

    def _load(self, upload_id: str) -> PhotoUpload | None:
        try:
            return PhotoUpload(**json.loads((self._incoming.folder / f"{upload_id}.json").read_text()))
        except FileNotFoundError:
            return None


def photo_json(e: Evidence) -> dict[str, Any]:
    meta = e.meta or {}
    return {
        "id": e.id,
        "kind": KINDS.get(str(meta.get("kind")), "照片"),
        "name": meta.get("name"),
        "sha256": e.sha256,
        "size_bytes": e.size_bytes,
        "exif": meta.get("exif"),
    }


def _party_of(visitor: Visitor) -> tuple[int, int]:
    if visitor.case_id is None or visitor.party_id is None:
        raise NotFound("请先登录您的案件，再上传照片 (log in to your case first)")
    return visitor.case_id, visitor.party_id


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
