"""The parties' phones in a call, from the web app: camera and microphone over WebRTC to this
worker, like a unit's, and the dispatcher's voice back.

Two ways in. A phone that reported (``server.phones.reports``: no unit) is its call's source: its
first offer opens the call and its tracks go in under the call's own ``SteadyTrack``s, so the queue,
the console's player, the recording and the media watch treat it as they treat a unit; an offer
after a dropped connection swaps the tracks underneath. A party without a unit whose case has a live
call (乙's driver, a pedestrian) joins it as a participant: its video and sound get ``SteadyTrack``s
and a recording of their own (Matroska segments, hashed, evidence rows with the party's id, with
what the phone heard), and each console watching the call gets a tile of it (``watch``: a connection
of its own, the phone's VP8 forwarded as sent, its sound silenced while the dispatcher has it muted).

The video is never decoded, except for a still the dispatcher asks for: the next key frame (asked
for) is decoded once and kept as a JPEG, with the party's id. Offers carry every candidate (no
trickle) and are answered with VP8 only, which is what forwarding and recording take.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from protocol.ids import new_report_id
from protocol.messages import utc_iso
from runtime.peers import close_peer
from server.calls.forwarding import ForwardedVideo, KeyframeAsker, forward_encoded, relay_picture_loss
from server.calls.live_call import LiveCall
from server.calls.manager import CONSOLE_AUDIO_FRAMES, CONSOLE_VIDEO_PACKETS, CallManager
from server.calls.media import ConsoleView, SteadyTrack, close_viewer
from server.calls.recorder import Segment, SegmentRecorder
from server.calls.stills import VP8, Silenced, jpeg_of_keyframe, write_new
from server.calls.store import RECORDER, CallStore
from server.calls.uploads import evidence_json
from server.cases import now_utc
from server.casework.events import Actor, phone_actor
from server.casework.parties import POSITIONS
from server.db.models import Case, Evidence, Party
from server.errors import Conflict, Forbidden, Invalid, NotFound, TimedOut
from server.lifecycles.call import CallEvent, CallState
from server.portal.access import Visitor

logger = logging.getLogger(__name__)

STILL_WAIT_S = 5.0
NO_CALL = "现在没有进行中的视频通话；调度员接警后会通知您，请稍候 (no live call for your case)"


@dataclass
class Participant:
    """A party's phone joined to a call that is not its own (the unit's, or another phone's)."""

    party_id: int
    label: str  # 乙方 ...
    phone: str
    recorder: SegmentRecorder
    keyframes: KeyframeAsker
    video: SteadyTrack = field(default_factory=lambda: SteadyTrack("video"))
    audio: SteadyTrack = field(default_factory=lambda: SteadyTrack("audio"))
    pc: RTCPeerConnection | None = None
    muted: bool = False
    joined_at: str = field(default_factory=lambda: utc_iso(now_utc()))
    viewers: dict[str, RTCPeerConnection] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def json(self) -> dict[str, Any]:
        state = self.pc.connectionState if self.pc is not None else "new"
        return {
            "party_id": self.party_id,
            "label": self.label,
            "muted": self.muted,
            "joined_at": self.joined_at,
            "connection": state,
        }


@dataclass
class _CallParties:
    joined: dict[int, Participant] = field(default_factory=dict)
    dropped: set[int] = field(default_factory=set)
    source: int | None = None  # the reporting phone's party, for a call it is the source of


