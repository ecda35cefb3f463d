"""What a dispatcher may enter about a party and about the accident, validated before it is kept."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from server.casework.idcard import id_number_problem
from server.casework.licence_classes import VEHICLE_TYPES
from server.casework.plates import normalise_plate, plate_problem

POSITIONS = "甲乙丙丁戊己"


class PartyRole(StrEnum):
    DRIVER = "driver"  # of a motor vehicle
    NON_MOTOR = "non_motor"  # rider of a bicycle or e-bike
    PEDESTRIAN = "pedestrian"
    PROPERTY_OWNER = "property_owner"  # the person responsible for damaged property


DRIVER_NEEDS = {"licence_no": "驾驶证号", "plate": "车牌号", "vehicle_type": "车辆类型"}


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    role: PartyRole
    name: str = Field(min_length=1, max_length=40)
    id_number: str = Field(description="18-character resident identity number")
    phone: str = Field(pattern=r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$", description="mobile or landline")
    licence_no: str | None = Field(default=None, pattern=r"^[0-9A-Z]{12,18}$")
    plate: str | None = Field(default=None, description="as confirmed or corrected by the dispatcher")
    plate_read_source: Literal["report", "reader"] | None = Field(
        default=None,
        description="take a device's read of the plate as this party's read: 'report', the plate the reporting "
        "unit carries (as provisioned); 'reader', a plate its reader read in a still (plate_read_id)",
    )
    plate_read_id: int | None = Field(default=None, description="reader: the read, from the case's plate readings")
    vehicle_type: str | None = Field(default=None, description="GA 24.4 code, e.g. K33")
    insurer: str | None = Field(default=None, max_length=40)
    policy_no: str | None = Field(default=None, pattern=r"^[0-9A-Z-]{6,40}$")

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str) -> str:
        value = value.upper()
        problem = id_number_problem(value)
        if problem:
            raise PydanticCustomError(*problem)
        return value

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = normalise_plate(value)
        problem = plate_problem(value)
        if problem:
            raise PydanticCustomError(*problem)
        return value

    @field_validator("vehicle_type")
    @classmethod
    def _vehicle_type(cls, value: str | None) -> str | None:
        if value and value not in VEHICLE_TYPES:
            raise PydanticCustomError(
                "unknown_vehicle_type", "请从列表中选择车辆类型 (unknown vehicle type; choose one of the list)"
            )
        return value or None

    @model_validator(mode="after")
    def _read_named(self) -> Self:
        if (self.plate_read_source == "reader") != (self.plate_read_id is not None):
            raise PydanticCustomError(
                "invalid_plate_read",
                "所选的车牌识别记录已失效，请刷新页面后重选 (plate_read_id goes with plate_read_source 'reader' only)",
                {"fields": ["plate_read_id"]},
            )
        return self

    @model_validator(mode="after")
    def _driver_has_vehicle(self) -> Self:
        if self.role is PartyRole.DRIVER:
            missing = [k for k in DRIVER_NEEDS if not getattr(self, k)]
            if missing:
                named = "、".join(DRIVER_NEEDS[k] for k in missing)
                raise PydanticCustomError(
                    "driver_needs_vehicle",
                    f"机动车驾驶人须填写{named} (a driver needs {', '.join(missing)})",
                    {"fields": missing},
                )
        return self


class Injury(StrEnum):
    NONE = "none"  # vehicle or property damage only
    SLIGHT = "slight"
    SERIOUS = "serious"
    DEATH = "death"


class FactsIn(BaseModel):
    """The dispatcher's answers to the questions that decide whether quick handling applies."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    injury: Injury
    vehicles_movable: bool
    suspected_impairment: bool = Field(description="drink or drug driving suspected")
    hazardous_goods: bool
    hit_and_run: bool
    facts_disputed: bool = Field(description="the parties dispute the basic facts")
    owner_present: bool | None = Field(
        default=None, description="single vehicle: the person responsible for the damaged property is at the scene"
    )
    place: str = Field(min_length=2, max_length=120, description="where, as written on the determination")
    weather: str = Field(min_length=1, max_length=20)


class StatementIn(BaseModel):
    """A party's account: the span of the call recording it was given in, and its summary."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    party_id: int
    start: AwareDatetime
    end: AwareDatetime
    summary: str = Field(min_length=2, max_length=1000)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise PydanticCustomError(
                "statement_span_order",
                "陈述的结束应在开始之后，请重新标记结束 (the span must end after it starts)",
                {"fields": ["end"]},
            )
        if (self.end - self.start).total_seconds() > 30 * 60:
            raise PydanticCustomError(
                "statement_span_too_long",
                "一段陈述最长30分钟，请分段记录 (a statement span is at most 30 minutes)",
                {"fields": ["end"]},
            )
        return self
