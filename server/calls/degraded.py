"""The scene of a call whose video cannot connect: stills and sound from the device, over MQTT.

A device whose call has had no video for a while sends, every few seconds, a small JPEG and the
sound since the last one (``SceneSample`` on its ``scene`` channel; ``device.call.degraded``).
Each is checked against its hash and its kind, makes the call ``degraded`` (opening it if no offer
ever got through), is kept as evidence beside the call's recordings the way uploads are (linked
in, never overwriting), and goes to the consoles of the case's unit as ``call.scene``: the call
panel shows the newest still in place of the video and plays the sound.

Samples are handled one at a time: a still and its sound arrive together, and the first sample
of a call opens it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import timedelta
from pathlib import Path

from protocol import ProtocolError
from protocol.messages import SceneSample, decode
from server.calls.manager import CallManager
from server.calls.recorder import sha256_of
from server.calls.store import CallStore
from server.calls.upload_files import IncomingFolder
from server.calls.uploads import evidence_json
from server.cases import now_utc
from server.casework.events import device_actor
from server.db.models import Evidence
from server.live_feed import CaseHub
from server.portal.attachments import image_problem

logger = logging.getLogger(__name__)

# What each sample must be: the file's extension, the evidence kind, and how its bytes begin.
FORMATS: dict[str, tuple[str, str, bytes]] = {
    "still": ("jpg", "scene-still", b"\xff\xd8\xff"),
    "sound": ("ogg", "scene-sound", b"OggS"),
}


class SceneReceiver:
    def __init__(self, calls: CallManager, store: CallStore, hub: CaseHub, folder: Path) -> None:
        self._calls = calls
        self._store = store
        self._hub = hub
        self._incoming = IncomingFolder(folder)
        self._one_at_a_time = asyncio.Lock()
        self._handling: set[asyncio.Task[None]] = set()

    def on_message(self, device_id: str, payload: bytes) -> None:
        task = asyncio.create_task(self._receive(device_id, payload))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)
        task.add_done_callback(_log_failure)

    async def _receive(self, device_id: str, payload: bytes) -> None:
        try:
            sample = decode(SceneSample, payload)
        except ProtocolError as exc:
            logger.warning("device %s: scene sample refused: %s (%s)", device_id, exc.reason, exc.detail)
            return
        async with self._one_at_a_time:
            await self._keep(device_id, sample)

    async def _keep(self, device_id: str, sample: SceneSample) -> None:
        tag = f"call {sample.call_id}: {sample.type} {sample.seq} from device {device_id}"
        data = sample.content()
        extension, kind, magic = FORMATS[sample.type]
        if not data.startswith(magic):
            logger.warning("%s refused: not %s", tag, sample.content_type)
            return
        if sample.type == "still" and (await asyncio.to_thread(image_problem, data)) is not None:
            logger.warning("%s refused: no whole JPEG (cut short or corrupt)", tag)
            return
        digest = hashlib.sha256(data).hexdigest()  # 20 KB at most: no worker thread
        if digest != sample.sha256:
            logger.warning("%s refused: sha256 mismatch, received %s", tag, digest)
            return
        live = await self._calls.degraded(device_id, sample)
        if live is None:
            return
        relative = f"{live.case_no}/scene-{live.call_id}-{sample.seq:05d}.{extension}"
        stored = await self._store.evidence_at(relative)
        if stored is not None:
            if stored.sha256 != digest:
                logger.warning("%s refused: already stored with another sha256", tag)
            return  # else a repeat (QoS 1 delivers at least once)
        if not await asyncio.to_thread(self._place, f"scene-{live.call_id}-{sample.seq}-{sample.type}", data, relative):
            logger.warning("%s refused: another file is stored under its name", tag)
            return
        until = sample.captured_at + timedelta(seconds=sample.duration_s or 0)
        evidence = await self._store.add_file(
            Evidence(
                case_id=live.case_id,
                call_id=live.call_id,
                kind=kind,
                path=relative,
                sha256=digest,
                size_bytes=len(data),
                media_start=sample.captured_at,
                media_end=until,
                created_at=now_utc(),
                note=f"sent by device {device_id} while the video could not connect",
            ),
            device_actor(device_id),
        )
        logger.debug("%s kept as evidence %d", tag, evidence.id)
        event = {"type": "call.scene", "call_id": live.call_id, "evidence": evidence_json(evidence, live.case_no)}
        self._hub.deliver(live.unit, json.dumps(event, ensure_ascii=False))

    def _place(self, name: str, data: bytes, relative: str) -> bool:
        """The bytes into the evidence folder, never over another file; False if the name holds
        different bytes (a file placed before a crash, with the same bytes, is simply kept)."""
        target = self._store.evidence_dir / relative
        self._incoming.discard(name)
        self._incoming.folder.mkdir(parents=True, exist_ok=True)
        self._incoming.append(name, 0, data)
        digest = self._incoming.digest(name)
        try:
            self._incoming.place(name, target)
        except FileExistsError:
            return sha256_of(target) == digest
        finally:
            self._incoming.discard(name)
        return True


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("scene sample handling failed", exc_info=task.exception())
