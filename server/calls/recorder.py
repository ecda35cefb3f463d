"""A call's recording: video and both voices, in short self-contained segments, written off the loop.

Evidence must survive the call dying and the server dying. So the recording is a series of
Matroska files of ``segment_s`` each (the unit's VP8 exactly as it sent it, 16 kHz PCM for the
device's and the dispatcher's audio), every one closed, hashed (SHA-256) and reported before the
next begins: a crash loses at most the segment being written, and even that file stays readable up
to its last cluster. A segment starts on a key frame, so each file plays on its own; the recorder
asks the unit for one when a segment is due. Writing runs on a thread of its own; the event loop
only hands packets over, and a recorder that falls behind drops video rather than holding up the
call.
"""

from __future__ import annotations

import asyncio
import fractions
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
from av.audio.stream import AudioStream

from server.calls.forwarding import vp8_size

logger = logging.getLogger(__name__)

AUDIO_RATE = 16000
MS = fractions.Fraction(1, 1000)
QUEUE_LIMIT = 300  # about 10 s of video and audio; beyond that video frames are dropped


@dataclass(frozen=True)
class Segment:
    """A closed recording file, as the evidence table keeps it."""

    path: Path
    sha256: str
    size_bytes: int
    media_start: datetime
    media_end: datetime


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Writer:
    """One open segment file; used by the recorder thread only."""

    def __init__(self, path: Path, size: tuple[int, int], fps: int, started: float) -> None:
        self.path = path
        self.started = started  # monotonic time of the segment's zero
        self.wall_start = datetime.now(UTC)
        self.last = started
        self._container = av.open(str(path), "w", format="matroska")
        video = self._container.add_stream("libvpx", rate=fps)  # described, never used to encode
        (video.width, video.height), video.pix_fmt = size, "yuv420p"
        video.codec_context.time_base = MS
        self._video = video
        self._audio: dict[str, AudioStream] = {}
        self._next_sample: dict[str, int] = {}
        for name in ("device", "dispatcher"):
            stream = self._container.add_stream("pcm_s16le", rate=AUDIO_RATE, layout="mono")
            stream.metadata["title"] = name
            self._audio[name] = stream
            self._next_sample[name] = 0
        self._resamplers = {
            name: av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE) for name in self._audio
        }
        self._last_video_ms = -1

    def video(self, packet: av.Packet[Any], at: float) -> None:
        ms = round((at - self.started) * 1000)
        if ms <= self._last_video_ms:
            ms = self._last_video_ms + 1
        self._last_video_ms = ms
        # Always a copy: the relay hands the same packet to the consoles' connections, which must
        # not see this recording's timestamps.
        own = av.Packet(bytes(packet))
        own.pts = own.dts = ms
        own.time_base, own.is_keyframe, own.stream = MS, packet.is_keyframe, self._video
        self._container.mux(own)
        self.last = at

    def audio(self, name: str, frame: av.AudioFrame, at: float) -> None:
        stream = self._audio[name]
        for out in self._resamplers[name].resample(frame):
            # Samples follow each other; a gap in arrival (a lost packet, a silent sender) moves
            # the next piece to its arrival time, so the voices stay aligned with the picture.
            due = round((at - self.started) * AUDIO_RATE)
            pts = max(self._next_sample[name], due - out.samples)
            out.pts, out.time_base = pts, fractions.Fraction(1, AUDIO_RATE)
            self._next_sample[name] = pts + out.samples
            for packet in stream.encode(out):
                self._container.mux(packet)
        self.last = max(self.last, at)

    def close(self) -> None:
        for stream in self._audio.values():
            for packet in stream.encode(None):
                self._container.mux(packet)
        self._container.close()


class SegmentRecorder:
    """Feed it from the event loop (``video`` packets, ``audio`` frames); ``on_segment`` is called
    on the loop for every closed file, in order, ``want_keyframe`` when a segment is due and waits
    for a key frame. ``stop`` closes the last one."""

    def __init__(
        self,
        folder: Path,
        name: str,
        segment_s: float,
        fps: int,
        on_segment: Callable[[Segment], None],
        want_keyframe: Callable[[], None],
    ) -> None:
        self._folder = folder
        self._name = name
        self._segment_s = segment_s
        self._fps = fps
        self._on_segment = on_segment
        self._want_keyframe = want_keyframe
        self._loop = asyncio.get_running_loop()
        self._items: queue.Queue[tuple[str, av.Packet[Any] | av.AudioFrame, float] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{name}", daemon=True)
        self._stopped = asyncio.Event()
        self._cut = threading.Event()
        self._index = self._next_index()
        self.dropped_video = 0
        folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def _next_index(self) -> int:
        """Segments of an earlier run of the same call (a server restart) are kept: number on."""
        existing = sorted(self._folder.glob(f"{self._name}-*.mkv")) if self._folder.exists() else []
        return int(existing[-1].stem.rsplit("-", 1)[1]) + 1 if existing else 1

    def video(self, packet: av.Packet[Any]) -> None:
        if self._items.qsize() > QUEUE_LIMIT:
            self.dropped_video += 1
            return
        self._items.put(("video", packet, time.monotonic()))

    def audio(self, source: str, frame: av.AudioFrame) -> None:
        self._items.put((source, frame, time.monotonic()))

    def cut(self) -> None:
        """Close the open segment at the next key frame (asked for now) rather than when it is due:
        a statement just marked is then covered by closed, hashed evidence within a moment."""
        self._cut.set()

    async def stop(self) -> None:
        self._items.put(None)
        await self._stopped.wait()

    # the recorder thread -------------------------------------------------------------------

    def _run(self) -> None:
        writer: _Writer | None = None
        asked = False
        try:
            while True:
                item = self._items.get()
                if item is None:
                    break
                kind, media, at = item
                if kind == "video":
                    assert isinstance(media, av.Packet)
                    due = writer is None or at - writer.started >= self._segment_s or self._cut.is_set()
                    if due and media.is_keyframe:
                        self._cut.clear()
                        if writer is not None:
                            self._close(writer)
                        writer, asked = self._open(media, at), False
                    elif due and not asked:
                        self._loop.call_soon_threadsafe(self._want_keyframe)
                        asked = True
                if writer is None:
                    continue  # a segment begins with a key frame; what comes before it is not playable
                try:
                    if isinstance(media, av.Packet):
                        writer.video(media, at)
                    else:
                        writer.audio(kind, media, at)
                except (av.FFmpegError, ValueError) as exc:
                    logger.warning("recorder %s: a %s frame could not be written: %s", self._name, kind, exc)
        except Exception:
            logger.exception("recorder %s failed; closing what it has", self._name)
        finally:
            if writer is not None:
                self._close(writer)
            self._loop.call_soon_threadsafe(self._stopped.set)

    def _open(self, keyframe: av.Packet[Any], at: float) -> _Writer:
        size = vp8_size(bytes(keyframe))
        assert size is not None  # what forwarding marks as a key frame has its size
        path = self._folder / f"{self._name}-{self._index:05d}.mkv"
        self._index += 1
        return _Writer(path, size, self._fps, at)

    def _close(self, writer: _Writer) -> None:
        try:
            writer.close()
        except Exception:
            logger.exception("recorder %s: closing %s failed; the file is kept as it is", self._name, writer.path)
        end = writer.wall_start + timedelta(seconds=writer.last - writer.started)
        segment = Segment(writer.path, sha256_of(writer.path), writer.path.stat().st_size, writer.wall_start, end)
        self._loop.call_soon_threadsafe(self._on_segment, segment)
