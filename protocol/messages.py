"""Message models for every topic in ``protocol.topics``, version 1.

The report is a quick-handling data set in the spirit of eCall's minimum set of data (EN 15722):
enough for the server to open, place and route a case with no further round trip. Every model
forbids unknown keys and bounds every list and string, so a payload that passes ``decode`` can be
stored as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol.errors import ProtocolError
from protocol.ids import REPORT_ID_PATTERN
from protocol.plates import PlateKind, plate_form
from protocol.topics import DEVICE_ID_PATTERN

VERSION: Literal[1] = 1
# A report with a full 30 s track and every optional field is about 6 KiB; the bound leaves room
# for later fields without letting a hostile client make the server parse megabytes.
MAX_PAYLOAD_BYTES = 32 * 1024

DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
ReportId = Annotated[str, Field(pattern=REPORT_ID_PATTERN)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Speed = Annotated[float, Field(ge=0, le=150, allow_inf_nan=False, description="metres per second")]
Heading = Annotated[float, Field(ge=0, lt=360, allow_inf_nan=False, description="degrees from true north")]
ShortText = Annotated[str, Field(max_length=120)]
# Province character, issuing-authority letter, then 4-6 letters/digits and an optional suffix
# character (学, 警, 挂, ...). The full grammar lives with the plate reader; this only keeps junk out.
Plate = Annotated[str, Field(pattern=r"^[\u4e00-\u9fa5][A-Z][A-Z0-9]{4,6}[\u4e00-\u9fa5]?$")]
Vin = Annotated[str, Field(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _version_required(schema: dict[str, Any]) -> None:
    # The model fills the version in when building a message, but on the wire it is mandatory.
    schema.setdefault("required", []).insert(0, "version")


class Versioned(Message):
    model_config = ConfigDict(json_schema_extra=_version_required)

    version: Literal[1] = Field(default=1, description="message schema version")


class FixQuality(IntEnum):
    """The GGA fix-quality indicator, kept as NMEA numbers it."""

    INVALID = 0
    GPS = 1
    DGPS = 2
    PPS = 3
    RTK_FIXED = 4
    RTK_FLOAT = 5
    DEAD_RECKONING = 6
    MANUAL = 7
    SIMULATION = 8


class Position(Message):
    """A GNSS fix, always WGS-84 as the receiver reports it."""

    time: AwareDatetime = Field(description="UTC time of the fix, from the receiver")
    lat: Latitude
    lon: Longitude
    datum: Literal["WGS-84"] = "WGS-84"
    alt_m: float | None = Field(default=None, ge=-500, le=9000, allow_inf_nan=False)
    mode: Literal[2, 3] = Field(description="2-D or 3-D fix")
    quality: FixQuality
    sats: int = Field(ge=0, le=99, description="satellites used in the fix")
    hdop: float | None = Field(default=None, ge=0, le=99.99, allow_inf_nan=False)
    speed_mps: Speed | None = None
    heading_deg: Heading | None = None
    trusted: bool = Field(
        description="the device judges the fix good enough to route on (fresh, 3-D or good 2-D, "
        "low HDOP, enough satellites, not simulated unless the device is)"
    )


class TrackPoint(Message):
    time: AwareDatetime
    lat: Latitude
    lon: Longitude
    speed_mps: Speed | None = None
    heading_deg: Heading | None = None


class Vehicle(Message):
    """The vehicle an in-car unit is fitted to, as provisioned."""

    plate: Plate
    vin: Vin | None = None


class Site(Message):
    """A roadside kiosk's fixed place, as surveyed at installation (WGS-84)."""

    name: ShortText
    lat: Latitude
    lon: Longitude
    datum: Literal["WGS-84"] = "WGS-84"
    address: ShortText | None = None


class PartState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"
    ABSENT = "absent"


