"""The result of an on-device self-test, as a technician's checklist."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, Field, model_validator

from protocol.messages.base import Message, ReportId, Versioned
from protocol.messages.device_state import DeviceKind


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
