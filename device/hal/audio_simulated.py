"""A sound card with a speaker that keeps what it played and a microphone fed by the test or demo.

One clock on the event loop runs both at real-time pace, 20 ms a tick, as a sound card's does:
each tick the speaker takes the next 20 ms of what ``play`` queued, and the microphone delivers
20 ms of its signal (silence or a tone, with anything ``inject``-ed mixed in), plus a share of
what the speaker just played, since the microphone of a kiosk hears its own speaker. That is what
lets the audio self-test (play a tone, hear it) pass in the demo for the same reason it passes on
a real device. Ticks follow the loop's clock, not a count of sleeps, so the pace does not drift.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math

import numpy as np
from numpy.typing import NDArray

from device.config import AudioSection
from device.hal.audio import CHUNK_S, SAMPLE_BYTES, Audio, AudioError, rms
from protocol.messages import PartState

log = logging.getLogger(__name__)

Samples = NDArray[np.int16]


class SpeakerSink:
    """Everything played, as it was played: the last ``keep_s`` seconds, and a total count."""

    def __init__(self, sample_rate: int, keep_s: float = 60.0) -> None:
        self.sample_rate = sample_rate
        self.total_samples = 0
        self._kept: collections.deque[bytes] = collections.deque()
        self._kept_samples = 0
        self._keep = round(keep_s * sample_rate)

    def last(self, seconds: float) -> bytes:
        """The last ``seconds`` of what was played (less if less was played)."""
        pcm = b"".join(self._kept)
        return pcm[-round(seconds * self.sample_rate) * SAMPLE_BYTES :] if seconds > 0 else b""

    def rms(self, seconds: float) -> float:
        """The level of the last ``seconds`` played, 0.0 to 1.0 of full scale."""
        return rms(self.last(seconds))

    def played(self, samples: Samples) -> None:
        """Record ``samples`` as having left the speaker (the audio clock calls this)."""
        self.total_samples += samples.size
        self._kept.append(samples.astype("<i2").tobytes())
        self._kept_samples += samples.size
        while self._kept_samples - len(self._kept[0]) // SAMPLE_BYTES >= self._keep:
            self._kept_samples -= len(self._kept.popleft()) // SAMPLE_BYTES


class MicSource:
    """What the simulated microphone hears: a base signal, plus PCM injected to be heard once."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._freq = 0.0
        self._amplitude = 0.0
        self._phase = 0.0
        self._injected: collections.deque[Samples] = collections.deque()

    def silence(self) -> None:
        self._amplitude = 0.0

    def tone(self, freq_hz: float, amplitude: float = 0.3) -> None:
        """From now on, a continuous sine of ``freq_hz`` at ``amplitude`` of full scale."""
        self._freq, self._amplitude = freq_hz, amplitude

    def inject(self, pcm: bytes) -> None:
        """Mix ``pcm`` into what the microphone hears next, after anything injected before."""
        self._injected.append(np.frombuffer(pcm, "<i2").copy())

    @property
    def injected_pending(self) -> int:
        """Samples injected but not heard yet."""
        return sum(part.size for part in self._injected)

    def skip(self, n: int) -> None:
        """Let ``n`` samples pass unheard (nobody listens): the tone's phase and the injected PCM
        move on exactly as if they had been heard."""
        self._phase = (self._phase + 2 * math.pi * self._freq / self.sample_rate * n) % (2 * math.pi)
        while n and self._injected:
            part = self._injected[0]
            if part.size <= n:
                n -= part.size
                self._injected.popleft()
            else:
                self._injected[0] = part[n:]
                n = 0

    def next_samples(self, n: int) -> NDArray[np.float64]:
        """The next ``n`` samples the microphone hears (the audio clock calls this)."""
        step = 2 * math.pi * self._freq / self.sample_rate
        out: NDArray[np.float64] = self._amplitude * 32767 * np.sin(self._phase + step * np.arange(n))
        self._phase = (self._phase + step * n) % (2 * math.pi)
        filled = 0
        while filled < n and self._injected:
            part = self._injected[0]
            take = min(n - filled, part.size)
            out[filled : filled + take] += part[:take]
            filled += take
            if take == part.size:
                self._injected.popleft()
            else:
                self._injected[0] = part[take:]
        return out


class SimulatedAudio(Audio):
    """``speaker`` and ``microphone`` are there to inspect and to feed."""

    def __init__(self, cfg: AudioSection, *, loopback: float = 0.25) -> None:
        super().__init__(cfg)
        self.speaker = SpeakerSink(cfg.sample_rate)
        self.microphone = MicSource(cfg.sample_rate)
        self.loopback = loopback  # share of the speaker's output the microphone hears
        self._queued: collections.deque[tuple[Samples, asyncio.Future[None]]] = collections.deque()
        self._clock: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._clock is not None:
            return
        self._begin_capture()
        self._clock = asyncio.create_task(self._run(), name="audio-clock")
        self._set_health(PartState.OK, f"simulated, {self.sample_rate} Hz")

    async def stop(self) -> None:
        clock, self._clock = self._clock, None
        if clock is None:
            return
        clock.cancel()
        await asyncio.gather(clock, return_exceptions=True)
        while self._queued:
            _, done = self._queued.popleft()
            if not done.done():
                done.set_exception(AudioError("audio stopped"))
        self._end_capture("stopped")
        self._set_health(PartState.FAILED, "stopped")

    async def play(self, pcm: bytes) -> None:
        if self._clock is None:
            raise AudioError("audio not running")
        samples = np.frombuffer(pcm, "<i2")
        if samples.size == 0:
            return
        done = asyncio.get_running_loop().create_future()
        self._queued.append((samples, done))
        await done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        n = self.chunk_bytes // SAMPLE_BYTES
        due = loop.time()
        while True:
            # A stalled loop loses the ticks it missed, as a sound card under-runs, rather
            # than catching up in a burst faster than real time.
            due = max(due + CHUNK_S, loop.time() - CHUNK_S)
            await asyncio.sleep(max(0.0, due - loop.time()))
            self._tick(n)

    def _tick(self, n: int) -> None:
        """One clock tick of ``n`` samples. An idle speaker and a microphone nobody listens to
        cost next to nothing: a benchmark runs fifty simulated units side by side."""
        out = self._speak(n) if self._queued else None
        if not self._listeners:
            self.microphone.skip(n)
            return
        heard = self.microphone.next_samples(n)
        if out is not None:
            heard += self.loopback * out
        self._publish(np.clip(heard, -32768, 32767).astype("<i2").tobytes())

    def _speak(self, n: int) -> NDArray[np.float64]:
        """The next ``n`` samples of queued playback (zeros when idle); finishes completed plays."""
        out = np.zeros(n)
        filled = 0
        while filled < n and self._queued:
            samples, done = self._queued[0]
            if done.cancelled():  # the caller gave up: stop playing it
                self._queued.popleft()
                continue
            take = min(n - filled, samples.size)
            out[filled : filled + take] = samples[:take]
            self.speaker.played(samples[:take])
            filled += take
            if take == samples.size:
                self._queued.popleft()
                done.set_result(None)
            else:
                self._queued[0] = (samples[take:], done)
        return out
