"""Evidence a browser can play: the consoles' players take the file as stored where Chromium
plays it, and a WebM made from it where it does not.

The call's recording segments (the unit's VP8 as sent and 16 kHz PCM in Matroska) play in
Chromium from the evidence route as they are, seeking included (the route answers byte ranges).
The seconds before the press (``clip``) are the camera's own JPEGs in Matroska (Motion-JPEG), which
no browser decodes: they are encoded once as VP8 in WebM, with each frame's capture time kept, and
the WebM is kept beside the server's other state for the next viewer. The stored evidence file is
never touched; the WebM is a viewing copy, named by the evidence's hash, and can be deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

from server.db.models import Evidence

logger = logging.getLogger(__name__)

NEEDS_WEBM = frozenset({"clip"})
WEBM_BITRATE = 1_500_000


def needs_webm(evidence: Evidence) -> bool:
    return evidence.kind in NEEDS_WEBM


def encode_webm(source: Path, target: Path) -> int:
    """``source``'s video as VP8 in WebM at ``target`` (written under another name first, so that
    a half-written copy is never served); its size. Blocking: run it on a thread."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with av.open(str(source)) as inp, av.open(str(partial), "w", format="webm") as out:
        video_in = inp.streams.video[0]
        video_out = out.add_stream("libvpx", rate=max(1, round(video_in.average_rate or 15)))
        video_out.width, video_out.height = video_in.codec_context.width, video_in.codec_context.height
        video_out.pix_fmt = "yuv420p"
        video_out.bit_rate = WEBM_BITRATE
        video_out.codec_context.time_base = video_in.time_base or Fraction(1, 1000)
        # Realtime speed: a ten-second clip is ready in about a second, and a viewer is waiting.
        video_out.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
        last = -1
        for frame in inp.decode(video_in):
            if frame.pts is None or frame.pts <= last:
                continue  # the encoder takes rising times only; a repeated stamp adds nothing to see
            last = frame.pts
            picture = frame.reformat(format="yuv420p")
            picture.pts, picture.time_base = frame.pts, video_out.codec_context.time_base
            for packet in video_out.encode(picture):
                out.mux(packet)
        for packet in video_out.encode(None):
            out.mux(packet)
    partial.replace(target)
    return target.stat().st_size


def copy_name(evidence: Evidence) -> str:
    """The WebM copy's file name: a new file under the same id (it cannot happen, but if) is a new copy."""
    return f"{evidence.id}-{evidence.sha256[:16]}.webm"


class PlayableCache:
    """The WebM copies, made on the first request and kept; one encoding per file at a time, so
    that two viewers opening the same clip wait for the same work, and a viewer who goes away does
    not stop it."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._building: dict[str, asyncio.Task[Path]] = {}

    async def webm(self, evidence: Evidence, source: Path) -> Path:
        target = self._folder / copy_name(evidence)
        if await asyncio.to_thread(target.exists):
            return target
        task = self._building.get(target.name)
        if task is None:
            task = asyncio.ensure_future(self._build(evidence.id, source, target))
            self._building[target.name] = task
            task.add_done_callback(self._done(target.name))
        return await asyncio.shield(task)

    def _done(self, name: str) -> Callable[[asyncio.Task[Path]], None]:
        def forget(task: asyncio.Task[Path]) -> None:
            del self._building[name]
            if not task.cancelled():
                task.exception()  # retrieved here too: every viewer may have gone

        return forget

    async def _build(self, evidence_id: int, source: Path, target: Path) -> Path:
        try:
            size = await asyncio.to_thread(encode_webm, source, target)
        except Exception:
            target.with_suffix(".partial").unlink(missing_ok=True)
            raise
        logger.info("evidence %d: WebM copy made for playing (%d bytes)", evidence_id, size)
        return target
