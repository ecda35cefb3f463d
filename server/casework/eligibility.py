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
        return None, "a pedestrian is involved: not one of the three qualifying kinds"
    if drivers == 0:
        return None, "no motor vehicle driver entered"
    if drivers >= 2 and non_motor == 0:
        return "motor_motor", ""
    if drivers == 1 and non_motor >= 1:
        return "motor_nonmotor", ""
    if drivers == 1 and owners >= 1:
        return "single", ""
    if drivers == 1:
        return None, "one vehicle only: enter the other party or the owner of the damaged property"
    return None, "several motor vehicles and a non-motor vehicle: not one of the three qualifying kinds"


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
        return Verdict(INCOMPLETE, "facts of the accident not entered", kind)
    exclusions = []
    if facts["injury"] in (Injury.SERIOUS, Injury.DEATH):
        exclusions.append("death or serious injury" if facts["injury"] == Injury.DEATH else "serious injury")
    if not facts["vehicles_movable"]:
        exclusions.append("a vehicle cannot be moved")
    if facts["suspected_impairment"]:
        exclusions.append("suspected drink or drug driving")
    if facts["hazardous_goods"]:
        exclusions.append("hazardous goods")
    if facts["hit_and_run"]:
        exclusions.append("hit-and-run")
    if facts["facts_disputed"]:
        exclusions.append("the parties dispute the basic facts")
    if kind == "single" and not facts.get("owner_present"):
        exclusions.append("the owner of the damaged property is not at the scene")
    missing = []
    for i, (role, result) in enumerate(zip(roles, checks, strict=True)):
        if role is not PartyRole.DRIVER:
            continue
        who = POSITIONS[i] if i < len(POSITIONS) else str(i + 1)
        for check, failure in (("licence", "no valid licence"), ("insurance", "no compulsory insurance")):
            outcome = result.get(check)
            if outcome == "fail":
                exclusions.append(f"{who}: {failure}")
            elif outcome != "pass":
                missing.append(f"{who}: {check} {'not checked' if outcome is None else 'unknown'}")
    if exclusions:
        return Verdict(INELIGIBLE, "escalate to on-scene handling: " + "; ".join(exclusions), kind)
    if missing:
        return Verdict(INCOMPLETE, "checks outstanding: " + "; ".join(missing), kind)
    damage = "vehicle or property damage only" if facts["injury"] == Injury.NONE else "slight injury"
    return Verdict(ELIGIBLE, f"{KIND_NAMES[kind]}; {damage}; drivers licensed and insured; vehicles movable", kind)
