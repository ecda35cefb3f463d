"""Masked copies of recordings and clips: every picture blurred as a still is, sound kept.

Looking for plates and faces costs far more than decoding a frame, and between two looks a fifth
of a second apart (``LOOK_EVERY`` frames at the units' 15 fps) nothing moves far; so only every
``LOOK_EVERY``-th frame is looked at, and each frame between two looks is blurred where *either*
look found something. A car driving into the picture is then covered from the last look before
it showed, without tracking anything. The frames in between wait in memory for the next look
(``LOOK_EVERY`` of them at most).

The copy is made to play in any browser, an insurer's or a party's phone: H.264 with AAC in MP4
where this PyAV has an H.264 encoder, else VP8 with Opus in WebM. The originals' sound (16 kHz
PCM, which neither format carries) is re-encoded, every track in its order; the sound itself is
not masked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from av.audio.stream import AudioStream
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from server.evidence.masking import Box, Masker, Region, blur

logger = logging.getLogger(__name__)

LOOK_EVERY = 3


@dataclass(frozen=True)
class VideoFormat:
    container: str
    suffix: str
    media_type: str
    video: str
    audio: str


MP4 = VideoFormat("mp4", ".mp4", "video/mp4", "libx264", "aac")
WEBM = VideoFormat("webm", ".webm", "video/webm", "libvpx", "libopus")


def video_format() -> VideoFormat:
    """H.264 in MP4 (Safari on an iPhone plays it) where there is an encoder for it, else VP8 in WebM."""
    try:
        av.codec.Codec(MP4.video, "w")
    except (av.error.FFmpegError, ValueError):
        return WEBM
    return MP4


def _picture(frame: VideoFrame) -> Image.Image:
    return Image.fromarray(frame.to_ndarray(format="rgb24"))


def _blurred(frame: VideoFrame, boxes: list[Box]) -> VideoFrame:
    image = _picture(frame)
    blur(image, boxes)
    out = VideoFrame.from_ndarray(np.asarray(image), format="rgb24").reformat(format="yuv420p")
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


class _Masking:
    """One copy being made: frames in, looked at every LOOK_EVERY-th, blurred and encoded."""

    def __init__(self, masker: Masker, kept: frozenset[str], out: VideoStream, container: Any) -> None:
        self._masker, self._kept, self._out, self._container = masker, kept, out, container
        self._waiting: list[VideoFrame] = []
        self._last: list[Box] = []
        self.frames = self.looks = self.plates_blurred = self.faces = 0
        self.kept: set[str] = set()

    def _look(self, frame: VideoFrame) -> list[Box]:
        found: list[Region] = self._masker.find(_picture(frame), self._kept)
        self.looks += 1
        self.plates_blurred += sum(r.kind == "plate" and not r.kept for r in found)
        self.faces += sum(r.kind == "face" for r in found)
        self.kept |= {r.text for r in found if r.kept and r.text}
        return [r.box for r in found if not r.kept]

    def _write(self, frame: VideoFrame, boxes: list[Box]) -> None:
        for packet in self._out.encode(_blurred(frame, boxes)):
            self._container.mux(packet)

    def frame(self, frame: VideoFrame) -> None:
        if self.frames % LOOK_EVERY == 0:
            self._looked(frame)
        else:
            self._waiting.append(frame)
        self.frames += 1

    def _looked(self, frame: VideoFrame) -> None:
        boxes = self._look(frame)
        for waiting in self._waiting:
            self._write(waiting, self._last + boxes)
        self._waiting, self._last = [], boxes
        self._write(frame, boxes)

    def finish(self) -> None:
        if self._waiting:
            last = self._waiting.pop()
            self._looked(last)
        for packet in self._out.encode(None):
            self._container.mux(packet)


def _audio_stream(dst: Any, codec: str, source: AudioStream) -> AudioStream:
    # A track written without a channel layout (the recorder's PCM) reads as "1 channels", which no
    # encoder takes: name it by its count.
    layout = "mono" if source.layout.nb_channels == 1 else "stereo"
    out: AudioStream = dst.add_stream(codec, rate=source.rate, layout=layout)
    formats = av.codec.Codec(codec, "w").audio_formats
    if formats:
        out.format = formats[0]  # the encoder's own; frames are converted to it
    return out


def mask_video(masker: Masker, source: Path, target: Path, kept: frozenset[str]) -> dict[str, Any]:
    """A masked copy of the recording or clip at ``source`` written to ``target`` in
    ``video_format()``; what was found. Packets that do not decode (the tail of a segment a crash
    cut short) are skipped."""
    fmt = video_format()
    faststart = {"movflags": "+faststart"} if fmt is MP4 else {}  # playable while it downloads
    with av.open(str(source)) as src, av.open(str(target), "w", format=fmt.container, options=faststart) as dst:
        if not src.streams.video:
            raise ValueError(f"{source.name} has no picture")
        vin = src.streams.video[0]
        vout = cast(VideoStream, dst.add_stream(fmt.video, rate=vin.average_rate or 15))
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        vout.codec_context.time_base = vin.time_base or Fraction(1, 1000)
        if fmt is MP4:
            vout.codec_context.options = {"preset": "veryfast", "crf": "23"}
        ains: list[AudioStream] = list(src.streams.audio)
        aouts = {a.index: _audio_stream(dst, fmt.audio, a) for a in ains}
        masking = _Masking(masker, kept, vout, dst)
        undecodable = 0
        for packet in src.demux(vin, *ains):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                undecodable += 1
                continue
            for frame in frames:
                if isinstance(frame, VideoFrame):
                    masking.frame(frame)
                elif isinstance(frame, av.AudioFrame):
                    for out in aouts[packet.stream.index].encode(frame):
                        dst.mux(out)
        masking.finish()
        for aout in aouts.values():
            for out in aout.encode(None):
                dst.mux(out)
    if undecodable:
        logger.warning("%s: %d packets did not decode and were left out of its masked copy", source.name, undecodable)
    return {
        "format": {"container": fmt.container, "video": fmt.video, "audio": fmt.audio},
        "look_every_frames": LOOK_EVERY,
        "frames": masking.frames,
        "looks": masking.looks,
        "plates_blurred": masking.plates_blurred,
        "plates_kept": sorted(masking.kept),
        "faces_blurred": masking.faces,
        "audio_tracks": len(aouts),
        "undecodable_packets": undecodable,
    }
