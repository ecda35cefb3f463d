"""A first draft of the determination's facts (事故事实), written from what the dispatcher collected.

The officer starts from the time, place, weather, the parties with their vehicles and plates, the
situation and the injuries, all already on record, instead of a blank box; the draft is only ever
a suggestion they edit, never issued as it stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from server.casework.licence_classes import vehicle_type_name
from server.casework.parties import PartyRole

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

# What happened, per situation: {a} is the party at fault, {b} the others.
HAPPENED = {
    "rear_end": "{a}车辆追尾{b}车辆",
    "lane_change": "{a}车辆变更车道时与{b}车辆发生碰撞",
    "reversing": "{a}车辆倒车时与{b}车辆发生碰撞",
    "door_opening": "{a}开关车门时与{b}车辆发生碰撞",
    "signal_violation": "{a}车辆违反交通信号通行，与{b}车辆发生碰撞",
    "failure_to_yield": "{a}车辆未按规定让行，与{b}车辆发生碰撞",
    "wrong_way": "{a}车辆逆向行驶，与{b}车辆发生碰撞",
    "other": "{a}车辆与{b}车辆发生碰撞",
}
OUTCOME = {
    "none": "造成车辆不同程度损坏，无人员受伤",
    "slight": "造成车辆损坏，有人员轻微受伤",
}


@dataclass(frozen=True)
class DraftParty:
    label: str  # 甲, 乙, …
    name: str
    role: str
    plate: str | None
    vehicle_type: str | None


def _who(p: DraftParty) -> str:
    if p.role == PartyRole.DRIVER:
        kind = vehicle_type_name(p.vehicle_type) if p.vehicle_type else "机动车"
        return f"{p.label}方{p.name}驾驶{kind}{p.plate or ''}"
    if p.role == PartyRole.NON_MOTOR:
        return f"{p.label}方{p.name}驾驶非机动车"
    if p.role == PartyRole.PEDESTRIAN:
        return f"{p.label}方{p.name}步行"
    return f"{p.label}方{p.name}为受损财产的所有人"


def draft_facts(
    at: datetime, place: str | None, weather: str | None, injury: str | None,
    parties: list[DraftParty], situation: str, at_fault: int,
) -> str:  # fmt: skip
    """The facts as an officer would write them; gaps (no place yet) are left out, not invented."""
    local = at.astimezone(LOCAL_TZ)
    when = f"{local.year}年{local.month}月{local.day}日{local.hour}时{local.minute:02d}分"
    opening = "，".join(
        part for part in (when, f"在{place}" if place else "", f"天气{weather}" if weather else "") if part
    )
    sentences = [opening, "；".join(_who(p) for p in parties)]
    if parties and 0 <= at_fault < len(parties):
        others = "、".join(f"{p.label}方" for i, p in enumerate(parties) if i != at_fault) or "其他"
        happened = HAPPENED.get(situation, HAPPENED["other"]).format(a=f"{parties[at_fault].label}方", b=others)
        outcome = OUTCOME.get(injury or "", "")
        sentences.append("，".join(part for part in (happened, outcome) if part))
    return "。".join(s for s in sentences if s) + "。"
