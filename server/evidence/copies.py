"""The masked copy of an evidence file, made once and kept: what the insurers' API and the
parties' page serve instead of the original.

``MaskedCopies.masked_copy(evidence_id)`` is the one call. A copy is made the first time it is
asked for, per original and masking (``Masker.version``: the method, the models and the parties'
plates as they stand; a plate corrected later makes a new copy), under ``masked/{case_no}/`` in
the evidence folder, and recorded in ``masked_copies`` with the original's id and SHA-256 and the
masking's every detail. The original is only read, and only after its SHA-256 is checked against
its row: a file that changed since it was stored is refused, not masked. Masking is seconds of
CPU for a still and about half the length of a recording, so it runs on one thread of its own
(one copy at a time per worker), and two requests for the same copy wait for one making. Two
workers making the same copy at once both finish; the row that lands first is kept.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from device.ocr.errors import ImageError, ModelError
from server.calls.recorder import sha256_of
from server.cases import now_utc
from server.db.masked import MaskedCopy
from server.db.models import Case, Evidence, Party
from server.errors import Conflict, NotFound, Unavailable
from server.evidence.masked_video import mask_video, video_format
from server.evidence.masking import Masker, party_plates

logger = logging.getLogger(__name__)

STILLS = {".jpg", ".jpeg", ".png"}
VIDEOS = {".mkv", ".webm", ".mp4", ".mov"}
# Sound alone (a degraded call's samples) shows nobody; a recording's sound is not masked either.
SOUNDS = {".ogg": "audio/ogg", ".opus": "audio/ogg", ".wav": "audio/wav"}
MASKED_DIR = "masked"

_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="masking")
_masker: Masker | None = None
_masker_lock = threading.Lock()


def shared_masker() -> Masker:
    """The worker's one Masker (its models take a few MB and a second to load), loaded when first needed."""
    global _masker
    with _masker_lock:
        if _masker is None:
            _masker = Masker()
        return _masker


@dataclass(frozen=True)
class _Original:
    evidence_id: int
    case_no: str
    path: Path
    sha256: str
    kept: frozenset[str]


class MaskedCopies:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], evidence_dir: Path) -> None:
        self._sessions = sessions
        self.evidence_dir = evidence_dir
        self._making: dict[tuple[int, str], asyncio.Task[MaskedCopy]] = {}

    async def masked_copy(self, evidence_id: int) -> tuple[Path, str]:
        """The file to give out for evidence ``evidence_id`` and its media type: the masked copy,
        made now if there is none yet for this masking. NotFound for no such evidence; Conflict
        for a file that cannot be masked (not a picture, a video or sound; undecodable; changed
        since it was stored); Unavailable when the models are missing."""
        original = await self._original(evidence_id)
        suffix = original.path.suffix.lower()
        if suffix in SOUNDS:
            return original.path, SOUNDS[suffix]
        if suffix not in STILLS | VIDEOS:
            raise Conflict(f"这类证据文件不能遮挡后提供 (a {suffix or 'nameless'} file has no masked copy)")
        loop = asyncio.get_running_loop()
        try:
            masker = await loop.run_in_executor(_pool, shared_masker)
        except ModelError as exc:
            logger.error("masking is off: %s", exc)
            raise Unavailable("遮挡模型不可用，请联系管理员 (the masking models are missing)") from None
        key = (evidence_id, masker.version(original.kept))
        copy = await self._existing(*key)
        if copy is None:
            task = self._making.get(key)
            if task is None:
                task = asyncio.create_task(self._make(masker, original, key[1]))
                self._making[key] = task
                task.add_done_callback(lambda _: self._making.pop(key, None))
            copy = await asyncio.shield(task)
        return self.evidence_dir / copy.path, copy.media_type

    async def copies_of(self, evidence_id: int) -> list[MaskedCopy]:
        """Every masked copy made of one original, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(MaskedCopy).where(MaskedCopy.evidence_id == evidence_id).order_by(MaskedCopy.id)
            )
            return list(rows.all())

    async def _original(self, evidence_id: int) -> _Original:
        async with self._sessions() as session:
            evidence = await session.get(Evidence, evidence_id)
            case = None if evidence is None else await session.get(Case, evidence.case_id)
            if evidence is None or case is None:
                raise NotFound("没有这份证据 (no such evidence)")
            plates = (await session.scalars(select(Party.plate).where(Party.case_id == case.id))).all()
        return _Original(
            evidence.id, case.case_no, self.evidence_dir / evidence.path, evidence.sha256, party_plates(list(plates))
        )

    async def _existing(self, evidence_id: int, masking: str) -> MaskedCopy | None:
        async with self._sessions() as session:
            copy = await session.scalar(
                select(MaskedCopy).where(MaskedCopy.evidence_id == evidence_id, MaskedCopy.masking == masking)
            )
        if copy is not None and not (self.evidence_dir / copy.path).is_file():
            logger.error("masked copy %s of evidence %d is on record but not on disk", copy.path, evidence_id)
            raise Conflict("遮挡副本文件缺失，请联系管理员 (the masked copy's file is missing)")
        return copy

    async def _make(self, masker: Masker, original: _Original, masking: str) -> MaskedCopy:
        loop = asyncio.get_running_loop()
        copy = await loop.run_in_executor(_pool, self._made, masker, original, masking)
        try:
            async with self._sessions.begin() as session:
                session.add(copy)
        except IntegrityError:  # another worker's copy landed first: keep theirs
            (self.evidence_dir / copy.path).unlink(missing_ok=True)
            theirs = await self._existing(original.evidence_id, masking)
            if theirs is None:
                raise
            return theirs
        logger.info("masked copy %s made of evidence %d (%s)", copy.path, original.evidence_id, masking)
        return copy

    def _made(self, masker: Masker, original: _Original, masking: str) -> MaskedCopy:
        """The copy's file written and its row, not yet stored; on the masking thread."""
        if not original.path.is_file() or sha256_of(original.path) != original.sha256:
            logger.error("evidence %d (%s) does not match its SHA-256 on record", original.evidence_id, original.path)
            raise Conflict("证据文件与登记的SHA-256不符，未提供副本 (the evidence file no longer matches its hash)")
        still = original.path.suffix.lower() in STILLS
        suffix, media_type = (".jpg", "image/jpeg") if still else (video_format().suffix, video_format().media_type)
        relative = f"{MASKED_DIR}/{original.case_no}/{original.evidence_id}-{masking}-{secrets.token_hex(4)}{suffix}"
        target = self.evidence_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            found: dict[str, Any]
            if still:
                found = masker.mask_still(original.path, target, original.kept)
            else:
                found = mask_video(masker, original.path, target, original.kept)
            digest = sha256_of(target)
        except (ImageError, av.error.FFmpegError, ValueError, OSError) as exc:
            target.unlink(missing_ok=True)
            logger.warning("evidence %d cannot be masked: %s", original.evidence_id, exc)
            raise Conflict("证据文件无法解码，不能遮挡 (the evidence file does not decode)") from None
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return MaskedCopy(
            evidence_id=original.evidence_id,
            original_sha256=original.sha256,
            masking=masking,
            path=relative,
            sha256=digest,
            size_bytes=target.stat().st_size,
            media_type=media_type,
            method=masker.method | {"kept_plates": sorted(original.kept)},
            found=found,
            created_at=now_utc(),
        )
