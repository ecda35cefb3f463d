"""Why a case leaves quick handling for ordinary on-scene handling.

Escalation cannot be undone (an officer goes to the scene), so it is never done without a reason:
one of the regulation's exclusions from quick handling, or the dispatcher's own words. The reason
is written on the case as a person would say it, and kept in the case log.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


class EscalationReason(StrEnum):
    DEATH = "death"
    SERIOUS_INJURY = "serious_injury"
    VEHICLE_IMMOVABLE = "vehicle_immovable"
    NO_INSURANCE = "no_insurance"
    SUSPECTED_IMPAIRMENT = "suspected_impairment"
    NO_LICENCE = "no_licence"
    HAZARDOUS_GOODS = "hazardous_goods"
    HIT_AND_RUN = "hit_and_run"
    FACTS_DISPUTED = "facts_disputed"
    OTHER = "other"  # the dispatcher says why in words


LABELS = {
    EscalationReason.DEATH: "有人死亡",
    EscalationReason.SERIOUS_INJURY: "有人重伤",
    EscalationReason.VEHICLE_IMMOVABLE: "车辆无法移动",
    EscalationReason.NO_INSURANCE: "车辆未投保交强险",
    EscalationReason.SUSPECTED_IMPAIRMENT: "疑似酒驾或毒驾",
    EscalationReason.NO_LICENCE: "驾驶人无有效驾驶证",
    EscalationReason.HAZARDOUS_GOODS: "车辆载有危险物品",
    EscalationReason.HIT_AND_RUN: "肇事逃逸",
    EscalationReason.FACTS_DISPUTED: "当事人对基本事实有争议",
    EscalationReason.OTHER: "其他原因",
}


class EscalationIn(BaseModel):
    """``reason_code`` from the list, ``reason`` in words, or both; ``other`` needs the words."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason_code: EscalationReason | None = Field(default=None, description="one of GET /api/escalation-reasons")
    reason: str | None = Field(default=None, max_length=300, description="the dispatcher's words")

    @model_validator(mode="after")
    def _has_a_reason(self) -> Self:
        words = self.reason or ""
        if self.reason_code is None and len(words) < 2:
            raise PydanticCustomError(
                "escalation_reason_required",
                "请选择或填写转现场处理的原因 (choose or write why the case goes to on-scene handling)",
                {"fields": ["reason_code"]},
            )
        if self.reason_code is EscalationReason.OTHER and len(words) < 2:
            raise PydanticCustomError(
                "escalation_reason_required",
                "选择“其他原因”时请写明原因 (write the reason when choosing 'other')",
                {"fields": ["reason"]},
            )
        return self

    def text(self) -> str:
        """As the case keeps it: the exclusion's name, then the dispatcher's words."""
        named = LABELS[self.reason_code] if self.reason_code not in (None, EscalationReason.OTHER) else ""
        return "：".join(part for part in (named, self.reason or "") if part)


def reasons_json() -> list[dict[str, str]]:
    return [{"code": code.value, "label": label} for code, label in LABELS.items()]
