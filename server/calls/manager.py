"""Every live call of this worker: answering the devices, serving the consoles, recording.

A call is the device's: it offers when its report is accepted, and offers again (same ``call_id``,
next ``attempt``) whenever its connection is lost. The server answers each offer with a fresh
peer connection and swaps the new tracks in under the ``SteadyTrack``s that consoles and the
recorder read, so a console keeps its connection and the recording keeps going. A console that
joins gets its own peer connection from the relay, and its microphone becomes the device's
``VoiceToDevice``. Only the worker that runs media (``[server] runs``) takes calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from protocol.messages import CallSignal, Command, SceneSample, encode
from protocol.topics import Channel, device_topic
from runtime.peers import close_peer
from server.calls.forwarding import (
    ForwardedVideo,
    KeyframeAsker,
    forward_encoded,
    receives_video,
    relay_picture_loss,
)
from server.calls.live_call import LiveCall
from server.calls.media import ConsoleView, SteadyTrack, close_viewer
from server.calls.recorder import Segment, SegmentRecorder, sha256_of
from server.calls.store import CallStore
from server.cases import now_utc
from server.casework.events import Actor, device_actor
from server.config import CallsSection
from server.db.models import Case
from server.errors import NotFound
from server.lifecycles.call import CALL, CallEvent, CallState
from server.live_feed import CaseHub

logger = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int], Awaitable[None]]
MEDIA_STALL_S = 3.0
# What a console's connection may be behind before it skips ahead: 1 s of video (forwarded as
# encoded, so it can only skip to a key frame; a burst of a few frames is normal), 100 ms of sound.
CONSOLE_VIDEO_PACKETS = 15
CONSOLE_AUDIO_FRAMES = 5
# Calls the server itself ends: no media for too long, the longest call time, an unusable offer.
SYSTEM = Actor(None, "system", "calls")


class CallError(Exception):
    """A console's request about a call that cannot be granted; the message is for the operator."""


