"""The unit's camera and microphone as WebRTC tracks, and the remote voice onto its speaker.

Tracks read the hardware layer's shared streams (``Camera.next_frame``, ``Audio.read_chunk``), so
the call never competes with anything else for the camera or microphone; encoding happens on
aiortc's executor, not on the event loop. Timestamps come from the capture clock, so audio and
video stay in step even when the camera's rate wanders.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import io
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

import runtime.audio_level  # noqa: F401  (aiortc sends our microphone with it)
from device.hal.audio import SAMPLE_BYTES, Audio, AudioError
from device.hal.camera import Camera, CameraError
from device.hal.screen import Screen

if TYPE_CHECKING:
    from device.call.line import Line

logger = logging.getLogger(__name__)

VIDEO_CLOCK = fractions.Fraction(1, 90000)
# How much of the dispatcher's voice may wait for the speaker before the oldest is dropped:
# a live conversation must not drift behind.
SPEAKER_BACKLOG = 4


class CameraTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, camera: Camera) -> None:
        super().__init__()
        self._camera = camera
        self._start = time.monotonic()

    async def recv(self) -> av.VideoFrame:
        try:
            image = await self._camera.next_frame()
        except CameraError as exc:
            self.stop()
            raise MediaStreamError(str(exc)) from None
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = round((time.monotonic() - self._start) * 90000)
        frame.time_base = VIDEO_CLOCK
        return frame


class MicrophoneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, audio: Audio) -> None:
        super().__init__()
        self._audio = audio
        self._samples = 0
        self._clock = fractions.Fraction(1, audio.sample_rate)

    async def recv(self) -> av.AudioFrame:
        try:
            pcm = await self._audio.read_chunk()
        except AudioError as exc:
            self.stop()
            raise MediaStreamError(str(exc)) from None
        samples = len(pcm) // SAMPLE_BYTES
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(pcm)
        frame.sample_rate = self._audio.sample_rate
        frame.pts = self._samples
        frame.time_base = self._clock
        self._samples += samples
        return frame


async def play_remote_voice(
    track: MediaStreamTrack, audio: Audio, silent_after_s: float, heard: Callable[[av.AudioFrame], None]
) -> None:
    """Until the track ends: the far end's voice, resampled to the sound card's rate, on the speaker;
    ``heard`` gets each frame as it arrives (the screen's voice meter).

    The server sends a frame every 20 ms, silence included, so a track that delivers nothing for
    ``silent_after_s`` is a dead connection (the server gone, the network gone) long before ICE
    consent checks would say so: the function returns, and the caller renegotiates."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=audio.sample_rate)
    playing: list[asyncio.Task[None]] = []
    try:
        while True:
            try:
                async with asyncio.timeout(silent_after_s):
                    frame = await track.recv()
            except MediaStreamError:
                return
            except TimeoutError:
                logger.warning("call: nothing from the server for %.0f s", silent_after_s)
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            heard(frame)
            for out in resampler.resample(frame):
                for task in [t for t in playing if t.done()]:
                    playing.remove(task)
                    if not task.cancelled() and isinstance(task.exception(), AudioError):
                        logger.warning(
                            "call: the speaker is unavailable (%s); the voice is not played", task.exception()
                        )
                        return
                if len(playing) >= SPEAKER_BACKLOG:
                    continue  # the speaker is behind: drop this 20 ms rather than fall further behind
                # Each play queues its samples on its first step, and tasks start in creation
                # order, so the voice is played in order without waiting for each piece.
                playing.append(asyncio.create_task(audio.play(out.to_ndarray().tobytes())))
    finally:
        for task in playing:
            task.cancel()
        for task in playing:
            with contextlib.suppress(asyncio.CancelledError):
                await task


PICTURES_PER_S = 8  # enough to see a face and a gesture; each is a JPEG for the kiosk's browser
PICTURE_WIDTH = 640
PICTURE_GONE_S = 2.0  # no picture for this long: the dispatcher stopped sharing


async def show_dispatcher(track: MediaStreamTrack, screen: Screen, line: Line) -> None:
    """The dispatcher's camera on a kiosk's screen, a few pictures a second; taken off the screen
    when they stop coming (the dispatcher stopped sharing, or left)."""
    shown_at = 0.0
    while True:
        try:
            frame = await asyncio.wait_for(track.recv(), PICTURE_GONE_S)
        except TimeoutError:
            line.video(False)
            continue
        except MediaStreamError:
            line.video(False)
            return
        now = time.monotonic()
        if now - shown_at < 1 / PICTURES_PER_S or not isinstance(frame, av.VideoFrame):
            continue
        shown_at = now
        screen.picture(await asyncio.to_thread(_jpeg, frame))
        line.video(True)


def _jpeg(frame: av.VideoFrame) -> bytes:
    picture = frame.to_image()  # type: ignore[no-untyped-call]
    if picture.width > PICTURE_WIDTH:
        picture = picture.resize((PICTURE_WIDTH, round(picture.height * PICTURE_WIDTH / picture.width)))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=75)
    return out.getvalue()
