"""A clip of the simulated camera, VP8-encoded once, for load that costs the sender almost nothing.

The call-capacity benchmark needs many units streaming at once on the same two cores as the
server. A simulated unit renders its scene and encodes it live, about a third of a core each; a
feeder that sends these ready-encoded frames costs a few per cent, and the server receives the
same thing: frames from aiortc's own VP8 encoder (``aiortc.codecs.vpx.Vp8Encoder``, the unit's) at
640x480, 15 fps and the 1.5 Mbit/s a unit's call reaches on loopback after some 25 s. Frame ``n``
of the clip is the scene's frame ``n``, counter stamped, so a recording says which frames arrived.

A unit answers the server's request for a key frame (a console joining, a recording segment due)
with its next picture; a clip cannot, so it has a key frame every second (``KEYFRAME_EVERY``), and
the server waits at most that long.

The file is IVF (the plain VP8 container: a 32-byte header, then each frame with its size and
timestamp), so ``ffprobe`` reads it too.
"""

from __future__ import annotations

import fractions
import struct
from pathlib import Path

import av
from aiortc.codecs.vpx import MAX_BITRATE, Vp8Encoder, vp8_depayload

from device.sim.scene import Scene

CLIP_BITRATE = MAX_BITRATE
KEYFRAME_EVERY = 15
_HEADER = struct.Struct("<4sHH4sHHIII4x")
_FRAME = struct.Struct("<IQ")


def make_clip(path: Path, frames: int, width: int = 640, height: int = 480, fps: int = 15) -> None:
    """Render ``frames`` frames of the simulated scene and write them VP8-encoded to ``path``."""
    scene = Scene(width, height, seed=1, fps=fps)
    encoder = Vp8Encoder()
    encoder.target_bitrate = CLIP_BITRATE
    with path.open("wb") as out:
        out.write(_HEADER.pack(b"DKIF", 0, _HEADER.size, b"VP80", width, height, fps, 1, frames))
        for number in range(frames):
            frame = av.VideoFrame.from_ndarray(scene.render(number).image, format="rgb24")
            frame.pts, frame.time_base = number, fractions.Fraction(1, fps)
            payloads, _ = encoder.encode(frame, force_keyframe=number % KEYFRAME_EVERY == 0)
            data = b"".join(vp8_depayload(p) for p in payloads)
            out.write(_FRAME.pack(len(data), number) + data)


def read_clip(path: Path) -> tuple[int, list[bytes]]:
    """The clip's frame rate and its frames, in order."""
    data = path.read_bytes()
    magic, _, size, fourcc, _, _, rate, scale, count = _HEADER.unpack_from(data)
    if magic != b"DKIF" or fourcc != b"VP80" or scale != 1:
        raise ValueError(f"{path}: not a VP8 clip written by make_clip")
    frames = []
    pos = size
    for _ in range(count):
        length, _ = _FRAME.unpack_from(data, pos)
        pos += _FRAME.size
        frames.append(data[pos : pos + length])
        pos += length
    return rate, frames
