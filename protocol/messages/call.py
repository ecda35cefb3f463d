"""The device's side of a live call: signalling, and the scene while the video cannot connect."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from protocol.ids import REPORT_ID_PATTERN
from protocol.messages.base import ReportId, ShortText, Versioned

# An SDP with every ICE candidate gathered (aiortc does not trickle) is 2-5 KiB; TURN adds a few lines.
Sdp = Annotated[str, Field(min_length=10, max_length=16 * 1024)]
CallId = Annotated[str, Field(pattern=REPORT_ID_PATTERN)]


class CallSignal(Versioned):
    """The device's side of a live call. Published on ``kc/v1/dev/{device_id}/call``, QoS 1.

    The device offers as soon as its report is accepted: it owns the camera and microphone, and
    the server answers for every console that will watch. A link that drops is healed by a new
    offer for the same ``call_id`` with a higher ``attempt``, so the call stays one record.
    """

    type: Literal["offer", "hangup"]
    call_id: CallId = Field(description="ULID chosen by the device for the call")
    report_id: ReportId = Field(description="the accepted report the call belongs to")
    case_no: Annotated[str, Field(max_length=32)]
    attempt: int = Field(default=1, ge=1, le=1000, description="1 for the first offer, +1 for each renegotiation")
    sdp: Sdp | None = Field(default=None, description="offer: the complete SDP offer, candidates included")
    reason: ShortText | None = Field(default=None, description="hangup: why the device ends the call")

    @model_validator(mode="after")
    def _fields_of_type(self) -> Self:
        if self.type == "offer" and self.sdp is None:
            raise ValueError("an offer carries its sdp")
        if self.type == "hangup" and self.reason is None:
            raise ValueError("a hangup carries its reason")
        return self


# A scene sample is whole in one message: at most this many bytes of JPEG or Ogg, which in base64
# leave room for the other fields under MAX_PAYLOAD_BYTES.
SCENE_MAX_BYTES = 20 * 1024
SCENE_CONTENT_TYPES: dict[str, str] = {"still": "image/jpeg", "sound": "audio/ogg"}


class SceneSample(Versioned):
    """The scene while a call's video cannot connect. Published on ``kc/v1/dev/{device_id}/scene``, QoS 1.

    A network that lets MQTT through but never WebRTC (no UDP, a symmetric NAT without TURN)
    still shows the dispatcher the scene: every few seconds the device sends a small JPEG of its
    camera (``still``) and the sound since the last one as Opus in Ogg (``sound``), each whole in
    this one message, while it keeps trying the video. The call is ``degraded`` meanwhile.
    """

    type: Literal["still", "sound"]
    call_id: CallId
    report_id: ReportId = Field(description="the accepted report the call belongs to")
    case_no: Annotated[str, Field(max_length=32)]
    seq: int = Field(ge=1, le=1_000_000, description="the device's cycle in this call; a still and its sound share it")
    captured_at: AwareDatetime = Field(description="still: when the frame was taken; sound: its first sample")
    duration_s: float | None = Field(default=None, gt=0, le=10, description="sound: its length in seconds")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the bytes in data, lowercase hex")
    data: str = Field(
        min_length=4,
        max_length=4 * ((SCENE_MAX_BYTES + 2) // 3),
        description=f"the JPEG (still) or Ogg Opus (sound), base64 (RFC 4648), at most {SCENE_MAX_BYTES} bytes",
    )

    @model_validator(mode="after")
    def _fields_of_type(self) -> Self:
        if (self.type == "sound") != (self.duration_s is not None):
            raise ValueError("a sound, and only a sound, carries duration_s")
        try:
            base64.b64decode(self.data, validate=True)
        except binascii.Error:
            raise ValueError("data is not base64") from None
        return self

    @property
    def content_type(self) -> str:
        return SCENE_CONTENT_TYPES[self.type]

    def content(self) -> bytes:
        return base64.b64decode(self.data)
