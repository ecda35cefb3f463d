"""A console's copy of a call's sound, behind aiortc's relay: frames that arrive together all
reach the console's encoder, and an encoder that falls behind gets only the newest few. The voices
of the consoles on a call reach the device mixed, on time."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from server.calls.media import ConsoleView, VoiceToDevice


class Bursts(MediaStreamTrack):
    """Numbered frames, ``size`` at a time: a decoder catching up after the event loop was busy."""

    kind = "video"

    def __init__(self, count: int, size: int) -> None:
        super().__init__()
        self._next = 0
        self._count = count
        self._size = size

    async def recv(self) -> av.VideoFrame:
        if self._next % self._size == 0:
            await asyncio.sleep(0)  # the rest of the burst is there at once
        if self._next == self._count:
            self.stop()
            raise MediaStreamError
        frame = av.VideoFrame(16, 16, "yuv420p")
        frame.pts, frame.time_base = self._next, fractions.Fraction(1, 15)
        self._next += 1
        return frame


async def drain(track: MediaStreamTrack) -> list[int]:
    numbers = []
    with pytest.raises(MediaStreamError):
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.VideoFrame) and frame.pts is not None
            numbers.append(frame.pts)
    return numbers


async def test_frames_that_arrive_together_all_reach_a_console_that_keeps_up() -> None:
    relay = MediaRelay()
    source = Bursts(10, size=2)
    view = ConsoleView(relay.subscribe(source), keep=3)
    unbuffered = relay.subscribe(source, buffered=False)  # what a console was given before
    seen, latest_only = await asyncio.gather(drain(view), drain(unbuffered))
    assert seen == list(range(10))
    assert len(latest_only) < 10  # the relay's unbuffered copy loses frames of a burst


async def test_a_console_that_falls_behind_gets_the_newest_frames_only() -> None:
    relay = MediaRelay()
    view = ConsoleView(relay.subscribe(Bursts(10, size=2)), keep=3)
    first = await view.recv()  # starts the relay
    await asyncio.sleep(0.05)  # the encoder is busy while the other frames arrive
    assert first.pts == 0
    assert await drain(view) == [7, 8, 9]


async def test_a_stopped_console_view_stops_its_relay_copy() -> None:
    relay = MediaRelay()
    copy = relay.subscribe(Bursts(10, size=2))
    view = ConsoleView(copy, keep=3)
    await view.recv()
    view.stop()
    assert copy.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await view.recv()


def tone(hz: float, start: int) -> av.AudioFrame:
    """20 ms of a console's microphone (48 kHz mono, as a browser sends it), from sample ``start``."""
    t = (start + np.arange(960)) / 48000
    frame = av.AudioFrame.from_ndarray(
        (6000 * np.sin(2 * np.pi * hz * t)).astype(np.int16).reshape(1, -1), layout="mono"
    )
    frame.sample_rate = 48000
    return frame


def strength(pcm: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(spectrum[round(hz * len(pcm) / 48000)] / len(pcm))


async def test_two_consoles_talking_at_once_reach_the_device_mixed_in_time() -> None:
    heard: list[av.AudioFrame] = []
    voice = VoiceToDevice(heard.append)
    sent = []
    for slot in range(25):  # half a second, each console's microphone arriving in real time
        voice.speak("dispatcher", tone(450, slot * 960))
        voice.speak("officer", tone(1000, slot * 960))
        sent.append(await voice.recv())
    voice.leave("officer")
    for slot in range(25, 35):
        voice.speak("dispatcher", tone(450, slot * 960))
        sent.append(await voice.recv())
    sent.append(await voice.recv())  # nobody talks: silence, still on time
    assert heard == sent
    pcm = [f.to_ndarray().reshape(-1) for f in sent]
    # 450 and 1000 Hz fall on the bins of a 20 ms frame: a tone there reads 3000, an absent one ~0.
    assert all(strength(p, 450) > 2500 and strength(p, 1000) > 2500 for p in pcm[:25])  # both, every frame
    assert all(strength(p, 450) > 2500 and strength(p, 1000) < 10 for p in pcm[25:35])  # the officer left
    assert not pcm[35].any()
    assert [f.pts for f in sent] == [n * 960 for n in range(36)]
