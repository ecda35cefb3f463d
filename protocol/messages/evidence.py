"""Evidence the server asks a device for, and the chunks it comes back in."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from protocol.ids import REPORT_ID_PATTERN
from protocol.messages.base import ShortText, Versioned
from protocol.messages.call import CallId


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
