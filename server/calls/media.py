"""The media plumbing of a call on the server: tracks that outlive a renegotiation.

A device whose link drops offers again and brings new tracks; the consoles watching, and the
recorder, must not notice more than a pause. So everything downstream reads a ``SteadyTrack``,
whose source is swapped underneath and whose timestamps run on the server's clock. The voice for
the device is a ``VoiceToDevice``: silence until a dispatcher speaks, then the consoles mixed.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet

import runtime.audio_level  # noqa: F401  (aiortc sends the voices with it)
from runtime.peers import close_peer

VIDEO_CLOCK = fractions.Fraction(1, 90000)
VOICE_RATE = 48000
VOICE_SAMPLES = 960  # 20 ms, one Opus frame
VOICE_CLOCK = fractions.Fraction(1, VOICE_RATE)
VOICE_BACKLOG = 10  # 200 ms of one console's voice may wait for the device's next frames


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

    def _arrive(self, item: Frame | Packet[Any]) -> None:
        self._frames.append(item)  # the deque drops the oldest beyond ``keep``

    async def _fill(self) -> None:
        try:
            while True:
                self._arrive(await self._source.recv())
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
    """What the device's speaker plays: the consoles' microphones mixed, or silence, 20 ms a frame.

    A frame is due every 20 ms on the server's clock whether or not a dispatcher talks, so the
    device's audio keeps flowing (and its jitter buffer steady) as dispatchers come and go. Each
    console sends its microphone all the time (silence when muted), so two consoles on a call (the
    dispatcher and a supervising officer) are mixed slot by slot; queued one after the other they
    would play at half speed and fall ever further behind. ``heard`` gets each frame as sent: the
    recording keeps what the driver heard.
    """

    kind = "audio"

    def __init__(self, heard: Callable[[av.AudioFrame], None] | None = None) -> None:
        super().__init__()
        self._voices: dict[str, _Voice] = {}
        self._sent = 0
        self._start: float | None = None
        self.heard = heard

    def speak(self, console: str, frame: av.AudioFrame) -> None:
        """A piece of one console's microphone; called as it arrives."""
        voice = self._voices.get(console)
        if voice is None:
            voice = self._voices[console] = _Voice()
        voice.add(frame)

    def leave(self, console: str) -> None:
        self._voices.pop(console, None)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop_now = time.monotonic()
        if self._start is None:
            self._start = loop_now
        due = self._start + self._sent * VOICE_SAMPLES / VOICE_RATE
        if due > loop_now:
            await asyncio.sleep(due - loop_now)
        chunks = [chunk for voice in self._voices.values() if (chunk := voice.take()) is not None]
        if not chunks:
            pcm = bytes(VOICE_SAMPLES * 2)
        elif len(chunks) == 1:
            pcm = chunks[0]
        else:
            mixed = np.sum([np.frombuffer(c, np.int16) for c in chunks], axis=0, dtype=np.int32)
            pcm = np.clip(mixed, -32768, 32767).astype(np.int16).tobytes()
        frame = _voice_frame(pcm)
        frame.pts = self._sent * VOICE_SAMPLES
        frame.time_base = VOICE_CLOCK
        self._sent += 1
        if self.heard is not None:
            self.heard(frame)
        return frame


class _Voice:
    """One console's microphone as 20 ms chunks of 48 kHz mono, at most ``VOICE_BACKLOG`` waiting."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=VOICE_RATE)
        self._pending = bytearray()
        self._chunks: collections.deque[bytes] = collections.deque(maxlen=VOICE_BACKLOG)

    def add(self, frame: av.AudioFrame) -> None:
        for out in self._resampler.resample(frame):
            self._pending += out.to_ndarray().tobytes()
        while len(self._pending) >= VOICE_SAMPLES * 2:
            # A full backlog drops its oldest chunk: the conversation stays live.
            self._chunks.append(bytes(self._pending[: VOICE_SAMPLES * 2]))
            del self._pending[: VOICE_SAMPLES * 2]

    def take(self) -> bytes | None:
        return self._chunks.popleft() if self._chunks else None


async def close_viewer(pc: RTCPeerConnection) -> None:
    """Close a console's connection and stop its copies of the call's tracks, which the relay
    would otherwise go on filling until the call ends."""
    for sender in pc.getSenders():
        if sender.track is not None:
            sender.track.stop()
    await close_peer(pc, "console view")


def _voice_frame(pcm: bytes) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.sample_rate = VOICE_RATE
    return frame
