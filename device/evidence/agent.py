"""Evidence the dispatcher asks the unit for: full-resolution stills, and the seconds before the press
or before the dispatcher's click.

A still is taken with the camera's still configuration while the call's video goes on, encoded
as a JPEG (with its capture time in EXIF) on a worker thread, and queued for upload with the
request's id, so that the server ties it to the dispatcher who asked. A clip comes from the
window frozen at the press, or, when the request names the time of the click (``until``), from
the ring that goes on filling during the call (``device.evidence.pretrigger``). What cannot be
provided (a failed camera, no video of that time) is said once, so the console does not wait for
ever.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from PIL import Image

from device.config import DeviceConfig
from device.evidence.pretrigger import ClipUnavailable, Pretrigger
from device.evidence.uploads import PendingUpload, Publish, Uploader
from device.hal.camera import Camera, Frame
from protocol.messages import Command, EvidenceKind, Upload, utc_iso
from runtime.version import FIRMWARE

logger = logging.getLogger(__name__)

# EXIF tags (CIPA DC-008): where the time a picture was taken lives.
_EXIF_IFD = 0x8769
_SOFTWARE = 0x0131
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_SUBSEC_TIME_ORIGINAL = 0x9291


def still_jpeg(frame: Frame, taken_at: datetime, quality: int) -> bytes:
    """The still as a JPEG, its capture time (UTC) and the firmware in EXIF."""
    exif = Image.Exif()
    exif[_SOFTWARE] = f"kuaichu {FIRMWARE}"
    taken = exif.get_ifd(_EXIF_IFD)
    taken[_DATETIME_ORIGINAL] = taken_at.astimezone(UTC).strftime("%Y:%m:%d %H:%M:%S")
    taken[_OFFSET_TIME_ORIGINAL] = "+00:00"
    taken[_SUBSEC_TIME_ORIGINAL] = f"{taken_at.microsecond // 1000:03d}"
    out = io.BytesIO()
    Image.fromarray(frame).save(out, "JPEG", quality=quality, exif=exif)
    return out.getvalue()


class EvidenceAgent:
    def __init__(self, cfg: DeviceConfig, camera: Camera, publish: Publish, link_up: asyncio.Event) -> None:
        self._cfg = cfg
        self._camera = camera
        data_dir = cfg.device.data_dir
        self.uploader = Uploader(data_dir / "uploads", publish, link_up, cfg.evidence.upload_kbps)
        self.pretrigger = Pretrigger(camera, cfg.evidence, data_dir / "pretrigger")
        self._handling: set[asyncio.Task[None]] = set()
        self._requests: set[str] = set()  # upload ids asked for since start: a repeated request is one

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.uploader.run(), name="uploads")
                group.create_task(self.pretrigger.run(), name="pretrigger")
        finally:
            for task in self._handling:
                task.cancel()

    def freeze(self, report_id: str, at: datetime) -> None:
        """A report was made at ``at``: keep the video from before it."""
        self._spawn(self.pretrigger.freeze(report_id, at))

    def on_command(self, command: Command) -> None:
        if command.type in ("still.request", "clip.request"):
            self._spawn(self._request(command))
        else:
            self.uploader.on_reply(command)

    async def _request(self, command: Command) -> None:
        upload_id = command.upload_id or ""
        if upload_id in self._requests or await self.uploader.has(upload_id):
            logger.info("upload %s: repeated request ignored", upload_id)
            return
        self._requests.add(upload_id)
        kind = EvidenceKind.STILL if command.type == "still.request" else EvidenceKind.CLIP
        logger.info("upload %s: %s asked for, case %s", upload_id, kind.value, command.case_no)
        try:
            if kind is EvidenceKind.STILL:
                upload, data = await self._still(command)
            else:
                upload, data = await self._clip(command)
        except ClipUnavailable as exc:
            logger.warning("upload %s: no clip to send: %s", upload_id, exc)
            await self._unavailable(command, kind, str(exc))
            return
        except Exception as exc:  # whatever the camera driver raised, the dispatcher hears why
            logger.exception("upload %s: no %s to send", upload_id, kind.value)
            await self._unavailable(command, kind, f"the unit could not make it: {exc}")
            return
        await self.uploader.add(upload, data)

    async def _unavailable(self, command: Command, kind: EvidenceKind, reason: str) -> None:
        notice = Upload(
            type="unavailable",
            upload_id=command.upload_id or "",
            kind=kind,
            call_id=command.call_id or "",
            case_no=command.case_no or "",
            reason=reason[:120],
        )
        await self.uploader.tell_unavailable(notice)

    async def _still(self, command: Command) -> tuple[PendingUpload, bytes]:
        frame = await self._camera.still()
        taken_at = datetime.now(UTC)
        data = await asyncio.to_thread(still_jpeg, frame, taken_at, self._cfg.evidence.still_quality)
        return await self._pending(command, EvidenceKind.STILL, data, taken_at, None), data

    async def _clip(self, command: Command) -> tuple[PendingUpload, bytes]:
        if command.until is None:
            clip = await self.pretrigger.clip(command.report_id or "", command.seconds or 1)
            logger.info("upload %s: %d frames from before the press", command.upload_id, clip.frames)
        else:
            clip = await self.pretrigger.before(command.until, command.seconds or 1)
            logger.info("upload %s: %d frames up to %s", command.upload_id, clip.frames, utc_iso(command.until))
        return await self._pending(command, EvidenceKind.CLIP, clip.data, clip.first, clip.last), clip.data

    async def _pending(
        self, command: Command, kind: EvidenceKind, data: bytes, first: datetime, last: datetime | None
    ) -> PendingUpload:
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        return PendingUpload(
            upload_id=command.upload_id or "",
            kind=kind,
            call_id=command.call_id or "",
            case_no=command.case_no or "",
            size=len(data),
            sha256=digest,
            captured_at=first,
            captured_until=last,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("evidence task failed", exc_info=task.exception())
