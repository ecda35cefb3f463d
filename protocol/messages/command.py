"""What the server asks of a device: one message type for calls, evidence, plates, the road, the
dispatcher's words to the parties, the end of the unit's part in a case, a remote self-test and a
look for a signed release now (``update.check``, docs/updates.md)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from protocol.messages.base import ReportId, ShortText, Versioned
from protocol.messages.call import CallId, Sdp
from protocol.messages.device_state import ReleaseKind, ReleaseVersion
from protocol.messages.evidence import MAX_UPLOAD_BYTES, PRETRIGGER_MAX_S, CaseNo, Sha256, UploadId

OperatorName = Annotated[str, Field(min_length=1, max_length=40)]
InstructionText = Annotated[str, Field(min_length=1, max_length=200)]


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
        "call.status",
        "instruction",
        "case.closed",
        "selftest.run",
        "update.check",
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
        description="clip.request: the report whose press ends the clip (unless until is given); "
        "plates.request: the case's report",
    )
    seconds: int | None = Field(
        default=None,
        ge=1,
        le=PRETRIGGER_MAX_S,
        description="clip.request: how much of the time before the press, or before until",
    )
    until: AwareDatetime | None = Field(
        default=None,
        description="clip.request: the clip ends at this time (the server's, when the dispatcher asked), cut from "
        "the video the unit keeps recording; absent: it ends at the press of report_id",
    )
    offset: int | None = Field(
        default=None, ge=0, le=MAX_UPLOAD_BYTES, description="upload.ack: the next byte the server expects"
    )
    sha256: Sha256 | None = Field(default=None, description="upload.done: the hash of the file the server stored")
    url: Annotated[str, Field(pattern=r"^https?://\S{1,300}$")] | None = Field(
        default=None, description="document.ready: where the parties fetch the determination (for a QR code)"
    )
    operators: list[OperatorName] | None = Field(
        default=None,
        max_length=4,
        description="call.status: who of the police is on the line now (their names as the console shows them); "
        "empty: the call is on hold, nobody is listening",
    )
    text: InstructionText | None = Field(
        default=None, description="instruction: what the dispatcher tells the parties, shown on a kiosk's screen"
    )
    release: ReleaseVersion | None = Field(
        default=None,
        description="update.check: the release this unit may now take (with its rollout); absent: only "
        "look, and take nothing a rollout has not offered",
    )
    kind: ReleaseKind | None = Field(
        default=None,
        description="update.check: what the release is, firmware or models; absent: firmware (so that units on "
        "firmware from before models were rolled out still read the offer)",
    )
    rollout: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="update.check: the rollout offering the release"
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
            "call.status": ("call_id", "operators"),
            "instruction": ("case_no", "text"),
            "case.closed": ("case_no",),
            "selftest.run": (),
            "update.check": (),
        }[self.type]
        if (self.release is None) != (self.rollout is None):
            raise ValueError("a release is offered by a rollout: give both or neither")
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            article = "an" if self.type[0] in "aeiou" else "a"
            raise ValueError(f"{article} {self.type} carries {', '.join(missing)}")
        return self
