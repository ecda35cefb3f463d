"""What a device says about itself: its kind, its parts' health, presence and heartbeat."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from protocol.messages.base import Message, ShortText, Versioned
from protocol.messages.position import Position


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


class DeviceKind(StrEnum):
    IN_CAR = "in-car"
    KIOSK = "kiosk"


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
