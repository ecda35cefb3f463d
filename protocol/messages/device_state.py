"""What a device says about itself: its kind, its parts' health, presence and heartbeat."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from protocol.messages.base import Message, ShortText, Versioned
from protocol.messages.position import Position

# A firmware or model release's version: dotted numbers, compared as numbers (0.10 after 0.9).
ReleaseVersion = Annotated[str, Field(pattern=r"^\d{1,6}(\.\d{1,6}){0,3}$")]
# What a release is: the firmware, or the plate models released apart from it (docs/updates.md).
ReleaseKind = Literal["firmware", "models"]


class UpdateStep(StrEnum):
    """How far a unit got with the release a rollout offered it (docs/updates.md)."""

    DOWNLOADED = "downloaded"  # fetched and checked against its signed hash
    INSTALLED = "installed"  # installed beside the running release; on trial after the restart
    HEALTHY = "healthy"  # the trial passed (or the unit already ran that release): kept
    ROLLED_BACK = "rolled_back"  # the trial failed: the previous release is back
    REFUSED = "refused"  # the unit would not take it (a TUF refusal: hash, signature, rollback, expiry, size)
    FAILED = "failed"  # the install itself failed; the running release stays


class UpdateStatus(Message):
    """Where a unit stands with the release it was last offered; in every heartbeat until the next
    step, so a lost heartbeat (QoS 0) loses nothing."""

    rollout: int = Field(ge=1, le=2**31 - 1, description="the server's rollout that offered the release")
    release: ReleaseVersion
    kind: ReleaseKind | None = Field(
        default=None, description="what the release is: firmware or plate models; absent: firmware"
    )
    step: UpdateStep
    at: AwareDatetime = Field(description="when the unit reached this step")
    code: Annotated[str, Field(pattern=r"^[a-z_]{1,24}$")] | None = Field(
        default=None,
        description="refused: the refusal's code (hash_mismatch, bad_signature, rollback, expired, too_large)",
    )
    reason: ShortText | None = Field(
        default=None, description="rolled_back, refused, failed: why, in words a technician can act on (Chinese first)"
    )

    @model_validator(mode="after")
    def _why(self) -> Self:
        if self.step in (UpdateStep.ROLLED_BACK, UpdateStep.REFUSED, UpdateStep.FAILED) and not self.reason:
            raise ValueError(f"a {self.step.value} status says why (reason)")
        if (self.step is UpdateStep.REFUSED) != (self.code is not None):
            raise ValueError("a refusal, and only a refusal, carries its code")
        return self


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
    update: UpdateStatus | None = Field(
        default=None,
        description="the unit's progress with the firmware a rollout last offered it; none if never offered",
    )
    models_update: UpdateStatus | None = Field(
        default=None,
        description="the same for the plate models a rollout last offered it (kind models); none if never offered",
    )


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
