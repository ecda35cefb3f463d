"""Plates read on the device, each with the crop it was read from."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from protocol.messages.base import Message, ReportId, ShortText, Versioned
from protocol.plates import PlateKind, plate_form

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
