"""The unit's video forwarded without decoding: a console and each recording segment start on a
key frame and ask the unit for one; the segments play on their own with every packet in them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from device.sim.scene import read_frame_counter
from server.calls.forwarding import ForwardedVideo, vp8_size
from server.calls.recorder import Segment, SegmentRecorder
from tests.unit_video import HEIGHT, WIDTH, UnitEncoder


def vp8_stream(count: int, keyframes_at: set[int]) -> list[av.Packet[Any]]:
    unit = UnitEncoder()
    return [packet for n in range(count) for packet in unit.encode(n, n in keyframes_at)]


class Fed(MediaStreamTrack):
    """The unit's packets as they reach the console's copy, fed by the test."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue()

    async def feed(self, *packets: av.Packet[Any] | None) -> None:
        for packet in packets:
            self._queue.put_nowait(packet)
        for _ in range(10):  # let the copy take them in, while its connection does not read
            await asyncio.sleep(0)

    async def recv(self) -> av.Packet[Any]:
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet


async def drain(track: MediaStreamTrack) -> list[int]:
    numbers = []
    with pytest.raises(MediaStreamError):
        while True:
            packet = await track.recv()
            assert isinstance(packet, av.Packet) and packet.pts is not None
            numbers.append(packet.pts)
    return numbers


def test_a_key_frame_is_told_from_the_others_and_gives_its_size() -> None:
    packets = vp8_stream(4, keyframes_at={0})
    assert [vp8_size(bytes(p)) for p in packets] == [(WIDTH, HEIGHT), None, None, None]
    assert vp8_size(b"") is None and vp8_size(b"\x00" * 12) is None


async def test_a_console_joining_mid_stream_starts_at_the_next_key_frame_and_asks_for_it() -> None:
    asked: list[int] = []
    packets = vp8_stream(12, keyframes_at={0, 6})
    source = Fed()
    view = ForwardedVideo(source, 8, lambda: asked.append(1))
    reading = asyncio.ensure_future(drain(view))
    await source.feed(*packets[2:], None)
    assert await reading == list(range(6, 12))
    assert asked  # it did not just wait for the unit's next scheduled key frame
    assert view.skipped == 4


async def test_a_console_that_falls_behind_drops_to_the_next_key_frame_never_into_the_middle() -> None:
    asked: list[int] = []
    packets = vp8_stream(10, keyframes_at={0, 7})
    source = Fed()
    view = ForwardedVideo(source, 3, lambda: asked.append(1))
    await source.feed(packets[0])
    assert (await view.recv()).pts == 0
    await source.feed(*packets[1:5])  # its connection is busy while 1-4 arrive: one too many
    assert asked  # 1-6 would not decode without every one of their predecessors
    await source.feed(*packets[5:], None)  # 7 is the unit's answer
    assert await drain(view) == [7, 8, 9]
    assert view.skipped == 6


async def test_a_console_behind_a_key_frame_jumps_to_it_without_asking() -> None:
    asked: list[int] = []
    packets = vp8_stream(6, keyframes_at={0, 4})
    source = Fed()
    view = ForwardedVideo(source, 3, lambda: asked.append(1))
    await source.feed(packets[0])
    assert (await view.recv()).pts == 0
    await source.feed(*packets[1:], None)
    assert await drain(view) == [4, 5]
    assert not asked and view.skipped == 3


async def test_segments_start_on_key_frames_asked_for_when_due_and_play_on_their_own(tmp_path: Path) -> None:
    segments: list[Segment] = []
    asked: list[int] = []
    recorder = SegmentRecorder(tmp_path, "call-x", 1.0, 15, segments.append, lambda: asked.append(1))
    unit = UnitEncoder()
    answered = 0
    for n in range(45):
        # The unit answers a key-frame request with its next picture, as aiortc's sender does.
        keyframe = len(asked) > answered
        answered = len(asked)
        for packet in unit.encode(n, keyframe):
            recorder.video(packet)
        await asyncio.sleep(1 / 15)
    await recorder.stop()
    await asyncio.sleep(0)  # the last segment's report is scheduled on the loop
    assert asked and len(segments) >= 2
    shown = []
    for segment in segments:
        with av.open(str(segment.path)) as container:
            assert container.streams.video[0].codec_context.name == "vp8"
            frames = list(container.decode(video=0))
        assert frames, segment.path
        shown += [read_frame_counter(np.asarray(f.to_ndarray(format="rgb24"))) for f in frames]
    assert shown == list(range(45))  # every picture, in order, each segment decodable from its start
