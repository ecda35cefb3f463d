"""A share of the call-capacity benchmark's units, each in a live call sending a ready-encoded clip.

Each feeder is a unit as the server sees it: its own certificate and MQTT connection, a report
the server accepts as a case, then the call's offer and answer over MQTT as ``device.call.agent``
does them. Its video is ``bench.vp8_clip`` (frames from the unit's VP8 encoder, sent as they are,
at the clip's 15 fps); its microphone is one second of a tone, Opus-encoded once and sent over
and over, one 20 ms packet at a time; the dispatcher's voice it receives is consumed. What the
server does per call is what it does for a real unit: decode, record, relay.

Speaks on stdin/stdout: prints ``ready`` once every call is connected; on ``sent T0 T1`` prints a
JSON object, call id -> the clip frame numbers sent between the epoch times T0 and T1; ends on end
of input.

    python -m bench.call_feeders FIRST COUNT BROKER_PORT FLEET_DIR CLIP
"""

from __future__ import annotations

import asyncio
import fractions
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.stack import bundle_tls, cancel_all
from bench.vp8_clip import read_clip
from device.hal.audio_simulated import MicSource
from protocol.ids import new_report_id
from protocol.messages import Ack, CallSignal, Command, decode, encode
from protocol.topics import Channel, device_topic
from runtime import runner
from tests.reports import WUHUA, in_car_report
from tests.wire import mqtt_client

VIDEO_CLOCK = fractions.Fraction(1, 90000)
VOICE_RATE = 48000
VOICE_SAMPLES = 960  # 20 ms


def voice_frame(mic: MicSource, number: int) -> av.AudioFrame:
    """A 20 ms frame of the simulated microphone: what the feeders encode, and what the recording
    benchmark hands the recorder as the media worker does after decoding a unit's sound."""
    frame = av.AudioFrame.from_ndarray(
        mic.next_samples(VOICE_SAMPLES).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = VOICE_RATE
    frame.pts, frame.time_base = number * VOICE_SAMPLES, fractions.Fraction(1, VOICE_RATE)
    return frame


def voice_packets(seconds: float = 1.0) -> list[bytes]:
    """A tone as the simulated microphone hears it, Opus-encoded by aiortc's encoder."""
    mic = MicSource(VOICE_RATE)
    mic.tone(440.0, 0.1)
    encoder = OpusEncoder()
    packets: list[bytes] = []
    for number in range(round(seconds * VOICE_RATE / VOICE_SAMPLES)):
        payloads, _ = encoder.encode(voice_frame(mic, number))
        packets.extend(payloads)
    return packets


class PacedTrack(MediaStreamTrack):
    """Ready-encoded packets at a fixed rate, looping; aiortc's sender packs them without encoding."""

    def __init__(self, kind: str, packets: list[bytes], rate: float, clock: int) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._period = 1 / rate
        self._step = round(clock / rate)
        self._time_base = fractions.Fraction(1, clock)
        self._start: float | None = None
        self._next = 0
        self.sent: list[tuple[int, float]] = []  # (packet number in the clip, epoch time sent)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._next * self._period
        if due > now:
            await asyncio.sleep(due - now)
        number = self._next % len(self._packets)
        packet = av.Packet(self._packets[number])
        packet.pts, packet.time_base = self._next * self._step, self._time_base
        self._next += 1
        if self.kind == "video":
            self.sent.append((number, time.time()))
        return packet


class Feeder:
    def __init__(self, device_id: str, broker_port: int, fleet_dir: Path, video: list[bytes], voice: list[bytes]):
        self.device_id = device_id
        self._port = broker_port
        self._tls = bundle_tls(fleet_dir, device_id)
        self.video = PacedTrack("video", video, 15, 90000)
        self._voice = voice
        self.call_id = new_report_id()
        self.connected = asyncio.Event()
        self.pc: RTCPeerConnection | None = None
        self._sink = MediaBlackhole()

    async def run(self) -> None:
        async with mqtt_client(self._port, self.device_id, self._tls) as client:
            await client.subscribe(device_topic(self.device_id, Channel.ACK), qos=1)
            await client.subscribe(device_topic(self.device_id, Channel.CMD), qos=1)
            report = in_car_report(self.device_id, WUHUA)
            await client.publish(device_topic(self.device_id, Channel.REPORT), encode(report), qos=1)
            messages = aiter(client.messages)
            ack = decode(Ack, await _next_on(messages, Channel.ACK))
            if ack.status != "accepted" or ack.case_no is None:
                raise RuntimeError(f"{self.device_id}: report not accepted: {ack.reason}")
            pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # as a unit with no STUN server

            @pc.on("connectionstatechange")
            def on_state() -> None:
                if pc.connectionState == "connected":
                    self.connected.set()

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                self._sink.addTrack(track)  # the dispatcher's voice: the unit would play it

            pc.addTrack(self.video)
            pc.addTrack(PacedTrack("audio", self._voice, VOICE_RATE / VOICE_SAMPLES, VOICE_RATE))
            await pc.setLocalDescription(await pc.createOffer())
            offer = CallSignal(
                type="offer",
                call_id=self.call_id,
                report_id=report.report_id,
                case_no=ack.case_no,
                sdp=pc.localDescription.sdp,
            )
            await client.publish(device_topic(self.device_id, Channel.CALL), encode(offer), qos=1)
            answer = decode(Command, await _next_on(messages, Channel.CMD))
            if answer.type != "call.answer":
                raise RuntimeError(f"{self.device_id}: {answer.type} instead of an answer: {answer.reason}")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp or "", type="answer"))
            await self._sink.start()
            while decode(Command, await _next_on(messages, Channel.CMD)).type != "call.end":
                pass  # until the server ends the call

    async def close(self) -> None:
        await self._sink.stop()
        if self.pc is not None:
            await self.pc.close()

    def sent_between(self, start: float, end: float) -> list[int]:
        return [number for number, at in self.video.sent if start <= at <= end]


def _payload(message: aiomqtt.Message) -> bytes:
    assert isinstance(message.payload, bytes)
    return message.payload


async def _next_on(messages: AsyncIterator[aiomqtt.Message], channel: Channel) -> bytes:
    async for message in messages:
        if message.topic.value.endswith("/" + channel.value):
            return _payload(message)
    raise RuntimeError("the broker connection ended")


async def feed(first: int, count: int, broker_port: int, fleet_dir: Path, clip: Path) -> None:
    _, video = read_clip(clip)
    voice = voice_packets()
    feeders = [Feeder(f"cap-{i:03d}", broker_port, fleet_dir, video, voice) for i in range(first, first + count)]
    tasks = [asyncio.create_task(f.run()) for f in feeders]
    try:
        async with asyncio.timeout(60):
            for feeder, task in zip(feeders, tasks, strict=True):
                connected = asyncio.create_task(feeder.connected.wait())
                await asyncio.wait({task, connected}, return_when=asyncio.FIRST_COMPLETED)
                if task.done():
                    task.result()  # it failed before connecting: say why
                connected.cancel()
        print("ready", flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().split():
            if line[0] == "sent":
                start, end = float(line[1]), float(line[2])
                print(json.dumps({f.call_id: f.sent_between(start, end) for f in feeders}), flush=True)
    finally:
        await cancel_all(tasks)
        await asyncio.gather(*(f.close() for f in feeders), return_exceptions=True)


if __name__ == "__main__":
    runner.run(feed(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])))