class PhoneCalls:
    def __init__(self, manager: CallManager, store: CallStore) -> None:
        self._calls = manager
        self._store = store
        self._parties: dict[str, _CallParties] = {}
        manager.closing.append(self._call_closed)

    # --- the phone's side -----------------------------------------------------------------------

    async def status(self, visitor: Visitor) -> dict[str, Any]:
        case, party = await self._party(visitor)
        live = self._live_of(case.id)
        source = case.device_id is None and party.phone == case.reporter_phone
        out: dict[str, Any] = {"role": "source" if source else "participant", "call": None}
        if live is None:
            return out
        parties = self._parties.get(live.call_id, _CallParties())
        me = parties.joined.get(party.id)
        out["call"] = {"call_id": live.call_id, "state": live.state, "answered": bool(live.viewers)}
        out["joined"] = me is not None or (source and live.device_pc is not None)
        out["muted"] = me is not None and me.muted
        out["dropped"] = party.id in parties.dropped
        return out

    async def offer(self, visitor: Visitor, sdp: str) -> str:
        """The phone's offer (camera and microphone to send, the dispatcher's voice to receive); the answer."""
        case, party = await self._party(visitor)
        if case.device_id is None and party.phone == case.reporter_phone:
            return await self._source_offer(case, party, sdp)
        live = self._live_of(case.id)
        if live is None:
            raise Conflict(NO_CALL)
        parties = self._parties.setdefault(live.call_id, _CallParties())
        if party.id in parties.dropped:
            raise Forbidden("调度员已结束您的视频连接；如需帮助请拨打122 (dropped from this call)")
        me = parties.joined.get(party.id)
        first = me is None
        if me is None:
            me = parties.joined[party.id] = self._participant(live, party)
        pc = await self._answer(live, me.video, me.audio, sdp, f"call {live.call_id} party {party.id}")
        old, me.pc, me.keyframes.pc = me.pc, pc, pc
        self._watch_connection(live, pc, me)
        if old is not None:
            await close_peer(old, f"call {live.call_id} party {party.id} earlier connection")
        if first:
            detail = {"call_id": live.call_id, "party_id": party.id, "label": me.label}
            await self._store.log(case.id, phone_actor(party.phone), "call.party_joined", detail, now_utc())
            logger.info("call %s: party %d (%s) joined from a phone", live.call_id, party.id, me.label)
        self._announce(live)
        return str(pc.localDescription.sdp)

    async def _source_offer(self, case: Case, party: Party, sdp: str) -> str:
        live = self._live_of(case.id)
        if live is None:
            call_id = new_report_id()
            now = now_utc()
            await self._store.open(call_id, case, None, now)
            live = self._calls._start(call_id, None, case, now)
            logger.info("call %s: case %s, from the reporting phone", call_id, case.case_no)
        self._parties.setdefault(live.call_id, _CallParties()).source = party.id
        pc = await self._answer(live, live.video, live.audio, sdp, f"call {live.call_id} reporting phone")
        old, live.device_pc, live.keyframes.pc = live.device_pc, pc, pc
        live.attempt += 1
        await self._store.update(live.call_id, attempts=live.attempt)
        self._watch_connection(live, pc, None)
        if old is not None:
            await close_peer(old, f"call {live.call_id} reporting phone, earlier connection")
        return str(pc.localDescription.sdp)

    async def _answer(self, live: LiveCall, video: SteadyTrack, audio: SteadyTrack, sdp: str, what: str) -> Any:
        pc = RTCPeerConnection(self._calls.rtc_configuration())
        # Made before the offer is read, so that the answer takes VP8 only: what is forwarded and kept.
        receiving = pc.addTransceiver("video", direction="recvonly")
        receiving.setCodecPreferences(VP8)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                forward_encoded(track)
                video.attach(track)
            else:
                audio.attach(track)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            pc.addTrack(live.relay.subscribe(live.voice, buffered=False))  # the phone hears the dispatcher
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, TypeError, AttributeError) as exc:
            await close_peer(pc, what)
            logger.warning("%s: offer unusable: %s", what, exc)
            raise Invalid("手机浏览器的视频请求无法使用，请换用最新版浏览器后重试 (offer unusable)") from None
        return pc

    def _watch_connection(self, live: LiveCall, pc: RTCPeerConnection, me: Participant | None) -> None:
        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if me is not None:
                if me.pc is pc:
                    self._announce(live)
                return
            if live.device_pc is not pc:
                return
            logger.info("call %s: reporting phone %s", live.call_id, state)
            if state == "connected":
                await self._calls._move(live, CallEvent.CONNECTED)
            elif state in ("disconnected", "failed", "closed"):
                await self._calls._move(live, CallEvent.CONNECTION_LOST)

    def _participant(self, live: LiveCall, party: Party) -> Participant:
        keyframes = KeyframeAsker()
        name = f"call-{live.call_id}-party{party.id}"
        folder = self._store.evidence_dir / live.case_no
        recorder = SegmentRecorder(
            folder,
            name,
            self._calls._cfg.segment_s,
            self._calls._cfg.fps,
            lambda segment: self._calls._spawn_for(live.call_id, self._segment_closed(live, party.id, segment)),
            keyframes,
        )
        label = POSITIONS[party.position - 1] + "方" if party.position <= len(POSITIONS) else str(party.position)
        me = Participant(party.id, label, party.phone, recorder, keyframes)
        self._spawn(me, self._feed(live, me, me.video, "video"))
        self._spawn(me, self._feed(live, me, me.audio, "device"))
        self._spawn(me, self._feed(live, me, live.voice, "dispatcher"))
        return me

    async def _feed(self, live: LiveCall, me: Participant, track: MediaStreamTrack, kind: str) -> None:
        source = live.relay.subscribe(track, buffered=True)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await source.recv()
                if isinstance(frame, av.Packet):
                    me.recorder.video(frame)
                elif isinstance(frame, av.AudioFrame):
                    me.recorder.audio(kind, frame)

    async def _segment_closed(self, live: LiveCall, party_id: int, segment: Segment) -> None:
        evidence = Evidence(
            case_id=live.case_id,
            call_id=live.call_id,
            kind="recording",
            path=str(segment.path.relative_to(self._store.evidence_dir)),
            sha256=segment.sha256,
            size_bytes=segment.size_bytes,
            media_start=segment.media_start,
            media_end=segment.media_end,
            created_at=now_utc(),
            note="a party's phone in the call",
            party_id=party_id,
        )
        await self._store.add_file(evidence, RECORDER, party_id=party_id)

    # --- the consoles' side ---------------------------------------------------------------------

    def is_phone_call(self, call_id: str) -> bool:
        """Whether the call's source is the reporting phone (its stills are made here)."""
        live = self._calls._calls.get(call_id)
        return live is not None and live.device_id is None

    def listing(self, call_id: str, sees: Callable[[str], bool]) -> dict[str, Any]:
        live = self._visible(call_id, sees)
        return self._event(live)

    async def watch(self, call_id: str, party_id: int, viewer: str, sees: Callable[[str], bool], sdp: str) -> str:
        """A console's tile of one party's phone: an offer to receive its video and sound; the answer."""
        live = self._visible(call_id, sees)
        me = self._joined(live, party_id)
        pc = RTCPeerConnection(self._calls.rtc_configuration())
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            video = ForwardedVideo(live.relay.subscribe(me.video), CONSOLE_VIDEO_PACKETS, me.keyframes)
            relay_picture_loss(pc.addTrack(video), me.keyframes)
            pc.addTrack(
                Silenced(ConsoleView(live.relay.subscribe(me.audio), keep=CONSOLE_AUDIO_FRAMES), lambda: me.muted)
            )
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, TypeError, AttributeError) as exc:
            await close_peer(pc, f"call {call_id} tile of party {party_id}")
            logger.warning("call %s: a console's tile offer unusable: %s", call_id, exc)
            raise Invalid("the console's offer is unusable") from None
        old = me.viewers.pop(viewer, None)
        if old is not None:
            await close_viewer(old)
        me.viewers[viewer] = pc
        return str(pc.localDescription.sdp)

    async def leave(self, viewer: str) -> None:
        for parties in self._parties.values():
            for me in parties.joined.values():
                pc = me.viewers.pop(viewer, None)
                if pc is not None:
                    await close_viewer(pc)

    async def still(self, call_id: str, party_id: int | None, actor: Actor, sees: Callable[[str], bool]) -> Evidence:
        """A still of a phone's picture (``party_id`` None: the reporting phone, the call's own video),
        from its next key frame, kept as evidence with the party and the operator who asked."""
        live = self._visible(call_id, sees)
        if party_id is None:
            party_id = self._parties.get(call_id, _CallParties()).source
            if live.device_id is not None or party_id is None:
                raise Conflict("这是车载设备的通话，请用拍照按钮 (a unit's call: its still comes from the unit)")
            track, ask = live.video, live.keyframes
        else:
            me = self._joined(live, party_id)
            track, ask = me.video, me.keyframes
        copy = live.relay.subscribe(track, buffered=True)
        try:
            async with asyncio.timeout(STILL_WAIT_S):
                while True:
                    ask()
                    packet = await copy.recv()
                    if isinstance(packet, av.Packet) and packet.is_keyframe:
                        break
        except (TimeoutError, MediaStreamError):
            raise TimedOut("手机画面暂时没有传来，请稍后再拍 (no picture from the phone)") from None
        finally:
            copy.stop()
        jpeg = await asyncio.to_thread(jpeg_of_keyframe, bytes(packet))
        now = now_utc()
        relative = f"{live.case_no}/still-{live.call_id}-party{party_id}-{int(time.time() * 1000)}.jpg"
        digest = await asyncio.to_thread(write_new, self._store.evidence_dir / relative, jpeg)
        evidence = await self._store.add_file(
            Evidence(
                case_id=live.case_id,
                call_id=live.call_id,
                kind="still",
                path=relative,
                sha256=digest,
                size_bytes=len(jpeg),
                media_start=now,
                media_end=now,
                created_at=now,
                operator_id=actor.user_id,
                note="a still of a party's phone video",
                party_id=party_id,
            ),
            actor,
            party_id=party_id,
        )
        event = {"type": "evidence.new", "upload_id": None, "evidence": evidence_json(evidence, live.case_no)}
        self._calls._hub.deliver(live.unit, json.dumps(event, ensure_ascii=False))
        return evidence

    async def mute(self, call_id: str, party_id: int, muted: bool, actor: Actor, sees: Callable[[str], bool]) -> None:
        """The consoles stop (or start again) hearing the phone; the recording keeps it all."""
        live = self._visible(call_id, sees)
        me = self._joined(live, party_id)
        me.muted = muted
        detail = {"call_id": call_id, "party_id": party_id, "muted": muted}
        await self._store.log(live.case_id, actor, "call.party_muted", detail, now_utc())
        self._announce(live)

    async def drop(self, call_id: str, party_id: int, actor: Actor, sees: Callable[[str], bool]) -> None:
        live = self._visible(call_id, sees)
        me = self._joined(live, party_id)
        parties = self._parties[call_id]
        parties.joined.pop(party_id, None)
        parties.dropped.add(party_id)
        await self._close(me, live)
        await self._store.log(
            live.case_id, actor, "call.party_dropped", {"call_id": call_id, "party_id": party_id}, now_utc()
        )
        logger.info("call %s: party %d dropped by operator %s", call_id, party_id, actor.user_id)
        self._announce(live)

    # --- plumbing -------------------------------------------------------------------------------

    async def _call_closed(self, live: LiveCall) -> None:
        parties = self._parties.pop(live.call_id, None)
        if parties is not None:
            await asyncio.gather(*(self._close(me, live) for me in parties.joined.values()), return_exceptions=True)

    async def _close(self, me: Participant, live: LiveCall) -> None:
        pcs = [pc for pc in (me.pc, *me.viewers.values()) if pc is not None]
        me.viewers.clear()
        await asyncio.gather(*(close_peer(pc, f"call {live.call_id} party {me.party_id}") for pc in pcs))
        me.video.stop()
        me.audio.stop()
        for task in list(me.tasks):
            task.cancel()
        await asyncio.gather(*me.tasks, return_exceptions=True)
        await me.recorder.stop()

    async def _party(self, visitor: Visitor) -> tuple[Case, Party]:
        if visitor.case_id is None or visitor.party_id is None:
            raise NotFound("请先登录您的案件 (log in to your case first)")
        async with self._store._sessions() as session:
            case = await session.get(Case, visitor.case_id)
            party = await session.get(Party, visitor.party_id)
        if case is None or party is None or party.case_id != case.id:
            raise NotFound("没有找到您的案件，请重新登录 (no case for this session)")
        return case, party

    def _live_of(self, case_id: int) -> LiveCall | None:
        return next(
            (c for c in self._calls._calls.values() if c.case_id == case_id and c.state != CallState.ENDED), None
        )

    def _visible(self, call_id: str, sees: Callable[[str], bool]) -> LiveCall:
        live = self._calls._calls.get(call_id)
        if live is None or not sees(live.unit):
            raise NotFound("通话不存在或已结束，请刷新队列 (no such call)")
        return live

    def _joined(self, live: LiveCall, party_id: int) -> Participant:
        me = self._parties.get(live.call_id, _CallParties()).joined.get(party_id)
        if me is None:
            raise NotFound("这位当事人已不在通话中 (the party is not in the call)")
        return me

    def _event(self, live: LiveCall) -> dict[str, Any]:
        parties = self._parties.get(live.call_id, _CallParties())
        return {
            "type": "call.participants",
            "call_id": live.call_id,
            "case_no": live.case_no,
            "phone_source": live.device_id is None,
            "participants": [me.json() for me in parties.joined.values()],
        }

    def _announce(self, live: LiveCall) -> None:
        self._calls._hub.deliver(live.unit, json.dumps(self._event(live), ensure_ascii=False))

    def _spawn(self, me: Participant, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        me.tasks.add(task)
        task.add_done_callback(me.tasks.discard)
