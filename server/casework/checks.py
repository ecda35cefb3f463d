"""The automatic checks of a party: licence, vehicle registration, compulsory insurance.

Pure functions of the party as entered, the registry's records and the accident time, so each
outcome can be tested from records alone and kept exactly as it was decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.casework.licence_classes import covers, vehicle_type_name
from server.casework.registry import LicenceRecord, PolicyRecord, VehicleRecord, record_json

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
KINDS = ("licence", "vehicle", "insurance")


@dataclass(frozen=True)
class CheckResult:
    kind: str
    result: str  # pass / fail / unknown
    reason: str
    record: dict[str, Any] | None = None


@dataclass(frozen=True)
class PartyFacts:
    """What the checks need of a party."""

    id_number: str
    licence_no: str | None
    plate: str | None
    vehicle_type: str | None
    policy_no: str | None


def check_licence(
    party: PartyFacts, licence: LicenceRecord | None, vehicle: VehicleRecord | None, accident_at: datetime
) -> CheckResult:
    if not party.licence_no:
        return CheckResult("licence", "unknown", "no licence number entered")
    if licence is None:
        return CheckResult("licence", "fail", f"no licence {party.licence_no} in the registry")
    seen = record_json(licence)
    day = accident_at.astimezone(LOCAL_TZ).date()
    if licence.id_number != party.id_number:
        return CheckResult("licence", "fail", "the licence belongs to someone else (ID number differs)", seen)
    if licence.status != "valid":
        return CheckResult("licence", "fail", f"licence is {licence.status}", seen)
    if not licence.valid_from <= day <= licence.valid_until:
        return CheckResult(
            "licence", "fail", f"licence not valid on {day} (valid {licence.valid_from} to {licence.valid_until})", seen
        )
    vehicle_type = vehicle.vehicle_type if vehicle is not None else party.vehicle_type
    if vehicle_type is None:
        return CheckResult("licence", "unknown", "licence valid; vehicle type unknown, class not checked", seen)
    if not covers(licence.classes, vehicle_type, automatic=vehicle is not None and vehicle.automatic):
        return CheckResult(
            "licence", "fail", f"class {licence.classes} does not cover a {vehicle_type_name(vehicle_type)}", seen
        )
    return CheckResult(
        "licence", "pass", f"valid until {licence.valid_until}, class {licence.classes} covers the vehicle", seen
    )


def check_vehicle(party: PartyFacts, vehicle: VehicleRecord | None, accident_at: datetime) -> CheckResult:
    if not party.plate:
        return CheckResult("vehicle", "unknown", "no plate entered")
    if vehicle is None:
        return CheckResult("vehicle", "fail", f"no vehicle registered under {party.plate}")
    seen = record_json(vehicle)
    if vehicle.status != "normal":
        return CheckResult("vehicle", "fail", f"registration status is {vehicle.status}", seen)
    if party.vehicle_type and party.vehicle_type != vehicle.vehicle_type:
        return CheckResult(
            "vehicle",
            "fail",
            f"registered as a {vehicle_type_name(vehicle.vehicle_type)}, not a {vehicle_type_name(party.vehicle_type)}",
            seen,
        )
    day = accident_at.astimezone(LOCAL_TZ).date()
    if vehicle.inspection_until < day:
        return CheckResult("vehicle", "fail", f"inspection expired on {vehicle.inspection_until}", seen)
    return CheckResult("vehicle", "pass", f"registered, inspection valid until {vehicle.inspection_until}", seen)


def check_insurance(party: PartyFacts, policies: list[PolicyRecord], accident_at: datetime) -> CheckResult:
    if not party.plate:
        return CheckResult("insurance", "unknown", "no plate entered")
    if party.policy_no:
        given = [p for p in policies if p.policy_no == party.policy_no]
        if not given:
            return CheckResult("insurance", "fail", f"no policy {party.policy_no} for {party.plate}")
        policies = given
    covering = [p for p in policies if p.starts_at <= accident_at < p.ends_at]
    if covering:
        policy = covering[0]
        return CheckResult(
            "insurance",
            "pass",
            f"{policy.insurer} policy {policy.policy_no} valid until "
            f"{policy.ends_at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}",
            record_json(policy),
        )
    if not policies:
        return CheckResult("insurance", "fail", f"no compulsory insurance on record for {party.plate}")
    latest = max(policies, key=lambda p: p.ends_at)
    local = latest.starts_at.astimezone(LOCAL_TZ), latest.ends_at.astimezone(LOCAL_TZ)
    when = "expired" if latest.ends_at <= accident_at else "not yet started"
    return CheckResult(
        "insurance",
        "fail",
        f"policy {latest.policy_no} {when} at the accident time (valid {local[0]:%Y-%m-%d %H:%M} "
        f"to {local[1]:%Y-%m-%d %H:%M})",
        record_json(latest),
    )
