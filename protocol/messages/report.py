"""The report and the server's answer to it: the quick-handling data set of one accident.

In the spirit of eCall's minimum set of data (EN 15722): enough for the server to open, place and
route a case with no further round trip.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from protocol.messages.base import DeviceId, Latitude, Longitude, Message, ReportId, ShortText, Versioned
from protocol.messages.device_state import DeviceKind, Health
from protocol.messages.position import Position, TrackPoint
from protocol.plates import plate_form


def _a_plate_that_can_exist(text: str) -> str:
    if plate_form(text) is None:
        raise ValueError("not a plate any vehicle can carry")  # the text itself stays out of logs
    return text


# Checked against the one plate grammar (GA 36-2018) in protocol/plates.py, which the device's reader,
# the simulated camera and the console use too, so any plate that can be read can be provisioned.
Plate = Annotated[
    str,
    Field(description="the plate's text without its separator dot (云A5H821, 使014578), as protocol.plates has it"),
    AfterValidator(_a_plate_that_can_exist),
]
Vin = Annotated[str, Field(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")]


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


class Trigger(StrEnum):
    BUTTON = "button"  # the one-key report button, held for the long-press time
    HAZARD = "hazard"  # the hazard-warning switch
    KIOSK = "kiosk"  # the kiosk's touch screen
    TEST = "test"  # a self-test report: acknowledged but never a real case


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
