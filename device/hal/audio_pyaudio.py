"""The sound card through PyAudio (PortAudio on ALSA), as the device runs it.

PyAudio's blocking streams are driven from worker threads: one thread reads the microphone 20 ms
at a time for as long as the device runs, and each ``play`` writes on a thread of its own, one
at a time. (Callback mode would save the thread but runs our Python inside PortAudio's audio
thread, where a garbage-collection pause becomes a click.) Speaker and microphone are opened
separately, so a kiosk whose USB microphone is unplugged can still talk to its user.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pyaudio

from device.config import AudioSection
from device.hal.audio import SAMPLE_BYTES, Audio, AudioError
from protocol.messages import PartState

log = logging.getLogger(__name__)

T = TypeVar("T")


class PyAudioAudio(Audio):
    def __init__(self, cfg: AudioSection) -> None:
        super().__init__(cfg)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pa: Any = None  # pyaudio.PyAudio
        self._mic: Any = None  # pyaudio.Stream
        self._speaker: Any = None
        self._missing: dict[str, str] = {}
        self._reader: threading.Thread | None = None
        self._stopping = threading.Event()
        self._play_lock = asyncio.Lock()

    async def start(self) -> None:
        if self._pa is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        await asyncio.to_thread(self._open)
        for part, why in self._missing.items():
            log.error("audio: no %s: %s", part, why)
        self._update_health()
        if self._mic is None:
            self._end_capture(self._missing["microphone"])
        else:
            self._begin_capture()
            self._reader = threading.Thread(target=self._read_loop, name="audio-capture", daemon=True)
            self._reader.start()
        log.info("audio: started at %s Hz, %s", self.sample_rate, self._note)

    def _open(self) -> None:
        self._pa = pyaudio.PyAudio()
        self._missing = {}
        frames = self.chunk_bytes // SAMPLE_BYTES
        for part in ("microphone", "speaker"):
            try:
                stream = self._pa.open(
                    format=pyaudio.paInt16,
                    channels=1,
                    rate=self.sample_rate,
                    input=part == "microphone",
                    output=part == "speaker",
                    frames_per_buffer=frames,
                )
            except OSError as exc:  # PortAudio: no such device, or it refuses the format
                self._missing[part] = str(exc)
                continue
            if part == "microphone":
                self._mic = stream
            else:
                self._speaker = stream

    def _update_health(self) -> None:
        if not self._missing:
            self._set_health(PartState.OK, f"{self.sample_rate} Hz")
            return
        note = "; ".join(f"no {part} ({why})" for part, why in self._missing.items())
        self._set_health(PartState.FAILED if len(self._missing) == 2 else PartState.DEGRADED, note)

    async def stop(self) -> None:
        if self._pa is None:
            return
        self._stopping.set()
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join)
            self._reader = None
        async with self._play_lock:
            await asyncio.to_thread(self._close)
        self._end_capture("stopped")
        self._set_health(PartState.FAILED, "stopped")
        log.info("audio: stopped")

    def _close(self) -> None:
        for stream in (self._mic, self._speaker):
            if stream is not None:
                stream.stop_stream()
                stream.close()
        self._mic = self._speaker = None
        self._pa.terminate()
        self._pa = None

    async def play(self, pcm: bytes) -> None:
        async with self._play_lock:
            if self._speaker is None:
                raise AudioError(f"no speaker: {self._missing.get('speaker', self._note)}")
            await asyncio.to_thread(self._write, self._speaker, pcm)

    @staticmethod
    def _write(speaker: Any, pcm: bytes) -> None:
        speaker.write(pcm)
        # write() returns once the last buffer is queued; wait until it has left the speaker.
        time.sleep(speaker.get_output_latency())

    def _read_loop(self) -> None:
        frames = self.chunk_bytes // SAMPLE_BYTES
        try:
            while not self._stopping.is_set():
                chunk = self._mic.read(frames, exception_on_overflow=False)
                self._to_loop(self._publish, chunk)
        except OSError as exc:
            log.error("audio: microphone failed: %s", exc)
            self._to_loop(self._mic_failed, str(exc))

    def _mic_failed(self, why: str) -> None:
        self._missing["microphone"] = why
        self._update_health()
        self._end_capture(why)

    def _to_loop(self, callback: Callable[[T], None], arg: T) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, arg)
        except RuntimeError:  # the loop closed during shutdown
            log.debug("audio: chunk after the loop closed, dropped")
