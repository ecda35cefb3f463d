"""One live call at a time: offer when a report is accepted, heal the connection, end when told.

The device offers (it owns the camera and microphone) and the server answers over ``cmd``. aiortc
cannot restart ICE on a live connection, so a connection that fails, or stays disconnected for
``reconnect_after_s``, is replaced by a new one offered under the same ``call_id`` with the next
``attempt``: the dispatcher sees the picture come back, the server keeps one call and one
recording. While the broker is unreachable the offer waits for it; the call gives up only when
the server ends it, or after ``max_call_min``.

aiortc and PyAV (about 35 MB resident) are imported when the first call starts, not when the
firmware starts: a unit waiting for a press stays small on a Pi with 512 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from device.config import DeviceConfig
from device.hardware import Hardware
from protocol.ids import new_report_id
from protocol.messages import CallSignal, Command, encode
from protocol.topics import Channel
from runtime.peers import close_peer

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack, RTCConfiguration

    from device.call.line import Line

logger = logging.getLogger(__name__)

Publish = Callable[[Channel, bytes], Awaitable[bool]]


def rtc_configuration(cfg: DeviceConfig) -> RTCConfiguration:
    from aiortc import RTCConfiguration, RTCIceServer
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    # An explicit empty list: aiortc's default is a public STUN server, which a unit must not
    # depend on (nor wait for, on a network that cannot reach it).
    servers = [RTCIceServer(s.urls, s.username, s.credential) for s in cfg.webrtc.ice_servers]
    policy = RTCIceTransportPolicy.RELAY if cfg.webrtc.relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


class Connected(asyncio.Event):
    """Whether the call's video is connected, with ``lost`` to wait on for the opposite."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = asyncio.Event()
        self.lost.set()

    def set(self) -> None:
        super().set()
        self.lost.clear()

    def clear(self) -> None:
        super().clear()
        self.lost.set()


@dataclass
class _Call:
    call_id: str
    report_id: str
    case_no: str
    attempt: int = 0
    relay_problem: str | None = None  # the last one logged
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    answers: asyncio.Queue[Command] = field(default_factory=asyncio.Queue)
    line: Line | None = None  # what a kiosk's screen shows of it