class Health(Message):
    camera: PartState
    gnss: PartState
    audio: PartState
    storage_free_mb: int = Field(ge=0)
    firmware: Annotated[str, Field(max_length=40)]
    uptime_s: int = Field(ge=0)
    plate_reader: PartState | None = Field(
        default=None,
        description="the on-device plate reader: failed when its models are missing or corrupt (the notes say "
        "which), absent when switched off; left out until the unit has checked its models after start-up, "
        "and by firmware without one",
    )
    notes: list[ShortText] = Field(default_factory=list, max_length=8)


class Trigger(StrEnum):
    BUTTON = "button"  # the one-key report button, held for the long-press time
    HAZARD = "hazard"  # the hazard-warning switch
    KIOSK = "kiosk"  # the kiosk's touch screen
    TEST = "test"  # a self-test report: acknowledged but never a real case


class DeviceKind(StrEnum):
    IN_CAR = "in-car"
    KIOSK = "kiosk"


class Report(Versioned):
    """One accident report. Published on ``kc/v1/dev/{device_id}/report``, QoS 1."""

    report_id: ReportId = Field(description="ULID chosen on the device; a retry reuses it")
    device_id: DeviceId
    device_kind: DeviceKind
    trigger: Trigger
    triggered_at: AwareDatetime = Field(description="UTC time of the press on the device clock")
    position: Position | None = Field(default=None, description="latest fix; absent if the device has never had one")
    track: list[TrackPoint] = Field(default_factory=list, max_length=60, description="last 30 s, oldest first")
    vehicle: Vehicle | None = None
    site: Site | None = None
    health: Health

    @model_validator(mode="after")
    def _kind_has_its_place(self) -> Self:
        if self.device_kind is DeviceKind.IN_CAR and self.vehicle is None:
            raise ValueError("an in-car report must carry its vehicle")
        if self.device_kind is DeviceKind.KIOSK and self.site is None:
            raise ValueError("a kiosk report must carry its site")
        return self


class Unit(Message):
    """A traffic-police unit a case is routed to (a district's 大队)."""

    adcode: Annotated[str, Field(pattern=r"^\d{6}$")]
    name: ShortText


class Ack(Versioned):
    """The server's answer to a report. Published on ``kc/v1/dev/{device_id}/ack``, QoS 1."""

    report_id: ReportId | None = Field(
        default=None, description="absent only when refusing a payload whose id was unreadable"
    )
    status: Literal["accepted", "refused"]
    duplicate: bool = Field(default=False, description="the report id was already known")
    case_no: str | None = Field(default=None, max_length=32)
    unit: Unit | None = None
    flag: ShortText | None = Field(default=None, description="why a dispatcher must look (e.g. outside every fence)")
    reason: ShortText | None = Field(default=None, description="why a report was refused")
    test: bool = Field(default=False, description="a test report: acknowledged, no case opened")

    @model_validator(mode="after")
    def _status_fields(self) -> Self:
        if self.status == "accepted" and self.report_id is None:
            raise ValueError("an accepted report has its report id")
        if self.status == "accepted" and self.case_no is None and not self.test:
            raise ValueError("an accepted report has a case number")
        if self.status == "refused" and self.reason is None:
            raise ValueError("a refusal has a reason")
        return self


class Presence(Versioned):
    """Retained on ``kc/v1/dev/{device_id}/state``; the broker publishes ``offline`` as last will."""

    state: Literal["online", "offline"]
    at: AwareDatetime | None = Field(default=None, description="when the device said so (none in the will)")
    firmware: Annotated[str, Field(max_length=40)] | None = None


class Heartbeat(Versioned):
    """Periodic, on ``kc/v1/dev/{device_id}/heartbeat``, QoS 0."""

    at: AwareDatetime
    device_kind: DeviceKind
    app_state: Annotated[str, Field(max_length=24)]
    outbox_pending: int = Field(ge=0)
    position: Position | None = None
    health: Health


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # the part is not fitted to this kind of device (a kiosk has no hazard line)


