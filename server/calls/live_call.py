"""What the media worker holds of one live call: its peer connections, the steady tracks everything
downstream reads, its recorder, timers and tasks.

Its own module because two owners work on it: the calls' manager (``server.calls.manager``: the
unit's offers, the consoles) and the parties' phones (``server.calls.participants``: a phone that is
the call's source, or joins it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.contrib.media import MediaRelay

from protocol.messages import utc_iso
from server.calls.forwarding import KeyframeAsker
from server.calls.media import SteadyTrack, VoiceToDevice
from server.calls.recorder import SegmentRecorder
from server.lifecycles.call import CALL, CallState


@dataclass
class LiveCall:
    call_id: str
    device_id: str | None  # None: a phone reported it and is its source (server.calls.participants)
    case_id: int
    case_no: str
    unit: str
    started_at: datetime
    recorder: SegmentRecorder
    keyframes: KeyframeAsker
    relay: MediaRelay = field(default_factory=MediaRelay)
    video: SteadyTrack = field(default_factory=lambda: SteadyTrack("video"))
    audio: SteadyTrack = field(default_factory=lambda: SteadyTrack("audio"))
    voice: VoiceToDevice = field(default_factory=VoiceToDevice)
    # A console's camera, when its dispatcher shares one, forwarded to a kiosk's screen as the
    # browser encoded it; a key frame for the kiosk is asked of that console.
    dispatcher_video: SteadyTrack = field(default_factory=lambda: SteadyTrack("video"))
    dispatcher_keyframes: KeyframeAsker = field(default_factory=KeyframeAsker)
    state: CallState = CALL.initial
    attempt: int = 0
    device_pc: RTCPeerConnection | None = None
    viewers: dict[str, RTCPeerConnection] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # viewer: the operator's name, for the unit's screen
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    grace: asyncio.TimerHandle | None = None
    deadline: asyncio.TimerHandle | None = None
    went_live: bool = False
    last_media: float = field(default_factory=time.monotonic)  # the device's audio: a frame every 20 ms

    def summary(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "case_id": self.case_id,
            "case_no": self.case_no,
            "device_id": self.device_id,
            "unit": self.unit,
            "state": self.state,
            "started_at": utc_iso(self.started_at),
            "viewers": len(self.viewers),
        }