class CallAgent:
    def __init__(self, cfg: DeviceConfig, hardware: Hardware, publish: Publish, link_up: asyncio.Event) -> None:
        self._cfg = cfg
        self._hw = hardware
        self._publish = publish
        self._link_up = link_up
        self._call: _Call | None = None
        self._task: asyncio.Task[None] | None = None
        self._failed: asyncio.Event | None = None  # set to give up the current connection
        self.connected = Connected()  # media flows to the server (tests and the demo watch it)

    @property
    def call_id(self) -> str | None:
        return self._call.call_id if self._call else None

    def start(self, report_id: str, case_no: str) -> None:
        """Called when the server accepts a report; a second report during a call joins nothing."""
        if self._call is not None:
            logger.info("call %s still running; report %s gets no second call", self._call.call_id, report_id)
            return
        call = self._call = _Call(new_report_id(), report_id, case_no)
        self._task = asyncio.create_task(self._run(call), name=f"call-{call.call_id}")
        self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._call = None
        self._task = None
        self.connected.clear()
        if not task.cancelled() and task.exception() is not None:
            logger.error("call ended by an error", exc_info=task.exception())

    async def hang_up(self, reason: str) -> None:
        call = self._call
        if call is None:
            return
        signal = CallSignal(
            type="hangup", call_id=call.call_id, report_id=call.report_id, case_no=call.case_no, reason=reason
        )
        await self._publish(Channel.CALL, encode(signal))
        call.ended.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def network_changed(self) -> None:
        """The broker link came back after a drop: the unit's address has probably changed (another
        cell, Wi-Fi to 4G), so the media connection is made again now rather than when it dies."""
        if self._failed is not None and not self._failed.is_set():
            logger.info("call %s: network changed; renegotiating", self.call_id)
            self._failed.set()

    def on_command(self, command: Command) -> None:
        call = self._call
        if call is None or command.call_id != call.call_id:
            logger.info("device: %s for call %s, which is not running; ignored", command.type, command.call_id)
            return
        if command.type == "call.end":
            logger.info("call %s ended by the server: %s", call.call_id, command.reason)
            call.ended.set()
        elif command.type == "call.status":
            if call.line is not None:
                call.line.operators(command.operators or [])
        else:
            call.answers.put_nowait(command)

    async def _run(self, call: _Call) -> None:
        from device.call.degraded import SceneSender, while_disconnected
        from device.call.line import Line

        logger.info("call %s for case %s: starting", call.call_id, call.case_no)
        screen = self._hw.screen
        line = call.line = Line(screen.call if screen is not None else lambda view: None)
        ended = asyncio.create_task(call.ended.wait())
        scene = SceneSender(self._cfg, self._hw, self._publish, call.call_id, call.report_id, call.case_no)
        fallback = asyncio.create_task(while_disconnected(self.connected, self._cfg.webrtc.degrade_after_s, scene))
        try:
            async with asyncio.timeout(self._cfg.webrtc.max_call_min * 60):
                while not call.ended.is_set():
                    connection = asyncio.create_task(self._connect_once(call))
                    await asyncio.wait({connection, ended}, return_when=asyncio.FIRST_COMPLETED)
                    if not connection.done():
                        connection.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await connection
        except TimeoutError:
            logger.info("call %s: longest call time reached", call.call_id)
            await self.hang_up("longest call time reached")
        finally:
            ended.cancel()
            fallback.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fallback
            line.ended()
        logger.info("call %s ended", call.call_id)

    async def _connect_once(self, call: _Call) -> None:
        """One peer connection, from offer until it fails or is replaced."""
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from device.call.tracks import CameraTrack, MicrophoneTrack, show_dispatcher
        from device.call.turn_check import has_relay_candidate

        await self._link_up.wait()
        line = call.line
        assert line is not None, "set when the call starts"
        call.attempt += 1
        pc = RTCPeerConnection(rtc_configuration(self._cfg))
        failed = self._failed = asyncio.Event()
        voice: list[asyncio.Task[None]] = []
        watchdog: asyncio.Task[None] | None = None

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            nonlocal watchdog
            state = pc.connectionState
            logger.info("call %s attempt %d: %s", call.call_id, call.attempt, state)
            if state == "connected":
                self.connected.set()
                line.connected(True)
                if watchdog is not None:
                    watchdog.cancel()
            elif state == "disconnected":
                self.connected.clear()
                line.connected(False)
                watchdog = asyncio.create_task(_fail_after(failed, self._cfg.webrtc.reconnect_after_s))
            elif state in ("failed", "closed"):
                self.connected.clear()
                line.connected(False)
                failed.set()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                voice.append(asyncio.create_task(self._voice(track, failed, line)))
            elif track.kind == "video" and self._hw.screen is not None:
                voice.append(asyncio.create_task(show_dispatcher(track, self._hw.screen, line)))

        try:
            # A kiosk's screen shows the dispatcher when they share a camera; an in-car unit only sends.
            camera = CameraTrack(self._hw.camera)
            if self._hw.screen is not None:
                pc.addTrack(camera)
            else:
                pc.addTransceiver(camera, direction="sendonly")
            pc.addTrack(MicrophoneTrack(self._hw.audio))
            await pc.setLocalDescription(await pc.createOffer())
            if self._cfg.webrtc.relay_only and not has_relay_candidate(pc.localDescription.sdp):
                await self._no_relay(call)
                return
            offer = CallSignal(
                type="offer",
                call_id=call.call_id,
                report_id=call.report_id,
                case_no=call.case_no,
                attempt=call.attempt,
                sdp=pc.localDescription.sdp,
            )
            if not await self._publish(Channel.CALL, encode(offer)):
                await asyncio.sleep(1)  # the link dropped under us; the loop offers again
                return
            answer = await self._answer(call)
            if answer is None:
                return
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp or "", type="answer"))
            await failed.wait()
            logger.warning("call %s attempt %d lost; offering again", call.call_id, call.attempt)
        finally:
            if watchdog is not None:
                watchdog.cancel()
            for task in voice:
                task.cancel()
            await close_peer(pc, f"call {call.call_id} attempt {call.attempt}")

    async def _voice(self, track: MediaStreamTrack, failed: asyncio.Event, line: Line) -> None:
        """The dispatcher's voice on the speaker; when it stops coming, this connection is dead."""
        from device.call.tracks import play_remote_voice

        await play_remote_voice(track, self._hw.audio, self._cfg.webrtc.reconnect_after_s, line.voice)
        failed.set()

    async def _no_relay(self, call: _Call) -> None:
        """A relay-only offer without a relay cannot connect (aiortc would wait on it forever):
        say why, once per reason, and try again after a pause."""
        from device.call.turn_check import relay_problem

        problem = await relay_problem(self._cfg.webrtc.ice_servers)
        if problem != call.relay_problem:
            logger.error("call %s attempt %d: relay_only and no TURN relay: %s", call.call_id, call.attempt, problem)
            call.relay_problem = problem
        await asyncio.sleep(self._cfg.webrtc.reconnect_after_s)

    async def _answer(self, call: _Call) -> Command | None:
        """The server's answer to this attempt; older answers in the queue are stale."""
        try:
            async with asyncio.timeout(self._cfg.webrtc.answer_timeout_s):
                while True:
                    answer = await call.answers.get()
                    if answer.attempt == call.attempt:
                        return answer
        except TimeoutError:
            logger.warning("call %s attempt %d: no answer from the server", call.call_id, call.attempt)
            return None


async def _fail_after(failed: asyncio.Event, seconds: float) -> None:
    await asyncio.sleep(seconds)
    failed.set()
