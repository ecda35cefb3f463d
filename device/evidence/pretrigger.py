"""The seconds before a press, or before a dispatcher's request: a small ring of JPEG frames, frozen
to a file at every press.

A dispatcher asks for "what happened just before" minutes after the press, by which time a ring
of ten seconds has long rolled over; so the window is frozen when the report is made, into
``{report_id}.mkv`` beside the device's other state, and a request cuts the last N seconds from
it. The ring goes on filling during the call, so "the 10 s before I clicked" is cut from it
directly: the request names the time of the click, and reaches the unit a moment later, which is
why the ring keeps ``LATE_REQUEST_S`` more than ``pretrigger_s``. A clip is Motion-JPEG in
Matroska: every frame is the JPEG made at capture, copied, never re-encoded (no video encoder
runs on the Pi for it), with its own capture time; VLC, mpv and ffmpeg play it, and
``ffmpeg -i clip.mkv -c copy frame%03d.jpg`` gives back the exact JPEGs.

The ring holds ``pretrigger_s + LATE_REQUEST_S`` seconds at ``pretrigger_fps`` (4 a second at
640x480 is about 60 frames of 30-40 KB), encoded on a worker thread; a press freezes its last
``pretrigger_s``; the frozen files are few and bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import io
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

from device.config import EvidenceSection
from device.evidence.files import write_atomically
from device.hal.camera import Camera, CameraError, Frame
from protocol.messages import utc_iso

logger = logging.getLogger(__name__)

MS = fractions.Fraction(1, 1000)
RING_QUALITY = 80
KEEP_FROZEN = 8  # the newest presses' windows; a dispatcher asks about the case at hand
# How late a request for the seconds before a click may reach the unit (the broker, a slow uplink)
# and still find all of them in the ring; and how long the unit waits for a frame from the click's
# time itself, when its clock is behind the server's or the frame is still being encoded.
LATE_REQUEST_S = 5
CATCH_UP_S = 2.0


class ClipUnavailable(Exception):
    """There is no video of that time on this device; the message says why, for the dispatcher."""


@dataclass(frozen=True)
class Clip:
    data: bytes
    first: datetime
    last: datetime
    frames: int


def encode_jpeg(frame: Frame, quality: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(frame).save(out, "JPEG", quality=quality)
    return out.getvalue()


def mux_clip(frames: list[tuple[datetime, bytes]], width: int, height: int, title: str = "pre-trigger video") -> bytes:
    """JPEG frames, with their capture times, in Matroska, the pictures untouched."""
    import av  # PyAV is loaded at the first report, not at boot (see device/call/agent.py)

    first = frames[0][0]
    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as container:
        container.metadata["creation_time"] = utc_iso(first)
        container.metadata["title"] = title
        span_s = max(1.0, (frames[-1][0] - first).total_seconds())
        stream = container.add_stream("mjpeg", rate=max(1, round(len(frames) / span_s)))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p"
        stream.time_base = MS
        for at, jpeg in frames:
            packet = av.Packet(jpeg)
            packet.stream = stream
            packet.pts = packet.dts = round((at - first).total_seconds() * 1000)
            packet.time_base = MS
            container.mux(packet)
    return out.getvalue()


def read_clip(path: Path) -> list[tuple[datetime, bytes]]:
    import av

    with av.open(str(path)) as container:
        first = datetime.fromisoformat(container.metadata["creation_time"])
        stream = container.streams.video[0]
        unit = stream.time_base or MS
        return [
            (first + timedelta(seconds=float((packet.pts or 0) * unit)), bytes(packet))
            for packet in container.demux(stream)
            if packet.size
        ]


def cut_clip(path: Path, seconds: int) -> Clip:
    """The last ``seconds`` of a frozen window, as a file of its own."""
    frames = read_clip(path)
    if not frames:
        raise ClipUnavailable("the pre-trigger video is empty")
    start = frames[-1][0] - timedelta(seconds=seconds)
    kept = [(at, jpeg) for at, jpeg in frames if at >= start]
    with Image.open(io.BytesIO(kept[0][1])) as image:
        width, height = image.size
    return Clip(mux_clip(kept, width, height), kept[0][0], kept[-1][0], len(kept))


class Pretrigger:
    def __init__(self, camera: Camera, cfg: EvidenceSection, folder: Path) -> None:
        self._camera = camera
        self._cfg = cfg
        self._folder = folder
        self._ring: deque[tuple[datetime, bytes]] = deque()
        self._added = asyncio.Condition()  # a frame went into the ring
        # One thread of its own for the encoding: its buffers are reused frame after frame,
        # where the shared executor's threads would each keep some (resident memory on a Pi).
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pretrigger")

    async def run(self) -> None:
        """Keep the ring filled, for as long as the device runs."""
        if self._cfg.pretrigger_s == 0:
            return
        period = 1 / self._cfg.pretrigger_fps
        try:
            await self._fill(period)
        finally:
            self._encoder.shutdown(wait=False, cancel_futures=True)

    async def _fill(self, period: float) -> None:
        while True:
            started = time.monotonic()
            try:
                frame = await self._camera.next_frame()
            except CameraError:
                self._ring.clear()  # a gap in the video must not join two stretches of it
                await asyncio.sleep(5)
                continue
            at = datetime.now(UTC)
            jpeg = await asyncio.get_running_loop().run_in_executor(self._encoder, encode_jpeg, frame, RING_QUALITY)
            self._ring.append((at, jpeg))
            async with self._added:
                self._added.notify_all()
            oldest = at - timedelta(seconds=self._cfg.pretrigger_s + LATE_REQUEST_S)
            while self._ring and self._ring[0][0] < oldest:
                self._ring.popleft()
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def freeze(self, report_id: str, at: datetime) -> None:
        """Keep the window that ends at the press ``at`` for report ``report_id``."""
        if self._cfg.pretrigger_s == 0:
            return
        window = at - timedelta(seconds=self._cfg.pretrigger_s)
        frames = [(t, jpeg) for t, jpeg in self._ring if window <= t <= at]
        if not frames:
            logger.warning("report %s: no video from before the press to keep (the camera is not running)", report_id)
            return
        width, height = self._camera.cfg.width, self._camera.cfg.height
        await asyncio.to_thread(self._keep, report_id, frames, width, height)
        logger.info("report %s: %d frames before the press kept", report_id, len(frames))

    async def clip(self, report_id: str, seconds: int) -> Clip:
        path = self._folder / f"{report_id}.mkv"
        if not await asyncio.to_thread(path.exists):
            raise ClipUnavailable("no video from before this press on the device")
        import av

        try:
            return await asyncio.to_thread(cut_clip, path, seconds)
        except (OSError, av.FFmpegError, KeyError, ValueError) as exc:
            logger.exception("report %s: the video from before the press is unreadable", report_id)
            raise ClipUnavailable(f"the video from before the press is unreadable ({exc})") from None

    async def before(self, until: datetime, seconds: int) -> Clip:
        """The ``seconds`` up to ``until`` (a dispatcher's click, by the server's clock), from the ring."""
        if self._cfg.pretrigger_s == 0:
            raise ClipUnavailable("the unit keeps no recent video (pretrigger_s = 0)")
        async with self._added:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CATCH_UP_S):
                    await self._added.wait_for(lambda: bool(self._ring) and self._ring[-1][0] >= until)
        start = until - timedelta(seconds=seconds)
        frames = [(t, jpeg) for t, jpeg in self._ring if start <= t <= until]
        if not frames:
            kept = self._cfg.pretrigger_s + LATE_REQUEST_S
            raise ClipUnavailable(f"no video of that time on the unit (it keeps the last {kept} s)")
        width, height = self._camera.cfg.width, self._camera.cfg.height
        data = await asyncio.to_thread(mux_clip, frames, width, height, "video before the dispatcher's request")
        return Clip(data, frames[0][0], frames[-1][0], len(frames))

    def _keep(self, report_id: str, frames: list[tuple[datetime, bytes]], width: int, height: int) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self._folder / f"{report_id}.mkv", mux_clip(frames, width, height))
        frozen = sorted(self._folder.glob("*.mkv"))  # report ids sort by time
        for old in frozen[:-KEEP_FROZEN]:
            old.unlink(missing_ok=True)
