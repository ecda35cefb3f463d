"""The automatic checks of a party: licence, vehicle registration, compulsory insurance.

Pure functions of the party as entered, the registry's records and the accident time, so each
outcome can be tested from records alone and kept exactly as it was decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.casework.licence_classes import covers, vehicle_type_name
from server.casework.registry import LicenceRecord, PolicyRecord, VehicleRecord, record_json

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
KINDS = ("licence", "vehicle", "insurance")
LICENCE_STATUS = {"suspended": "暂扣", "revoked": "吊销"}  # the registry import's statuses besides valid
VEHICLE_STATUS = {"stolen": "被盗抢", "scrapped": "报废", "seized": "查封"}


@dataclass(frozen=True)
class CheckResult:
    kind: str
    result: str  # pass / fail / unknown
    reason: str
    record: dict[str, Any] | None = None


@dataclass(frozen=True)
class PartyFacts:
    """What the checks need of a party, ``name`` as the party gave it."""

    id_number: str
    licence_no: str | None
    plate: str | None
    vehicle_type: str | None
    policy_no: str | None
    name: str


def _day(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def _moment(value: datetime) -> str:
    local = value.astimezone(LOCAL_TZ)
    return f"{_day(local.date())}{local:%H:%M}"


def same_name(a: str, b: str) -> bool:
    """Names as people write them: spaces and the middle dot of transcribed names vary."""
    plain = str.maketrans("", "", " \u3000·•．.・")
    return a.translate(plain) == b.translate(plain)


def check_licence(
    party: PartyFacts, licence: LicenceRecord | None, vehicle: VehicleRecord | None, accident_at: datetime
) -> CheckResult:
    if not party.licence_no:
        return CheckResult("licence", "unknown", "未填写驾驶证号，无法核验 (no licence number entered)")
    if licence is None:
        return CheckResult(
            "licence", "fail", f"驾驶证号{party.licence_no}查无登记 (no licence {party.licence_no} in the registry)"
        )
    seen = record_json(licence)
    day = accident_at.astimezone(LOCAL_TZ).date()
    if licence.id_number != party.id_number:
        return CheckResult(
            "licence",
            "fail",
            "驾驶证登记在他人名下，与所填身份证号不符 (the licence belongs to someone else (ID number differs))",
            seen,
        )
    if not same_name(party.name, licence.name):
        # The ID number and the licence are on record as someone else's: a borrowed identity.
        return CheckResult(
            "licence",
            "fail",
            "姓名与身份证、驾驶证登记的持有人不符，请核对当事人本人证件 "
            "(the name differs from the holder of the ID number and licence on record)",
            seen,
        )
    if licence.status != "valid":
        return CheckResult(
            "licence",
            "fail",
            f"驾驶证状态为{LICENCE_STATUS.get(licence.status, licence.status)} (licence is {licence.status})",
            seen,
        )
    if not licence.valid_from <= day <= licence.valid_until:
        return CheckResult(
            "licence",
            "fail",
            f"驾驶证在事故当日{_day(day)}不在有效期内（{_day(licence.valid_from)}至{_day(licence.valid_until)}） "
            f"(licence not valid on {day} (valid {licence.valid_from} to {licence.valid_until}))",
            seen,
        )
    vehicle_type = vehicle.vehicle_type if vehicle is not None else party.vehicle_type
    if vehicle_type is None:
        return CheckResult(
            "licence",
            "unknown",
            "驾驶证有效；车辆类型不明，准驾车型未核验 (licence valid; vehicle type unknown, class not checked)",
            seen,
        )
    if not covers(licence.classes, vehicle_type, automatic=vehicle is not None and vehicle.automatic):
        kind = vehicle_type_name(vehicle_type)
        return CheckResult(
            "licence",
            "fail",
            f"准驾车型{licence.classes}不能驾驶{kind} (class {licence.classes} does not cover a {kind})",
            seen,
        )
    return CheckResult(
        "licence",
        "pass",
        f"驾驶证有效至{_day(licence.valid_until)}，准驾车型{licence.classes}与车辆相符 "
        f"(valid until {licence.valid_until}, class {licence.classes} covers the vehicle)",
        seen,
    )


def check_vehicle(party: PartyFacts, vehicle: VehicleRecord | None, accident_at: datetime) -> CheckResult:
    if not party.plate:
        return CheckResult("vehicle", "unknown", "未填写车牌号，无法核验 (no plate entered)")
    if vehicle is None:
        return CheckResult("vehicle", "fail", f"{party.plate}查无车辆登记 (no vehicle registered under {party.plate})")
    seen = record_json(vehicle)
    if vehicle.status != "normal":
        return CheckResult(
            "vehicle",
            "fail",
            f"车辆登记状态为{VEHICLE_STATUS.get(vehicle.status, vehicle.status)} "
            f"(registration status is {vehicle.status})",
            seen,
        )
    if party.vehicle_type and party.vehicle_type != vehicle.vehicle_type:
        registered, entered = vehicle_type_name(vehicle.vehicle_type), vehicle_type_name(party.vehicle_type)
        return CheckResult(
            "vehicle",
            "fail",
            f"登记车型为{registered}，不是所填的{entered} (registered as a {registered}, not a {entered})",
            seen,
        )
    day = accident_at.astimezone(LOCAL_TZ).date()
    if vehicle.inspection_until < day:
        return CheckResult(
            "vehicle",
            "fail",
            f"车辆检验已于{_day(vehicle.inspection_until)}过期 (inspection expired on {vehicle.inspection_until})",
            seen,
        )
    return CheckResult(
        "vehicle",
        "pass",
        f"已登记，检验有效至{_day(vehicle.inspection_until)} "
        f"(registered, inspection valid until {vehicle.inspection_until})",
        seen,
    )


def check_insurance(party: PartyFacts, policies: list[PolicyRecord], accident_at: datetime) -> CheckResult:
    if not party.plate:
        return CheckResult("insurance", "unknown", "未填写车牌号，无法核验 (no plate entered)")
    if party.policy_no:
        given = [p for p in policies if p.policy_no == party.policy_no]
        if not given:
            return CheckResult(
                "insurance",
                "fail",
                f"{party.plate}没有保单号为{party.policy_no}的交强险 (no policy {party.policy_no} for {party.plate})",
            )
        policies = given
    covering = [p for p in policies if p.starts_at <= accident_at < p.ends_at]
    if covering:
        policy = covering[0]
        return CheckResult(
            "insurance",
            "pass",
            f"{policy.insurer}交强险{policy.policy_no}有效至{_moment(policy.ends_at)} "
            f"({policy.insurer} policy {policy.policy_no} valid until "
            f"{policy.ends_at.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M})",
            record_json(policy),
        )
    if not policies:
        return CheckResult(
            "insurance",
            "fail",
            f"{party.plate}没有交强险记录 (no compulsory insurance on record for {party.plate})",
        )
    latest = max(policies, key=lambda p: p.ends_at)
    local = latest.starts_at.astimezone(LOCAL_TZ), latest.ends_at.astimezone(LOCAL_TZ)
    expired = latest.ends_at <= accident_at
    when, state = ("expired", "已过期") if expired else ("not yet started", "尚未生效")
    return CheckResult(
        "insurance",
        "fail",
        f"交强险{latest.policy_no}在事故发生时{state}（{_moment(latest.starts_at)}至{_moment(latest.ends_at)}） "
        f"(policy {latest.policy_no} {when} at the accident time (valid {local[0]:%Y-%m-%d %H:%M} "
        f"to {local[1]:%Y-%m-%d %H:%M}))",
        record_json(latest),
    )
