"""Stills and clips on their way to the server: kept on disk until the server has them, sent in
chunks, resumed from wherever the server says it stopped.

An upload is two files in ``data_dir/uploads``: the evidence itself and a JSON description
written after it, so a device that restarts finds every upload it had not finished. One upload
goes at a time, oldest first. After starting or resuming (a new link, a silence from the server)
the device sends one chunk and waits: the server's ``upload.ack`` names the next byte it expects,
and from there a window of chunks is kept in flight, at no more than ``upload_kbps`` so that the
live video keeps most of a 4G uplink. The files are deleted only when the server confirms it
stored the same SHA-256, or refuses the upload for good.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from device.evidence.files import write_atomically
from protocol.messages import CHUNK_BYTES, CONTENT_TYPES, Command, EvidenceKind, Upload, encode
from protocol.topics import Channel

logger = logging.getLogger(__name__)

Publish = Callable[[Channel, bytes], Awaitable[bool]]

WINDOW_CHUNKS = 8
FIRST_WAIT_S = 5.0  # no word from the server this long: send again from its last offset
LONGEST_WAIT_S = 60.0


@dataclass(frozen=True)
class PendingUpload:
    """What the server asked for, and what the device made of it: enough to rebuild every chunk."""

    upload_id: str
    kind: EvidenceKind
    call_id: str
    case_no: str
    size: int
    sha256: str
    captured_at: datetime
    captured_until: datetime | None = None

    def chunk(self, offset: int, data: bytes) -> Upload:
        return Upload(
            type="chunk",
            upload_id=self.upload_id,
            kind=self.kind,
            call_id=self.call_id,
            case_no=self.case_no,
            content_type=CONTENT_TYPES[self.kind],
            size=self.size,
            sha256=self.sha256,
            captured_at=self.captured_at,
            captured_until=self.captured_until,
            offset=offset,
            data=base64.b64encode(data).decode(),
        )

    def to_json(self) -> bytes:
        values = asdict(self)
        values["captured_at"] = self.captured_at.isoformat()
        values["captured_until"] = self.captured_until.isoformat() if self.captured_until else None
        return json.dumps(values).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> PendingUpload:
        values = json.loads(raw)
        values["kind"] = EvidenceKind(values["kind"])
        values["captured_at"] = datetime.fromisoformat(values["captured_at"])
        until = values["captured_until"]
        values["captured_until"] = datetime.fromisoformat(until) if until else None
        return cls(**values)


class UploadFolder:
    """The pending uploads on disk. Blocking: called on worker threads."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def data_path(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.data"

    def add(self, upload: PendingUpload, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.data_path(upload.upload_id), data)
        write_atomically(self.folder / f"{upload.upload_id}.json", upload.to_json())

    def pending(self) -> list[PendingUpload]:
        found = []
        for meta in sorted(self.folder.glob("*.json")):  # upload ids sort by request time
            upload_id = meta.stem
            if not self.data_path(upload_id).exists():
                meta.unlink()  # a description without its file cannot be sent; never happens after add
                continue
            try:
                found.append(PendingUpload.from_json(meta.read_bytes()))
            except (ValueError, KeyError, TypeError) as exc:
                logger.error("upload %s: unreadable description (%s); dropped", upload_id, exc)
                self.remove(upload_id)
        return found

    def read(self, upload_id: str, offset: int) -> bytes:
        with self.data_path(upload_id).open("rb") as f:
            f.seek(offset)
            return f.read(CHUNK_BYTES)

    def remove(self, upload_id: str) -> None:
        (self.folder / f"{upload_id}.json").unlink(missing_ok=True)
        self.data_path(upload_id).unlink(missing_ok=True)


class _Progress:
    """The server's replies about the upload being sent."""

    def __init__(self) -> None:
        self.offset: int | None = None  # the next byte the server expects, once it has said
        self.reason: str | None = None  # why it did not take a chunk
        self.done: str | None = None  # the SHA-256 it stored
        self.refused: str | None = None
        self.changed = asyncio.Event()