class CallManager:
    def __init__(self, cfg: CallsSection, store: CallStore, hub: CaseHub, publish: Publish) -> None:
        self._cfg = cfg
        self._store = store
        self._hub = hub
        self._publish = publish
        self._calls: dict[str, LiveCall] = {}
        self._segment_writes: set[asyncio.Future[None]] = set()
        self.closing: list[Callable[[LiveCall], Awaitable[None]]] = []  # the parties' phones leave with it

    def rtc_configuration(self) -> RTCConfiguration:
        servers = [RTCIceServer(s.urls, s.username, s.credential) for s in self._cfg.ice_servers]
        return RTCConfiguration(iceServers=servers)  # never aiortc's default public STUN server

    def ice_servers_json(self) -> list[dict[str, Any]]:
        """What the console's RTCPeerConnection is configured with."""
        return [s.model_dump(exclude_none=True) for s in self._cfg.ice_servers]

    def cut_recording(self, case_id: int) -> bool:
        """Close the case's open recording segment now (``SegmentRecorder.cut``); False when this
        worker holds no live call of the case."""
        lives = [live for live in self._calls.values() if live.case_id == case_id]
        for live in lives:
            live.recorder.cut()
        return bool(lives)

    def active(self, sees: Callable[[str], bool]) -> list[dict[str, Any]]:
        return [c.summary() for c in self._calls.values() if sees(c.unit)]

    # --- the device's side ------------------------------------------------------------------

    async def on_signal(self, device_id: str, signal: CallSignal) -> None:
        if signal.type == "hangup":
            live = self._calls.get(signal.call_id)
            if live is not None and live.device_id == device_id:
                reason = f"ended by the device: {signal.reason}"
                await self.end(signal.call_id, reason, device_actor(device_id), notify_device=False)
            return
        try:
            live = await self._call_for(device_id, signal)
        except CallError as exc:
            logger.warning("device %s: call %s offer refused: %s", device_id, signal.call_id, exc)
            await self._command(device_id, Command(type="call.end", call_id=signal.call_id, reason=str(exc)[:120]))
            return
        if signal.attempt <= live.attempt:
            logger.info("call %s: stale offer (attempt %d) ignored", live.call_id, signal.attempt)
            return
        await self._answer_device(live, signal)

    async def _call_for(self, device_id: str, signal: CallSignal | SceneSample) -> LiveCall:
        live = self._calls.get(signal.call_id)
        if live is not None:
            if live.device_id != device_id:
                raise CallError("this call belongs to another device")
            return live
        case = await self._store.case_of_report(signal.report_id)
        if case is None or case.device_id != device_id or case.case_no != signal.case_no:
            raise CallError("no such case for this device")
        record = await self._store.get(signal.call_id)
        if record is not None and (record.state == CallState.ENDED or record.case_id != case.id):
            raise CallError("this call has ended")
        now = now_utc()
        if record is None:
            await self._store.open(signal.call_id, case, device_id, now)
            logger.info("call %s: case %s, device %s", signal.call_id, case.case_no, device_id)
        else:
            logger.info("call %s resumed after a server restart", signal.call_id)
        live = self._start(signal.call_id, device_id, case, record.started_at if record else now)
        live.attempt = record.attempts if record else 0
        return live

    def _start(self, call_id: str, device_id: str | None, case: Case, started_at: datetime) -> LiveCall:
        folder = self._store.evidence_dir / case.case_no
        keyframes = KeyframeAsker()
        recorder = SegmentRecorder(
            folder,
            f"call-{call_id}",
            self._cfg.segment_s,
            self._cfg.fps,
            lambda segment: self._spawn_for(call_id, self._segment_closed(case.id, call_id, segment)),
            keyframes,
        )
        live = LiveCall(call_id, device_id, case.id, case.case_no, case.unit_adcode, started_at, recorder, keyframes)
        live.voice.heard = lambda frame: recorder.audio("dispatcher", frame)  # what the driver heard
        self._calls[call_id] = live
        self._spawn(live, self._feed_recorder(live, live.video, "video"))
        self._spawn(live, self._feed_recorder(live, live.audio, "device"))
        self._spawn(live, self._watch_media(live))
        live.deadline = asyncio.get_running_loop().call_later(
            self._cfg.max_call_min * 60, self._end_soon, call_id, "longest call time reached"
        )
        self._event(live)
        return live

    async def _answer_device(self, live: LiveCall, signal: CallSignal) -> None:
        pc = RTCPeerConnection(self.rtc_configuration())

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                forward_encoded(track)
            (live.video if track.kind == "video" else live.audio).attach(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if live.device_pc is not pc:
                return  # an older connection of this call winding down
            state = pc.connectionState
            logger.info("call %s attempt %d: device %s", live.call_id, signal.attempt, state)
            if state == "connected":
                await self._move(live, CallEvent.CONNECTED)
            elif state in ("disconnected", "failed", "closed"):
                await self._move(live, CallEvent.CONNECTION_LOST)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=signal.sdp or "", type="offer"))
            pc.addTrack(live.relay.subscribe(live.voice, buffered=False))
            if receives_video(signal.sdp or ""):  # a kiosk, whose screen shows a sharing dispatcher
                shared = live.relay.subscribe(live.dispatcher_video, buffered=False)
                sender = pc.addTrack(ForwardedVideo(shared, CONSOLE_VIDEO_PACKETS, live.dispatcher_keyframes))
                relay_picture_loss(sender, live.dispatcher_keyframes)
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, TypeError, AttributeError) as exc:
            await close_peer(pc, f"call {live.call_id} attempt {signal.attempt}")
            logger.warning("call %s: offer %d unusable: %s", live.call_id, signal.attempt, exc)
            await self._command(live.device_id, Command(type="call.end", call_id=live.call_id, reason="offer unusable"))
            if live.device_pc is None:
                await self.end(live.call_id, "the device's offer was unusable", notify_device=False)
            return
        old, live.device_pc, live.attempt = live.device_pc, pc, signal.attempt
        live.keyframes.pc = pc
        if old is not None:
            await close_peer(old, f"call {live.call_id} attempt {signal.attempt - 1}")
        await self._store.update(live.call_id, attempts=signal.attempt)
        answer = Command(type="call.answer", call_id=live.call_id, attempt=signal.attempt, sdp=pc.localDescription.sdp)
        await self._command(live.device_id, answer)

    async def _move(self, live: LiveCall, event: CallEvent) -> bool:
        """Whether the call's state changed; most events leave it as it is (``server.lifecycles.call``)."""
        state = CALL.after(live.state, event)
        if state == live.state:
            return False
        first_live = state == CallState.LIVE and not live.went_live
        live.state = state
        live.went_live = live.went_live or state == CallState.LIVE
        self._grace(live)
        await self._store.update(live.call_id, state=state, **({"live_at": now_utc()} if first_live else {}))
        self._event(live)
        return True

    def _grace(self, live: LiveCall) -> None:
        """A call without media ends if the device does not come back within the grace time."""
        if live.grace is not None:
            live.grace.cancel()
            live.grace = None
        if live.state in (CallState.RECONNECTING, CallState.DEGRADED):
            loop = asyncio.get_running_loop()
            live.grace = loop.call_later(
                self._cfg.reconnect_grace_s, self._end_soon, live.call_id, "the device did not come back"
            )

    async def degraded(self, device_id: str, sample: SceneSample) -> LiveCall | None:
        """A still or sound of the scene came instead of video (``server.calls.degraded``): the call,
        opened now if no offer ever got through, is degraded until its video connects, and each
        sample puts off its end. None if the call is refused; the device is told to end it."""
        try:
            live = await self._call_for(device_id, sample)
        except CallError as exc:
            logger.warning("device %s: call %s scene refused: %s", device_id, sample.call_id, exc)
            await self._command(device_id, Command(type="call.end", call_id=sample.call_id, reason=str(exc)[:120]))
            return None
        if live.state == CallState.DEGRADED:
            self._grace(live)
        elif await self._move(live, CallEvent.SCENE_SAMPLE):
            logger.info("call %s: no video, the device sends stills and sound", live.call_id)
        return live

    # --- the consoles' side -----------------------------------------------------------------

    async def join(
        self, call_id: str, viewer: str, actor: Actor, sees: Callable[[str], bool], offer_sdp: str, shown_as: str
    ) -> str:
        """A console's offer (video to receive, its microphone to send); returns the answer SDP.
        ``actor`` is the operator, from the console's address; ``shown_as`` their name on a kiosk's screen."""
        live = self._calls.get(call_id)
        if live is None or not sees(live.unit):
            raise CallError("no such call")  # someone else's call is absent, not forbidden
        pc = RTCPeerConnection(self.rtc_configuration())

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(live, self._dispatcher_voice(live, viewer, track))
            elif track.kind == "video":  # the dispatcher shares a camera: the latest sharer is shown
                forward_encoded(track)
                live.dispatcher_video.attach(track)
                live.dispatcher_keyframes.pc = pc

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            video = ForwardedVideo(live.relay.subscribe(live.video), CONSOLE_VIDEO_PACKETS, live.keyframes)
            relay_picture_loss(pc.addTrack(video), live.keyframes)
            pc.addTrack(ConsoleView(live.relay.subscribe(live.audio), keep=CONSOLE_AUDIO_FRAMES))
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, TypeError, AttributeError) as exc:
            await close_peer(pc, f"call {call_id} console")
            logger.warning("call %s: console offer unusable: %s", call_id, exc)
            raise CallError("the console's offer is unusable") from None
        old = live.viewers.pop(viewer, None)
        if old is not None:
            await close_viewer(old)  # the same console again (a reloaded tab): its old connection goes
        live.viewers[viewer] = pc
        live.names[viewer] = shown_as
        await self._tell_line(live)
        await self._store.joined(call_id, actor, now_utc())
        logger.info("call %s: operator %s watching", call_id, actor.user_id)
        self._event(live)
        return pc.localDescription.sdp

    async def leave(self, viewer: str) -> None:
        """A console went away (its socket closed): its connections close, the call goes on."""
        for live in list(self._calls.values()):
            pc = live.viewers.pop(viewer, None)
            if pc is not None:
                await close_viewer(pc)
                live.names.pop(viewer, None)
                await self._tell_line(live)
                self._event(live)

    async def end_by(self, call_id: str, actor: Actor, sees: Callable[[str], bool]) -> None:
        live = self._calls.get(call_id)
        if live is None or not sees(live.unit):
            raise NotFound("通话不存在或已结束，请刷新队列 (no such call)")
        await self.end(call_id, "ended by the dispatcher", actor)

    async def end(self, call_id: str, reason: str, actor: Actor = SYSTEM, *, notify_device: bool = True) -> None:
        live = self._calls.pop(call_id, None)
        if live is None:
            return
        live.state = CALL.after(live.state, CallEvent.END)
        logger.info("call %s ended: %s", call_id, reason)
        if notify_device:
            await self._command(live.device_id, Command(type="call.end", call_id=call_id, reason=reason[:120]))
        await self._close_media(live)
        await self._store.ended(call_id, actor, reason, now_utc())
        self._event(live)

    async def close(self) -> None:
        """The worker stops: recordings are closed cleanly, calls stay open for the device to resume."""
        for live in list(self._calls.values()):
            self._calls.pop(live.call_id, None)
            await self._close_media(live)

    async def _close_media(self, live: LiveCall) -> None:
        for timer in (live.grace, live.deadline):
            if timer is not None:
                timer.cancel()
        await asyncio.gather(*(closing(live) for closing in self.closing), return_exceptions=True)
        pcs = [pc for pc in (live.device_pc, *live.viewers.values()) if pc is not None]
        live.viewers.clear()
        await asyncio.gather(*(close_peer(pc, f"call {live.call_id}") for pc in pcs), return_exceptions=True)
        live.video.stop()
        live.audio.stop()
        live.voice.stop()
        for task in list(live.tasks):
            task.cancel()
        await asyncio.gather(*live.tasks, return_exceptions=True)
        await live.recorder.stop()
        await asyncio.gather(*self._segment_writes, return_exceptions=True)  # the last one is in

    # --- recording ------------------------------------------------------------------------------

    async def _feed_recorder(self, live: LiveCall, track: SteadyTrack, kind: str) -> None:
        # Buffered: an unbuffered proxy keeps only the newest frame, so two frames decoded while
        # the loop was busy would lose the first. This loop only hands frames to the recorder's
        # own queue, which is where a recorder that falls behind drops video.
        source = live.relay.subscribe(track, buffered=True)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await source.recv()
                if isinstance(frame, av.Packet):
                    live.recorder.video(frame)
                elif isinstance(frame, av.AudioFrame):
                    live.last_media = time.monotonic()
                    live.recorder.audio(kind, frame)

    async def _watch_media(self, live: LiveCall) -> None:
        """A device whose audio stops is reconnecting, whatever ICE thinks: consent checks take
        half a minute to notice a unit that lost its network, a dispatcher should see it at once."""
        while True:
            await asyncio.sleep(1)
            silent = time.monotonic() - live.last_media > MEDIA_STALL_S
            if silent:
                await self._move(live, CallEvent.MEDIA_STALLED)
            elif _connected(live.device_pc):
                await self._move(live, CallEvent.MEDIA_RESUMED)

    async def _dispatcher_voice(self, live: LiveCall, viewer: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.AudioFrame):
                    live.voice.speak(viewer, frame)
        live.voice.leave(viewer)

    async def _segment_closed(self, case_id: int, call_id: str, segment: Segment) -> None:
        await self._store.add_segment(case_id, call_id, segment, now_utc())
        logger.info("call %s: recording segment %s kept (sha256 %s)", call_id, segment.path.name, segment.sha256)

    async def recover(self) -> int:
        """At start-up: recording files a crash left unregistered become evidence (hashed now,
        noted as recovered); returns how many."""
        known = await self._store.known_paths()
        recovered = 0
        for call in await self._store.unfinished():
            case = await self._store.case_by_id(call.case_id)
            if case is None:
                continue
            folder = self._store.evidence_dir / case.case_no
            for path in sorted(folder.glob(f"call-{call.call_id}-*.mkv")):
                if str(path.relative_to(self._store.evidence_dir)) in known:
                    continue
                stat = await asyncio.to_thread(path.stat)
                digest = await asyncio.to_thread(sha256_of, path)
                modified = datetime.fromtimestamp(stat.st_mtime, now_utc().tzinfo)
                segment = Segment(path, digest, stat.st_size, modified, modified)
                await self._store.add_segment(
                    call.case_id, call.call_id, segment, now_utc(), "recovered after a restart"
                )
                recovered += 1
                logger.warning("call %s: segment %s recovered after a restart", call.call_id, path.name)
        return recovered

    # --- plumbing -----------------------------------------------------------------------------

    async def _command(self, device_id: str | None, command: Command) -> None:
        if device_id is not None:  # a phone's call is told by its own connection closing
            await self._publish(device_topic(device_id, Channel.CMD), encode(command), 1)

    async def _tell_line(self, live: LiveCall) -> None:
        """Who is on the line, for the unit's screen; nobody after someone was is a call on hold."""
        names = [name[:40] for name in dict.fromkeys(live.names.values()) if name][:4]
        await self._command(live.device_id, Command(type="call.status", call_id=live.call_id, operators=names))

    def _event(self, live: LiveCall) -> None:
        event = json.dumps({"type": "call.state", "call": live.summary()}, ensure_ascii=False)
        self._hub.deliver(live.unit, event)

    def _end_soon(self, call_id: str, reason: str) -> None:
        task = asyncio.ensure_future(self.end(call_id, reason))
        task.add_done_callback(_log_failure)

    def _spawn(self, live: LiveCall, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        live.tasks.add(task)
        task.add_done_callback(live.tasks.discard)
        task.add_done_callback(_log_failure)

    def _spawn_for(self, call_id: str, coro: Awaitable[None]) -> None:
        # A call's last segment closes while the call is being taken down: not one of its tasks.
        task = asyncio.ensure_future(coro)
        self._segment_writes.add(task)
        task.add_done_callback(self._segment_writes.discard)
        task.add_done_callback(_log_failure)


def _connected(pc: RTCPeerConnection | None) -> bool:
    return pc is not None and pc.connectionState == "connected"


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("call task failed", exc_info=task.exception())
