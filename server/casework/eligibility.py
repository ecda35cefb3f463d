"""Whether a case qualifies for quick handling, computed from the parties, the facts and the checks.

The three qualifying kinds and the exclusions are those of the local rules (../shared/BRIEF.md):
motor vehicle vs motor vehicle, motor vehicle vs non-motor vehicle, or a single motor vehicle with
the damaged property's owner present; anything else goes to ordinary on-scene handling. A verdict
is ``incomplete`` while something it depends on is missing, so a case is never handed over on a
guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.casework.parties import POSITIONS, Injury, PartyRole

ELIGIBLE, INELIGIBLE, INCOMPLETE = "eligible", "ineligible", "incomplete"
KIND_NAMES = {
    "motor_motor": "机动车与机动车 motor vehicle vs motor vehicle",
    "motor_nonmotor": "机动车与非机动车 motor vehicle vs non-motor vehicle",
    "single": "单方 single motor vehicle",
}


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    kind: str | None = None


def accident_kind(roles: Sequence[PartyRole]) -> tuple[str | None, str]:
    drivers = roles.count(PartyRole.DRIVER)
    non_motor = roles.count(PartyRole.NON_MOTOR)
    owners = roles.count(PartyRole.PROPERTY_OWNER)
    if PartyRole.PEDESTRIAN in roles:
        return (
            None,
            "有行人参与，不属于可快速处理的三类事故 (a pedestrian is involved: not one of the three qualifying kinds)",
        )
    if drivers == 0:
        return None, "尚未登记机动车驾驶人 (no motor vehicle driver entered)"
    if drivers >= 2 and non_motor == 0:
        return "motor_motor", ""
    if drivers == 1 and non_motor >= 1:
        return "motor_nonmotor", ""
    if drivers == 1 and owners >= 1:
        return "single", ""
    if drivers == 1:
        return (
            None,
            (
                "只有一辆车：请登记另一方当事人或受损财产的所有人 "
                "(one vehicle only: enter the other party or the owner of the damaged property)"
            ),
        )
    return (
        None,
        (
            "多辆机动车与非机动车，不属于可快速处理的三类事故 "
            "(several motor vehicles and a non-motor vehicle: not one of the three qualifying kinds)"
        ),
    )


def decide(
    roles: Sequence[PartyRole],
    facts: Mapping[str, Any] | None,
    checks: Sequence[Mapping[str, str | None]],
) -> Verdict:
    """``roles`` and ``checks`` in party order; each check map holds the latest result per kind
    (None: not run since the party last changed)."""
    kind, why = accident_kind(roles)
    if kind is None:
        # A pedestrian or a mixed pile-up is out whatever else is entered; the rest is still incomplete.
        verdict = INELIGIBLE if "not one of" in why else INCOMPLETE
        return Verdict(verdict, why)
    if facts is None:
        return Verdict(INCOMPLETE, "请先填写事故情况 (facts of the accident not entered)", kind)
    exclusions = []
    if facts["injury"] in (Injury.SERIOUS, Injury.DEATH):
        exclusions.append(
            "有人死亡 (death or serious injury)" if facts["injury"] == Injury.DEATH else "有人重伤 (serious injury)"
        )
    if not facts["vehicles_movable"]:
        exclusions.append("车辆无法移动 (a vehicle cannot be moved)")
    if facts["suspected_impairment"]:
        exclusions.append("涉嫌酒后或吸毒后驾驶 (suspected drink or drug driving)")
    if facts["hazardous_goods"]:
        exclusions.append("载运危险物品 (hazardous goods)")
    if facts["hit_and_run"]:
        exclusions.append("肇事逃逸 (hit-and-run)")
    if facts["facts_disputed"]:
        exclusions.append("当事人对基本事实有争议 (the parties dispute the basic facts)")
    if kind == "single" and not facts.get("owner_present"):
        exclusions.append("受损财产的所有人不在现场 (the owner of the damaged property is not at the scene)")
    missing = []
    for i, (role, result) in enumerate(zip(roles, checks, strict=True)):
        if role is not PartyRole.DRIVER:
            continue
        who = POSITIONS[i] if i < len(POSITIONS) else str(i + 1)
        for check, name, failure in (
            ("licence", "驾驶证", ("无有效驾驶证", "no valid licence")),
            ("insurance", "交强险", ("无交强险", "no compulsory insurance")),
        ):
            outcome = result.get(check)
            if outcome == "fail":
                exclusions.append(f"{who}：{failure[0]} ({who}: {failure[1]})")
            elif outcome != "pass":
                cn, en = ("未核验", "not checked") if outcome is None else ("核验结果未知", "unknown")
                missing.append(f"{who}：{name}{cn} ({who}: {check} {en})")
    if exclusions:
        return Verdict(INELIGIBLE, "需转为现场处理 (escalate to on-scene handling)：" + "；".join(exclusions), kind)
    if missing:
        return Verdict(INCOMPLETE, "还有核验未完成 (checks outstanding)：" + "；".join(missing), kind)
    damage = (
        "仅车辆或财产损失 (vehicle or property damage only)"
        if facts["injury"] == Injury.NONE
        else "轻微伤 (slight injury)"
    )
    return Verdict(
        ELIGIBLE,
        f"{KIND_NAMES[kind]}；{damage}；驾驶人有证、有交强险；车辆可移动 "
        "(drivers licensed and insured; vehicles movable)",
        kind,
    )
