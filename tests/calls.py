"""A console's side of calls over its live WebSocket: joining as a viewer, asking for stills and clips."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiortc import AudioStreamTrack, MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from tests.wire import Console, event


class Viewer:
    """A console's peer connection made the console's way (an offer over the live WebSocket),
    counting the video frames it receives."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.pc = RTCPeerConnection()
        self.frames = 0
        self._reader: asyncio.Task[None] | None = None

    async def join(self, call_id: str) -> None:
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTrack(AudioStreamTrack())

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._reader = asyncio.create_task(self._count(track))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        join = {"type": "call.join", "call_id": call_id, "sdp": self.pc.localDescription.sdp}
        await self.console.ws.send(json.dumps(join))
        while (reply := await self.console.next_event(20))["type"] != "call.answer":
            assert reply["type"] != "call.error", reply
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))

    async def _count(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.frames += 1
        except MediaStreamError:
            return

    async def frames_keep_coming(self, within_s: float = 20) -> None:
        start = self.frames
        async with asyncio.timeout(within_s):
            while self.frames < start + 5:
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.pc.close()


async def ask(console: Console, take: str, call_id: str, **extra: Any) -> str:
    """``take``: ``still``, ``clip`` (the seconds before now) or ``report_clip`` (before the press)."""
    await console.ws.send(json.dumps({"type": f"{take}.take", "call_id": call_id, **extra}))
    requested = await event(console, "evidence.requested", 10)
    assert requested["call_id"] == call_id and requested["kind"] == take.removeprefix("report_")
    upload_id: str = requested["upload_id"]
    return upload_id
