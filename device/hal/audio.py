"""Speaker and microphone: voice guidance and beeps out, the party's voice in.

Audio is 16-bit signed little-endian mono PCM at ``cfg.sample_rate`` throughout. The microphone
runs from ``start`` to ``stop`` and delivers 20 ms chunks (the WebRTC/Opus frame); every reader
(the call's audio track through ``read_chunk``, a self-test through ``record``) gets its own copy
of the chunks from the moment it starts listening, so one reader never steals another's audio.
A reader that falls behind loses the oldest chunks, not the newest: a call must stay live.

A device that cannot open its sound card still runs: ``start`` returns and ``health`` says what
is missing; ``play`` or ``read_chunk`` on the missing side raise ``AudioError``.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

import numpy as np

from device.config import AudioSection
from protocol.messages import PartState

log = logging.getLogger(__name__)

CHUNK_S = 0.02
SAMPLE_BYTES = 2
# How far a ``read_chunk`` reader may fall behind before its oldest chunks are dropped.
LIVE_BACKLOG_CHUNKS = 10


class AudioError(Exception):
    """The speaker or microphone is missing or stopped."""


def tone(freq_hz: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> bytes:
    """A sine tone as PCM, for beeps and the audio self-test; ``amplitude`` is of full scale."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (np.sin(2 * np.pi * freq_hz * t) * amplitude * 32767).astype("<i2").tobytes()


def rms(pcm: bytes) -> float:
    """Root-mean-square level of PCM, 0.0 (silence) to 1.0 (full scale)."""
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2)) / 32768) if samples.size else 0.0


class Audio(ABC):
    """Base of the audio backends.

    A backend implements ``start``, ``stop`` and ``play``, and hands each captured chunk to
    ``_publish`` on the event loop, and ``_end_capture`` when the microphone stops for good.
    """

    def __init__(self, cfg: AudioSection) -> None:
        self.cfg = cfg
        self.sample_rate = cfg.sample_rate
        self.chunk_bytes = round(cfg.sample_rate * CHUNK_S) * SAMPLE_BYTES
        self._listeners: set[asyncio.Queue[bytes | None]] = set()
        self._live: asyncio.Queue[bytes | None] | None = None
        self._capture_note: str | None = "not started"  # why there is no capture, or None
        self._state = PartState.FAILED
        self._note = "not started"

    @abstractmethod
    async def start(self) -> None:
        """Open speaker and microphone and start capturing; report failures in ``health``."""

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def play(self, pcm: bytes) -> None:
        """Play ``pcm`` and return once it has been played."""

    def health(self) -> tuple[PartState, str]:
        """The audio's state for the device's health report, and a short note saying why."""
        return self._state, self._note

    async def read_chunk(self) -> bytes:
        """The next 20 ms of microphone audio; continuous from the first call on."""
        live = self._live
        if live is None:
            live = self._live = self._listen(LIVE_BACKLOG_CHUNKS)
        chunk = await live.get()
        if chunk is None:
            raise AudioError(f"microphone stopped: {self._capture_note}")
        return chunk

    async def record(self, seconds: float) -> bytes:
        """The next ``seconds`` of microphone audio."""
        wanted = round(seconds * self.sample_rate) * SAMPLE_BYTES
        listener = self._listen(0)
        try:
            pcm = bytearray()
            while len(pcm) < wanted:
                chunk = await listener.get()
                if chunk is None:
                    raise AudioError(f"microphone stopped: {self._capture_note}")
                pcm += chunk
        finally:
            self._unlisten(listener)
        return bytes(pcm[:wanted])

    def _listen(self, backlog: int) -> asyncio.Queue[bytes | None]:
        if self._capture_note is not None:
            raise AudioError(f"no microphone: {self._capture_note}")
        listener: asyncio.Queue[bytes | None] = asyncio.Queue(backlog)
        self._listeners.add(listener)
        return listener

    def _unlisten(self, listener: asyncio.Queue[bytes | None]) -> None:
        self._listeners.discard(listener)

    def _begin_capture(self) -> None:
        self._capture_note = None

    def _publish(self, chunk: bytes) -> None:
        for listener in self._listeners:
            if listener.full():
                listener.get_nowait()
            listener.put_nowait(chunk)

    def _end_capture(self, note: str) -> None:
        """No chunks (any more), for the reason ``note``: wake every reader with it."""
        self._capture_note = note
        for listener in self._listeners:
            if listener.full():
                listener.get_nowait()
            listener.put_nowait(None)
        self._listeners.clear()
        self._live = None

    def _set_health(self, state: PartState, note: str) -> None:
        self._state, self._note = state, note


def make_audio(cfg: AudioSection) -> Audio:
    """The backend ``cfg.backend`` names; the real one opens the sound card only in ``start``."""
    if cfg.backend == "pyaudio":
        from device.hal.audio_pyaudio import PyAudioAudio

        return PyAudioAudio(cfg)
    from device.hal.audio_simulated import SimulatedAudio

    return SimulatedAudio(cfg)
