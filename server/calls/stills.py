"""What a phone's call needs beyond a unit's: VP8 only in the answer, a tile's sound silenced while
the dispatcher has the phone muted, and a still made from one key frame (``server.calls.participants``)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver

from server.errors import TimedOut

# What forwarding and recording take: the phone's browser is answered with nothing else.
_CAPABILITIES = RTCRtpReceiver.getCapabilities("video")
VP8 = [c for c in (_CAPABILITIES.codecs if _CAPABILITIES else []) if c.mimeType in ("video/VP8", "video/rtx")]


class Silenced(MediaStreamTrack):
    """``source``'s sound, or silence in its place while ``muted()``."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, muted: Callable[[], bool]) -> None:
        super().__init__()
        self._source = source
        self._muted = muted

    async def recv(self) -> Any:
        frame = await self._source.recv()
        if self._muted() and isinstance(frame, av.AudioFrame):
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
        return frame

    def stop(self) -> None:
        super().stop()
        self._source.stop()


def jpeg_of_keyframe(keyframe: bytes) -> bytes:
    """A VP8 key frame decoded once, as a JPEG. Blocking."""
    codec = av.CodecContext.create("vp8", "r")
    frames = codec.decode(av.Packet(keyframe))
    if not frames:
        raise TimedOut("手机画面无法解码，请稍后再拍 (the key frame did not decode)")
    out = io.BytesIO()
    frames[0].to_image().save(out, "JPEG", quality=90)  # type: ignore[no-untyped-call]
    return out.getvalue()


def write_new(path: Path, data: bytes) -> str:
    """``data`` as a new file (never over another one); its SHA-256. Blocking."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("xb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()
