"""When the call's video cannot connect: the scene as stills and sound over MQTT.

Some networks never let WebRTC through (no UDP, a symmetric NAT and no TURN server, a TURN server
that refuses the unit), yet the report got through them over MQTT. So once a call has had no
video connection for ``degrade_after_s``, the same link carries the scene: every
``degraded_every_s`` a small JPEG of the camera's newest frame and the sound since the last one
(Opus in Ogg, about 2 KB a second), each whole in one ``SceneSample``. The agent keeps trying the
video meanwhile; when it connects the samples stop, and start again if it is lost for as long.

It costs little on a Pi: per cycle one downscaled JPEG and a few seconds of Opus, on a worker
thread. A sample the link cannot take is dropped, not queued: an old glimpse of the scene is worth
less than the next one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from PIL import Image

from device.call.agent import Connected
from device.config import DeviceConfig
from device.hal.audio import SAMPLE_BYTES, AudioError
from device.hal.camera import CameraError, Frame
from device.hardware import Hardware
from protocol.messages import SCENE_MAX_BYTES, SceneSample, encode
from protocol.topics import Channel

if TYPE_CHECKING:
    from device.call.agent import Publish

logger = logging.getLogger(__name__)

STILL_QUALITIES = (60, 45, 30, 20)  # tried in turn until the JPEG fits in a message
SOUND_BITRATE = 16_000  # Opus, mono: speech stays clear


def small_jpeg(frame: Frame, width: int, max_bytes: int = SCENE_MAX_BYTES) -> bytes:
    image = Image.fromarray(frame)
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.BILINEAR)
    for quality in STILL_QUALITIES:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        if out.tell() <= max_bytes:
            return out.getvalue()
    raise ValueError(f"a still {image.width} pixels wide does not fit in {max_bytes} bytes")


def opus_ogg(pcm: bytes, sample_rate: int) -> bytes:
    """16-bit mono PCM as Opus in Ogg, which browsers play in an <audio> element."""
    out = io.BytesIO()
    import av  # the media stack is loaded with the first call, not at boot (see device/call/agent.py)

    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=sample_rate)
        stream.layout = "mono"
        stream.bit_rate = SOUND_BITRATE
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // SAMPLE_BYTES)
        frame.planes[0].update(pcm)
        frame.sample_rate = sample_rate
        frame.pts = 0
        for packet in (*stream.encode(frame), *stream.encode(None)):
            container.mux(packet)
    return out.getvalue()


async def while_disconnected(connected: Connected, after_s: float, sender: SceneSender) -> None:
    """Runs for the whole call: the sender works whenever the video has been down for ``after_s``."""
    while True:
        await connected.lost.wait()
        try:
            async with asyncio.timeout(after_s):
                await connected.wait()
        except TimeoutError:
            await sender.until(connected)


class SceneSender:
    def __init__(
        self, cfg: DeviceConfig, hardware: Hardware, publish: Publish, call_id: str, report_id: str, case_no: str
    ) -> None:
        self._cfg = cfg.webrtc
        self._hw = hardware
        self._publish = publish
        self._call_id, self._report_id, self._case_no = call_id, report_id, case_no
        self._seq = 0
        self._missing: set[str] = set()  # parts already reported missing

    async def until(self, connected: asyncio.Event) -> None:
        call_id = self._call_id
        logger.warning(
            "call %s: no video for %.0f s; sending stills and sound over MQTT", call_id, self._cfg.degrade_after_s
        )
        sending = asyncio.create_task(self._run())
        try:
            await connected.wait()
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
        logger.info("call %s: video connected; stills and sound stop after %d", call_id, self._seq)

    async def _run(self) -> None:
        every = self._cfg.degraded_every_s
        began = datetime.now(UTC)
        sound = asyncio.create_task(self._sound(every))
        try:
            while True:
                pcm = await sound
                # The next stretch starts now, while this one is encoded: the sound has no gaps.
                heard_from, began = began, datetime.now(UTC)
                sound = asyncio.create_task(self._sound(every))
                self._seq += 1
                taken_at = datetime.now(UTC)
                still = await self._still()
                if still is not None:
                    await self._send("still", still, taken_at)
                if pcm is not None:
                    ogg = await asyncio.to_thread(opus_ogg, pcm, self._hw.audio.sample_rate)
                    await self._send("sound", ogg, heard_from, len(pcm) / SAMPLE_BYTES / self._hw.audio.sample_rate)
        finally:
            sound.cancel()

    async def _sound(self, seconds: float) -> bytes | None:
        try:
            return await self._hw.audio.record(seconds)
        except AudioError as exc:
            self._report_missing("microphone", exc)
            await asyncio.sleep(seconds)
            return None

    async def _still(self) -> bytes | None:
        try:
            frame = await self._hw.camera.frame()
        except CameraError as exc:
            self._report_missing("camera", exc)
            return None
        return await asyncio.to_thread(small_jpeg, frame, self._cfg.degraded_still_width)

    async def _send(
        self, kind: Literal["still", "sound"], data: bytes, at: datetime, duration_s: float | None = None
    ) -> None:
        if len(data) > SCENE_MAX_BYTES:
            logger.warning("call %s: %s %d too large to send: %d bytes", self._call_id, kind, self._seq, len(data))
            return
        sample = SceneSample(
            type=kind,
            call_id=self._call_id,
            report_id=self._report_id,
            case_no=self._case_no,
            seq=self._seq,
            captured_at=at,
            duration_s=duration_s,
            sha256=hashlib.sha256(data).hexdigest(),
            data=base64.b64encode(data).decode(),
        )
        if not await self._publish(Channel.SCENE, encode(sample)):
            logger.info("call %s: %s %d dropped, the link is down", self._call_id, kind, self._seq)

    def _report_missing(self, part: str, exc: Exception) -> None:
        if part not in self._missing:
            self._missing.add(part)
            logger.warning("call %s: no %s for the stills and sound: %s", self._call_id, part, exc)
