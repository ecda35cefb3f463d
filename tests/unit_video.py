"""A unit's video as its aiortc sender puts it on the wire: VP8 from libvpx, numbered scene frames
(so that a test tells which frame it got), for the forwarding, recording and statement-timing tests
that feed the server packets without a peer connection."""

from __future__ import annotations

import fractions
from typing import Any

import av

from device.sim.scene import Scene
from server.calls.forwarding import vp8_size

WIDTH, HEIGHT = 320, 240


class UnitEncoder:
    """Numbered scene frames encoded by libvpx with the settings of a unit's aiortc sender."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("libvpx", "w")
        self._codec.width, self._codec.height, self._codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        self._codec.bit_rate, self._codec.gop_size = 500_000, 3000
        self._codec.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0"}
        self._scene = Scene(WIDTH, HEIGHT, seed=3)

    def encode(self, n: int, keyframe: bool = False) -> list[av.Packet[Any]]:
        frame = av.VideoFrame.from_ndarray(self._scene.render(n).image, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = n, fractions.Fraction(1, 15)
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        packets = []
        for encoded in self._codec.encode(frame):
            packet = av.Packet(bytes(encoded))
            packet.pts, packet.time_base = n, fractions.Fraction(1, 15)
            packet.is_keyframe = vp8_size(bytes(encoded)) is not None
            packets.append(packet)
        return packets