class SelfTestCheck(Message):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$", description="camera, gnss, button, ...")]
    status: CheckStatus
    detail: Annotated[str, Field(max_length=240, description="what was measured, or why it failed, for a technician")]
    duration_ms: int = Field(ge=0)


class SelfTest(Versioned):
    """The result of an on-device self-test. Published on ``kc/v1/dev/{device_id}/selftest``, QoS 1."""

    run_id: ReportId = Field(description="ULID chosen on the device for this run")
    device_kind: DeviceKind
    firmware: Annotated[str, Field(max_length=40)]
    started_at: AwareDatetime
    finished_at: AwareDatetime
    passed: bool = Field(description="no check failed")
    checks: list[SelfTestCheck] = Field(min_length=1, max_length=24)
    test_report_id: ReportId | None = Field(
        default=None, description="the test report sent during the run, acknowledged without a case"
    )

    @model_validator(mode="after")
    def _passed_means_nothing_failed(self) -> Self:
        if self.passed != all(c.status is not CheckStatus.FAIL for c in self.checks):
            raise ValueError("passed must be true exactly when no check failed")
        if self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        return self


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


class EvidenceKind(StrEnum):
    STILL = "still"  # a full-resolution photograph taken on the dispatcher's request
    CLIP = "clip"  # the seconds before the press, from the device's pre-trigger buffer


