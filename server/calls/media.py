"""The media plumbing of a call on the server: tracks that outlive a renegotiation.

A device whose link drops offers again and brings new tracks; the consoles watching, and the
recorder, must not notice more than a pause. So everything downstream reads a ``SteadyTrack``,
whose source is swapped underneath and whose timestamps run on the server's clock. The voice for
the device is a ``VoiceToDevice``: silence until a dispatcher speaks, then the dispatcher.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import time
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet

import kuaichu.audio_level  # noqa: F401  (aiortc sends the voices with it)

VIDEO_CLOCK = fractions.Fraction(1, 90000)
VOICE_RATE = 48000
VOICE_SAMPLES = 960  # 20 ms, one Opus frame
VOICE_CLOCK = fractions.Fraction(1, VOICE_RATE)


class SteadyTrack(MediaStreamTrack):
    """One of the device's tracks as seen downstream, across the device's reconnections."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._source: MediaStreamTrack | None = None
        self._changed = asyncio.Event()
        self._start = time.monotonic()
        self._samples = 0

    def attach(self, source: MediaStreamTrack) -> None:
        self._source = source
        self._changed.set()

    async def recv(self) -> av.Packet[Any] | av.AudioFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            source = self._source
            if source is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                frame = await source.recv()
            except MediaStreamError:
                if self._source is source:
                    self._source = None  # wait for the device's next connection
                continue
            if isinstance(frame, av.Packet):  # video, forwarded as the unit encoded it
                frame.pts = frame.dts = round((time.monotonic() - self._start) * 90000)
                frame.time_base = VIDEO_CLOCK
                return frame
            if isinstance(frame, av.AudioFrame):
                frame.pts = self._samples
                frame.time_base = fractions.Fraction(1, frame.sample_rate)
                self._samples += frame.samples
                return frame


class ConsoleView(MediaStreamTrack):
    """A console's copy of the unit's sound: every frame while its encoder keeps up, only the newest
    ``keep`` when it falls behind. (The video is forwarded as encoded: ``forwarding.ForwardedVideo``.)

    The relay's unbuffered copy keeps only the newest frame, so of two frames that reach the
    server close together (its decoders and event loop are shared by every call) the first was
    lost even with the encoder idle. A buffered copy alone would let a console whose encoder
    cannot keep up fall further and further behind.
    """

    def __init__(self, source: MediaStreamTrack, keep: int) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source  # a buffered relay copy, emptied here as soon as it fills
        self._frames: collections.deque[Frame | Packet[Any]] = collections.deque(maxlen=keep)
        self._ended = False
        self._arrived = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    async def _fill(self) -> None:
        try:
            while True:
                self._frames.append(await self._source.recv())
                self._arrived.set()
        except MediaStreamError:
            self._ended = True
            self._arrived.set()

    async def recv(self) -> Frame | Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if self._pump is None:
            self._pump = asyncio.ensure_future(self._fill())
        while not self._frames:
            if self._ended:
                self.stop()
                raise MediaStreamError
            self._arrived.clear()
            await self._arrived.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        if self._pump is not None:
            self._pump.cancel()
        self._source.stop()


class VoiceToDevice(MediaStreamTrack):
    """What the device's speaker plays: the dispatcher's microphone, or silence, at 20 ms a frame.

    A frame is due every 20 ms on the server's clock whether or not a dispatcher talks, so the
    device's audio keeps flowing (and its jitter buffer steady) as dispatchers come and go.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: asyncio.Queue[av.AudioFrame] = asyncio.Queue(maxsize=10)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=VOICE_RATE)
        self._pending = bytearray()
        self._sent = 0
        self._start: float | None = None

    def speak(self, frame: av.AudioFrame) -> None:
        """A piece of the dispatcher's voice; called as it arrives from the console."""
        for out in self._resampler.resample(frame):
            self._pending += out.to_ndarray().tobytes()
        while len(self._pending) >= VOICE_SAMPLES * 2:
            chunk, self._pending = bytes(self._pending[: VOICE_SAMPLES * 2]), self._pending[VOICE_SAMPLES * 2 :]
            if self._frames.full():
                self._frames.get_nowait()  # keep the conversation live: drop the oldest
            self._frames.put_nowait(_voice_frame(chunk))

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop_now = time.monotonic()
        if self._start is None:
            self._start = loop_now
        due = self._start + self._sent * VOICE_SAMPLES / VOICE_RATE
        if due > loop_now:
            await asyncio.sleep(due - loop_now)
        try:
            frame = self._frames.get_nowait()
        except asyncio.QueueEmpty:
            frame = _voice_frame(bytes(VOICE_SAMPLES * 2))
        frame.pts = self._sent * VOICE_SAMPLES
        frame.time_base = VOICE_CLOCK
        self._sent += 1
        return frame


def _voice_frame(pcm: bytes) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.sample_rate = VOICE_RATE
    return frame
