"""What every message shares: strict models, the version, the bounds and the field types.

Every model forbids unknown keys and bounds every list and string, so a payload that passes
``decode`` can be stored as it is.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.ids import REPORT_ID_PATTERN
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


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _version_required(schema: dict[str, Any]) -> None:
    # The model fills the version in when building a message, but on the wire it is mandatory.
    schema.setdefault("required", []).insert(0, "version")


class Versioned(Message):
    model_config = ConfigDict(json_schema_extra=_version_required)

    version: Literal[1] = Field(default=1, description="message schema version")
