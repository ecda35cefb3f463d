"""The call-capacity benchmark's dispatchers: one console per call, watching it, in a process of their own.

Each viewer logs in (the benchmark's admin), opens the live WebSocket and joins its call the way
``server/console/call.js`` does: an SDP offer with video to receive and a microphone to send (here
aiortc's silent audio track), the server's answer back on the socket. It counts the video frames
it decodes, with their arrival times, and consumes the unit's sound.

Speaks on stdin/stdout: ``join CALL_ID...`` joins those calls and prints ``ready`` once each has
shown a frame; ``count T0 T1`` prints a JSON object, call id -> [frames received between the epoch
times T0 and T1, video packets lost since joining]; ends on end of input.

    python -m bench.call_viewers BASE_URL
"""

from __future__ import annotations

import asyncio
import bisect
import json
import sys
import time
from pathlib import Path

from aiortc import AudioStreamTrack, MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.report_latency import PASSWORD
from runtime import runner
from tests.wire import Console


class Viewer:
    def __init__(self, base_url: str, call_id: str) -> None:
        self.call_id = call_id
        self.console = Console(base_url)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.arrivals: list[float] = []
        self._sound = MediaBlackhole()
        self._reader: asyncio.Task[None] | None = None

    async def join(self) -> None:
        assert (await self.console.login("bench", PASSWORD)).is_success
        await self.console.connect_live()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTrack(AudioStreamTrack())

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._reader = asyncio.create_task(self._count(track))
            else:
                self._sound.addTrack(track)

        await self.pc.setLocalDescription(await self.pc.createOffer())
        join = {"type": "call.join", "call_id": self.call_id, "sdp": self.pc.localDescription.sdp}
        await self.console.ws.send(json.dumps(join))
        while (reply := await self.console.next_event(30))["type"] != "call.answer":
            if reply["type"] == "call.error":
                raise RuntimeError(f"call {self.call_id}: {reply['reason']}")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        await self._sound.start()
        async with asyncio.timeout(30):
            while not self.arrivals:
                await asyncio.sleep(0.05)

    async def _count(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.arrivals.append(time.time())
        except MediaStreamError:
            return

    def received_between(self, start: float, end: float) -> int:
        return bisect.bisect_right(self.arrivals, end) - bisect.bisect_left(self.arrivals, start)

    async def video_packets_lost(self) -> int:
        """RTP packets of the video that never arrived, since the call was joined."""
        stats = await self.pc.getStats()
        return sum(s.packetsLost for s in stats.values() if s.type == "inbound-rtp" and s.kind == "video")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self._sound.stop()
        await self.pc.close()
        await self.console.close()


async def watch(base_url: str) -> None:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    viewers: list[Viewer] = []
    try:
        while line := (await reader.readline()).decode().split():
            if line[0] == "join":
                joining = [Viewer(base_url, call_id) for call_id in line[1:]]
                viewers += joining
                await asyncio.gather(*(v.join() for v in joining))
                print("ready", flush=True)
            elif line[0] == "count":
                start, end = float(line[1]), float(line[2])
                counts = {v.call_id: [v.received_between(start, end), await v.video_packets_lost()] for v in viewers}
                print(json.dumps(counts), flush=True)
    finally:
        await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)


if __name__ == "__main__":
    runner.run(watch(sys.argv[1]))