class Uploader:
    def __init__(self, folder: Path, publish: Publish, link_up: asyncio.Event, rate_kbps: int) -> None:
        self._folder = UploadFolder(folder)
        self._publish = publish
        self._link_up = link_up
        self._bytes_per_s = rate_kbps * 1000 / 8
        self._next_send = 0.0
        self._wake = asyncio.Event()
        self._progress: dict[str, _Progress] = {}

    async def has(self, upload_id: str) -> bool:
        """Whether this upload is still on its way (a repeated request must not make a second one)."""
        return await asyncio.to_thread(self._folder.data_path(upload_id).exists)

    async def add(self, upload: PendingUpload, data: bytes) -> None:
        await asyncio.to_thread(self._folder.add, upload, data)
        logger.info(
            "upload %s: %s of %d bytes for case %s queued",
            upload.upload_id,
            upload.kind.value,
            upload.size,
            upload.case_no,
        )
        self._wake.set()

    async def tell_unavailable(self, upload: Upload) -> None:
        """Say once that what was asked for cannot be had; waits for the link if it is down."""
        while True:
            await self._link_up.wait()
            if await self._publish(Channel.UPLOAD, encode(upload)):
                return
            await asyncio.sleep(1)

    def on_reply(self, command: Command) -> None:
        """``upload.ack``, ``upload.done`` or ``upload.refused`` from the server."""
        progress = self._progress.get(command.upload_id or "")
        if progress is None:
            logger.info("upload %s: %s for an upload not being sent; ignored", command.upload_id, command.type)
            return
        if command.type == "upload.ack":
            progress.offset = command.offset
            progress.reason = command.reason or progress.reason
        elif command.type == "upload.done":
            progress.done = command.sha256
        else:
            progress.refused = command.reason
        progress.changed.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()  # before looking: an upload added meanwhile wakes the next wait
            pending = await asyncio.to_thread(self._folder.pending)
            for upload in pending:
                try:
                    await self._send(upload)
                except OSError as exc:  # its file went missing or unreadable: nothing left to send
                    logger.error("upload %s: cannot be read (%s); dropped", upload.upload_id, exc)
                    await asyncio.to_thread(self._folder.remove, upload.upload_id)
            if not pending:
                await self._wake.wait()

    async def _send(self, upload: PendingUpload) -> None:
        progress = self._progress[upload.upload_id] = _Progress()
        try:
            await self._send_until_answered(upload, progress)
        finally:
            del self._progress[upload.upload_id]
        if progress.refused is not None:
            logger.error("upload %s: refused by the server: %s", upload.upload_id, progress.refused)
        elif progress.done != upload.sha256:
            logger.error("upload %s: the server stored a different file (sha256 %s)", upload.upload_id, progress.done)
        else:
            logger.info("upload %s: stored by the server (sha256 %s)", upload.upload_id, upload.sha256)
        await asyncio.to_thread(self._folder.remove, upload.upload_id)

    async def _send_until_answered(self, upload: PendingUpload, progress: _Progress) -> None:
        acked = 0  # where the server is, as far as the device knows
        sent = 0
        window = 1  # one chunk until the server has said where it is
        wait_s = FIRST_WAIT_S
        while progress.done is None and progress.refused is None:
            if not self._link_up.is_set():
                await self._link_up.wait()
                logger.info("upload %s: link back; resuming at byte %d of %d", upload.upload_id, acked, upload.size)
                sent, window = acked, 1
            while sent < upload.size and sent < acked + window * CHUNK_BYTES:
                data = await asyncio.to_thread(self._folder.read, upload.upload_id, sent)
                await self._throttle(len(data))
                if not await self._publish(Channel.UPLOAD, encode(upload.chunk(sent, data))):
                    break  # the link dropped: the server's offset is where to go on from
                sent += len(data)
            try:
                async with asyncio.timeout(wait_s):
                    await progress.changed.wait()
            except TimeoutError:
                logger.warning(
                    "upload %s: no answer from the server for %.0f s; sending again from byte %d",
                    upload.upload_id,
                    wait_s,
                    acked,
                )
                sent, window = acked, 1
                wait_s = min(LONGEST_WAIT_S, wait_s * 2)
                continue
            progress.changed.clear()
            wait_s = FIRST_WAIT_S
            if progress.offset is not None:
                if progress.offset > sent:
                    logger.info(
                        "upload %s: the server already has %d bytes; going on from there",
                        upload.upload_id,
                        progress.offset,
                    )
                acked, window = progress.offset, WINDOW_CHUNKS
                if progress.reason is not None:
                    logger.warning("upload %s: %s; resuming at byte %d", upload.upload_id, progress.reason, acked)
                    progress.reason = None
                    sent = acked
                sent = max(sent, acked)

    async def _throttle(self, size: int) -> None:
        now = time.monotonic()
        self._next_send = max(now, self._next_send)
        await asyncio.sleep(self._next_send - now)
        self._next_send += size / self._bytes_per_s