# What each kind of evidence is stored as: a JPEG; Motion-JPEG in Matroska, each frame the
# camera's own JPEG with its exact capture time, playable in VLC, mpv and ffmpeg.
ContentType = Literal["image/jpeg", "video/x-matroska"]
CONTENT_TYPES: dict[EvidenceKind, ContentType] = {
    EvidenceKind.STILL: "image/jpeg",
    EvidenceKind.CLIP: "video/x-matroska",
}
# A chunk travels base64-encoded, so 16 KiB become 21,848 characters: with the rest of the
# message well under MAX_PAYLOAD_BYTES.
CHUNK_BYTES = 16 * 1024
_CHUNK_CHARS = 4 * ((CHUNK_BYTES + 2) // 3)
MAX_UPLOAD_BYTES = 32 * 1024 * 1024
PRETRIGGER_MAX_S = 60
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the whole file, lowercase hex")]
UploadId = Annotated[str, Field(pattern=REPORT_ID_PATTERN, description="ULID chosen by the server for the request")]
CaseNo = Annotated[str, Field(max_length=32)]


class Command(Versioned):
    """What the server asks of a device. Published on ``kc/v1/dev/{device_id}/cmd``, QoS 1."""

    type: Literal[
        "call.answer",
        "call.end",
        "still.request",
        "clip.request",
        "upload.ack",
        "upload.done",
        "upload.refused",
        "road.clear",
        "document.ready",
        "plates.request",
    ]
    call_id: CallId | None = Field(
        default=None, description="the call it concerns; required for call.* and still/clip requests"
    )
    attempt: int = Field(default=1, ge=1, le=1000, description="call.answer: the offer it answers")
    sdp: Sdp | None = Field(default=None, description="call.answer: the complete SDP answer")
    reason: ShortText | None = Field(
        default=None, description="call.end: why the call ends; upload.refused, upload.ack: why a chunk was not taken"
    )
    upload_id: UploadId | None = Field(
        default=None, description="still/clip/plates requests and upload.*: the server's id for the request"
    )
    case_no: CaseNo | None = Field(default=None, description="still/clip/plates requests: the case the evidence is for")
    report_id: ReportId | None = Field(
        default=None,
        description="clip.request: the report whose press ends the clip; plates.request: the case's report",
    )
    seconds: int | None = Field(
        default=None, ge=1, le=PRETRIGGER_MAX_S, description="clip.request: how much of the time before the press"
    )
    offset: int | None = Field(
        default=None, ge=0, le=MAX_UPLOAD_BYTES, description="upload.ack: the next byte the server expects"
    )
    sha256: Sha256 | None = Field(default=None, description="upload.done: the hash of the file the server stored")
    url: Annotated[str, Field(pattern=r"^https?://\S{1,300}$")] | None = Field(
        default=None, description="document.ready: where the parties fetch the determination (for a QR code)"
    )

    @model_validator(mode="after")
    def _fields_of_type(self) -> Self:
        if self.type == "call.answer" and self.sdp is None:
            raise ValueError("an answer carries its sdp")
        if self.type == "call.end" and self.reason is None:
            raise ValueError("an end carries its reason")
        needed = {
            "call.answer": ("call_id",),
            "call.end": ("call_id",),
            "still.request": ("call_id", "upload_id", "case_no"),
            "clip.request": ("call_id", "upload_id", "case_no", "report_id", "seconds"),
            "upload.ack": ("upload_id", "offset"),
            "upload.done": ("upload_id", "sha256"),
            "upload.refused": ("upload_id", "reason"),
            "road.clear": ("case_no",),
            "document.ready": ("case_no", "url"),
            "plates.request": ("upload_id", "case_no", "report_id"),
        }[self.type]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            article = "an" if self.type[0] in "aeiou" else "a"
            raise ValueError(f"{article} {self.type} carries {', '.join(missing)}")
        return self


class Upload(Versioned):
    """Evidence the server asked for, in chunks. Published on ``kc/v1/dev/{device_id}/upload``, QoS 1.

    Every chunk carries the whole file's size and SHA-256, so the server can check each chunk
    against the first and the finished file against the hash; the server's ``upload.ack`` names
    the next byte it expects, which is where a device resumes after a dropped link or a restart.
    A device that cannot provide what was asked says so once, with ``unavailable``.
    """

    type: Literal["chunk", "unavailable"]
    upload_id: UploadId
    kind: EvidenceKind
    call_id: CallId
    case_no: CaseNo
    content_type: ContentType | None = None
    size: int | None = Field(default=None, ge=1, le=MAX_UPLOAD_BYTES, description="bytes in the whole file")
    sha256: Sha256 | None = None
    captured_at: AwareDatetime | None = Field(default=None, description="the still, or the clip's first frame")
    captured_until: AwareDatetime | None = Field(default=None, description="clip: its last frame")
    offset: int | None = Field(default=None, ge=0, lt=MAX_UPLOAD_BYTES, description="where this chunk's bytes go")
    data: Annotated[str, Field(min_length=4, max_length=_CHUNK_CHARS)] | None = Field(
        default=None, description=f"this chunk's bytes, base64 (RFC 4648), at most {CHUNK_BYTES} of them"
    )
    reason: ShortText | None = Field(default=None, description="unavailable: why")

    @model_validator(mode="after")
    def _fields_of_type(self) -> Self:
        if self.type == "unavailable":
            if self.reason is None:
                raise ValueError("unavailable carries its reason")
            return self
        missing = [
            name
            for name in ("content_type", "size", "sha256", "captured_at", "offset", "data")
            if getattr(self, name) is None
        ]
        if missing:
            raise ValueError(f"a chunk carries {', '.join(missing)}")
        if self.content_type != CONTENT_TYPES[self.kind]:
            raise ValueError(f"a {self.kind.value} is {CONTENT_TYPES[self.kind]}")
        try:
            length = len(base64.b64decode(self.data or "", validate=True))
        except binascii.Error:
            raise ValueError("data is not base64") from None
        if length > CHUNK_BYTES:
            raise ValueError(f"a chunk carries at most {CHUNK_BYTES} bytes")
        if (self.offset or 0) + length > (self.size or 0):
            raise ValueError("the chunk ends past the file's size")
        if self.captured_until is not None and self.captured_at is not None and self.captured_until < self.captured_at:
            raise ValueError("captured_until is before captured_at")
        return self

    def chunk(self) -> bytes:
        return base64.b64decode(self.data or "")


# A straightened plate as a small JPEG: 128 x 32 pixels are 1-3 KiB; at most MAX_PLATE_READS of
# them in base64 leave room for the rest under MAX_PAYLOAD_BYTES.
PLATE_CROP_MAX_BYTES = 4 * 1024
MAX_PLATE_READS = 4


class PlateReadOut(Message):
    """One plate as the device's reader read it."""

    text: Annotated[str, Field(max_length=10, description="the read, without the separator dot (云A5H821)")]
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False, description="the reader's, for the whole text")
    kind: PlateKind = Field(description="the plate's colour")
    box: tuple[int, int, int, int] = Field(description="x1, y1, x2, y2 in the still's pixels")
    crop: str = Field(
        min_length=4,
        max_length=4 * ((PLATE_CROP_MAX_BYTES + 2) // 3),
        description=f"the straightened plate the reader read, JPEG in base64, at most {PLATE_CROP_MAX_BYTES} bytes",
    )

    @model_validator(mode="after")
    def _a_plate_that_can_exist(self) -> Self:
        if plate_form(self.text) is None:
            raise ValueError("text is not a plate any vehicle can carry")  # the text itself stays out of logs
        x1, y1, x2, y2 = self.box
        if not (0 <= x1 < x2 and 0 <= y1 < y2):
            raise ValueError("box is not x1, y1, x2, y2 with x1 < x2 and y1 < y2")
        try:
            base64.b64decode(self.crop, validate=True)
        except binascii.Error:
            raise ValueError("crop is not base64") from None
        return self

    def crop_jpeg(self) -> bytes:
        return base64.b64decode(self.crop)


class PlateReads(Versioned):
    """Plates read on the device. Published on ``kc/v1/dev/{device_id}/plates``, QoS 1.

    Sent after a report, read from a still taken at the press, and in answer to a dispatcher's
    ``plates.request``, from a full-resolution still taken then. A reader that is off, a camera
    that failed or a read that took too long is said in ``error``, with no plates, so the
    dispatcher knows why nothing came rather than waiting.
    """

    reading_id: ReportId = Field(
        description="after a report: a ULID chosen by the device; on request: the request's upload_id"
    )
    source: Literal["report", "request"]
    report_id: ReportId = Field(description="the report (and so the case) the plates belong to")
    captured_at: AwareDatetime | None = Field(default=None, description="when the still was taken")
    plates: list[PlateReadOut] = Field(default_factory=list, max_length=MAX_PLATE_READS, description="best first")
    error: ShortText | None = Field(default=None, description="why there are no reads")

    @model_validator(mode="after")
    def _reads_or_why_not(self) -> Self:
        if self.error is not None and self.plates:
            raise ValueError("a reading with an error carries no plates")
        if self.error is None and self.captured_at is None:
            raise ValueError("a reading carries the time its still was taken")
        return self


M = TypeVar("M", bound=Message)


def decode(model: type[M], payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> M:
    """Parse and validate one payload, or raise ProtocolError saying what is wrong."""
    if len(payload) > max_bytes:
        raise ProtocolError("too_large", f"{len(payload)} bytes, limit {max_bytes}", payload)
    try:
        data: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("not_json", str(exc), payload) from None
    if not isinstance(data, dict):
        raise ProtocolError("schema", "payload is not a JSON object", payload)
    if issubclass(model, Versioned) and data.get("version") != VERSION:
        raise ProtocolError("unsupported_version", f"version {data.get('version')!r}, expected {VERSION}", payload)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ProtocolError("schema", f"{where}: {first['msg']}", payload) from None


def encode(message: Message) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


def utc_iso(value: datetime) -> str:
    """ISO 8601 with milliseconds and ``Z``, as every timestamp in the protocol is written."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The models a JSON Schema is published for, by the name docs/protocol.md uses.
SCHEMAS: dict[str, type[Message]] = {
    "report": Report,
    "ack": Ack,
    "state": Presence,
    "heartbeat": Heartbeat,
    "selftest": SelfTest,
    "call": CallSignal,
    "cmd": Command,
    "scene": SceneSample,
    "upload": Upload,
    "plates": PlateReads,
}
