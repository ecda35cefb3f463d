"""The unit's video forwarded as the unit encoded it: the worker never decodes or re-encodes a picture.

Decoding every unit's VP8 and encoding it again for each console cost a worker most of a core per
call (``docs/benchmarks.md``), while the console can show, and the recording can keep, exactly
the packets the unit sent, as a selective forwarding unit does. What that asks for instead:

- aiortc's receiver decodes in a thread of its own (``decoder_worker``); for a track handed to
  ``forward_encoded`` that thread passes each reassembled frame on as an ``av.Packet`` instead.
  aiortc has no switch for this, so its worker function is replaced once, by one that behaves
  exactly as aiortc's for every other track.
- An encoded stream can only be joined at a key frame: a console or a recording segment starts
  on one, and asks the unit for one (an RTCP picture-loss indication) rather than wait for the
  next (the unit's encoder makes one every 3,000 frames unless asked).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import aiortc.rtcrtpreceiver
import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket
from aiortc.sdp import SessionDescription
from av.frame import Frame

from server.calls.media import ConsoleView

logger = logging.getLogger(__name__)

VIDEO_CLOCK = fractions.Fraction(1, 90000)
KEYFRAME_EVERY_S = 0.5  # the most often the unit is asked for a key frame

_forwarded: weakref.WeakSet[asyncio.Queue[Any]] = weakref.WeakSet()
_aiortc_decoder_worker = aiortc.rtcrtpreceiver.decoder_worker


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """The picture size if ``data`` is a VP8 key frame (RFC 6386 9.1), else None."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF


def forward_encoded(track: MediaStreamTrack) -> None:
    """From now on ``track`` (a remote VP8 track, before its connection starts) yields packets."""
    assert isinstance(track, RemoteStreamTrack)
    _forwarded.add(track._queue)


def _worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    if output_q not in _forwarded:
        _aiortc_decoder_worker(loop, input_q, output_q, decode_error)
        return
    while (task := input_q.get()) is not None:
        _, encoded = task
        packet = av.Packet(encoded.data)
        packet.pts = packet.dts = encoded.timestamp
        packet.time_base = VIDEO_CLOCK
        packet.is_keyframe = vp8_size(encoded.data) is not None
        asyncio.run_coroutine_threadsafe(output_q.put(packet), loop)
    asyncio.run_coroutine_threadsafe(output_q.put(None), loop)


aiortc.rtcrtpreceiver.decoder_worker = _worker


class KeyframeAsker:
    """Asks the unit's current connection for a key frame, at most every ``KEYFRAME_EVERY_S``."""

    def __init__(self) -> None:
        self.pc: RTCPeerConnection | None = None
        self._last = -KEYFRAME_EVERY_S
        self._pending: asyncio.Task[None] | None = None

    def __call__(self) -> None:
        now = time.monotonic()
        if self.pc is None or now - self._last < KEYFRAME_EVERY_S or self._pending is not None:
            return
        self._last = now
        self._pending = asyncio.ensure_future(self._ask(self.pc))
        self._pending.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending = None
        if not task.cancelled() and task.exception() is not None:
            logger.warning("asking for a key frame failed: %s", task.exception())

    @staticmethod
    async def _ask(pc: RTCPeerConnection) -> None:
        for receiver in pc.getReceivers():
            if receiver.track is not None and receiver.track.kind == "video":
                for source in receiver.getSynchronizationSources():
                    await receiver._send_rtcp_pli(source.source)


def receives_video(offer_sdp: str) -> bool:
    """Whether the offer's video may flow back to its sender: a kiosk's is send-and-receive (its
    screen shows a dispatcher who shares a camera), an in-car unit's send-only."""
    try:
        media = SessionDescription.parse(offer_sdp).media
    except (ValueError, IndexError):
        return False
    return any(m.kind == "video" and m.direction in ("sendrecv", "recvonly") for m in media)


def relay_picture_loss(sender: RTCRtpSender, ask: Callable[[], None]) -> None:
    """A console that lost picture data (PLI or FIR from its browser) gets a key frame from the unit.

    aiortc's sender answers those by encoding a key frame itself, which a forwarded stream cannot.
    """
    handle = sender._handle_rtcp_packet

    async def handle_and_relay(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt != RTCP_PSFB_APP:
            ask()
        await handle(packet)

    sender._handle_rtcp_packet = handle_and_relay  # type: ignore[method-assign]


class ForwardedVideo(ConsoleView):
    """A console's copy of the unit's video packets, starting at a key frame.

    While the console's connection keeps up it gets every packet. When more than ``keep`` wait,
    the console is behind: it jumps to the newest key frame waiting, or drops them all and picks up
    at the next key frame, which it asks for (dropping packets in between a key frame and its
    successors would corrupt every picture until the next one).
    """

    def __init__(self, source: MediaStreamTrack, keep: int, ask: Callable[[], None]) -> None:
        super().__init__(source, keep)
        self._frames = collections.deque()  # no maxlen: only whole runs from a key frame go
        self._keep = keep
        self._ask = ask
        self._synced = False
        self.skipped = 0

    def _arrive(self, item: Frame | av.Packet[Any]) -> None:
        assert isinstance(item, av.Packet)
        if not self._synced and not item.is_keyframe:
            self.skipped += 1
            self._ask()
            return
        self._synced = True
        self._frames.append(item)
        if len(self._frames) > self._keep:
            self._catch_up()

    def _catch_up(self) -> None:
        """Jump to the newest key frame waiting, or, with none after the first, to the next one."""
        newest = max((i for i, p in enumerate(self._frames) if isinstance(p, av.Packet) and p.is_keyframe), default=0)
        drop = newest or len(self._frames)
        for _ in range(drop):
            self._frames.popleft()
        self.skipped += drop
        if not self._frames:
            self._synced = False
            self._ask()
