"""The pure rules of case work: ID numbers, plates, licence classes, the checks, eligibility, and
the registry CSV import's validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from device.config import CameraSection
from device.hal.camera_simulated import SimulatedCamera
from device.sim.scene import Scene
from server.casework.checks import PartyFacts, check_insurance, check_licence, check_vehicle, same_name
from server.casework.eligibility import ELIGIBLE, INCOMPLETE, INELIGIBLE, decide
from server.casework.idcard import id_number_error
from server.casework.licence_classes import covers
from server.casework.parties import PartyIn, PartyRole
from server.casework.plates import normalise_plate, plate_error
from server.casework.registry import LicenceRecord, PolicyRecord, VehicleRecord
from server.casework.registry_import import ImportError_, parse, read

DEMO = Path(__file__).parent.parent / "server" / "casework" / "demo"
AT = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 11:00 in Kunming
ID = "11010519491231002X"


def test_id_numbers() -> None:
    assert id_number_error(ID) is None
    assert id_number_error(ID.lower().upper()) is None
    assert "check character" in (id_number_error("110105194912310021") or "")
    assert "check character" in (id_number_error("110105194912310029") or "")  # one digit off
    assert "not a date" in (id_number_error("110105194913310021") or "")
    assert "18 characters" in (id_number_error("11010519491231002") or "")
    assert "18 characters" in (id_number_error("1101051949123100XX") or "")


@pytest.mark.parametrize(
    "plate", ["云A5H821", "云AD12345", "云AFK3456", "云A12345D", "云A1234挂", "京N9876警", "使014578"]
)
def test_valid_plates(plate: str) -> None:
    assert plate_error(plate) is None


@pytest.mark.parametrize(
    ("plate", "why"),
    [
        ("XA12345", "province"),
        ("使01457A", "not a valid"),
        ("云AO1234", "not a valid"),
        ("云A1234", "not a valid"),
        ("云AD1234A", "not a valid"),
        ("云A3DG5E", "not a valid"),  # three letters in the serial: never issued
    ],
)
def test_invalid_plates(plate: str, why: str) -> None:
    assert why in (plate_error(plate) or "")


def test_plates_are_normalised_as_typed() -> None:
    assert normalise_plate("云a·5h 821") == "云A5H821"


def test_licence_classes() -> None:
    assert covers("C1", "K33", automatic=False)
    assert not covers("C2", "K33", automatic=False)
    assert covers("C2", "K33", automatic=True)
    assert covers("A1", "K33", automatic=False)  # a higher class includes the lower ones
    assert not covers("C1", "H11", automatic=False)
    assert covers("B2 D", "M21", automatic=False)


def test_a_party_is_validated_with_clear_reasons() -> None:
    base = {"role": "driver", "name": "王芳", "id_number": ID, "phone": "13888000001"}
    with pytest.raises(ValueError, match="a driver needs licence_no, plate, vehicle_type"):
        PartyIn.model_validate(base)
    with pytest.raises(ValueError, match="check character"):
        PartyIn.model_validate(base | {"id_number": "110105194912310021", "role": "non_motor"})
    with pytest.raises(ValueError, match="not a valid plate"):
        PartyIn.model_validate(base | {"licence_no": ID, "plate": "云A12", "vehicle_type": "K33"})
    ok = PartyIn.model_validate(base | {"licence_no": ID, "plate": "云a5h821", "vehicle_type": "K33"})
    assert ok.plate == "云A5H821"


LICENCE = LicenceRecord(ID, ID, "王芳", "C1", date(2020, 1, 1), date(2030, 1, 1), "valid")
VEHICLE = VehicleRecord(
    "云A5H821", "LSVAM4187C2184521", "K33", False, "王芳", date(2020, 1, 1), date(2027, 1, 1), "normal"
)
POLICY = PolicyRecord("PICC1", "人保", "云A5H821", AT - timedelta(days=100), AT + timedelta(days=265))
PARTY = PartyFacts(ID, ID, "云A5H821", "K33", "PICC1", "王芳")


def test_checks_pass_on_good_records() -> None:
    assert check_licence(PARTY, LICENCE, VEHICLE, AT).result == "pass"
    assert check_vehicle(PARTY, VEHICLE, AT).result == "pass"
    result = check_insurance(PARTY, [POLICY], AT)
    assert result.result == "pass" and result.record is not None
    assert result.record["policy_no"] == "PICC1"


def test_check_failures_say_why() -> None:
    expired = LicenceRecord(ID, ID, "王芳", "C1", date(2014, 1, 1), date(2024, 1, 1), "valid")
    assert "not valid on 2026-11-25" in check_licence(PARTY, expired, VEHICLE, AT).reason
    c2 = LicenceRecord(ID, ID, "王芳", "C2", date(2020, 1, 1), date(2030, 1, 1), "valid")
    assert "does not cover a 小型轿车" in check_licence(PARTY, c2, VEHICLE, AT).reason
    other = LicenceRecord(ID, "530402196505056620", "李建华", "C1", date(2020, 1, 1), date(2030, 1, 1), "valid")
    assert "someone else" in check_licence(PARTY, other, VEHICLE, AT).reason
    assert check_licence(PARTY, None, VEHICLE, AT).result == "fail"
    overdue = VehicleRecord("云A5H821", "X" * 17, "K33", False, "王芳", date(2020, 1, 1), date(2026, 10, 1), "normal")
    assert "inspection expired on 2026-10-01" in check_vehicle(PARTY, overdue, AT).reason
    stolen = VehicleRecord("云A5H821", "X" * 17, "K33", False, "王芳", date(2020, 1, 1), date(2027, 1, 1), "stolen")
    assert check_vehicle(PARTY, stolen, AT).result == "fail"
    lapsed = PolicyRecord("PICC1", "人保", "云A5H821", AT - timedelta(days=400), AT - timedelta(minutes=5))
    result = check_insurance(PARTY, [lapsed], AT)
    assert result.result == "fail" and "expired at the accident time" in result.reason
    assert (
        "no compulsory insurance" in check_insurance(PartyFacts(ID, ID, "云A5H821", "K33", None, "王芳"), [], AT).reason
    )


def test_a_party_using_someone_elses_id_and_licence_fails_by_name() -> None:
    """张三 gives 周桂英's ID number and licence: both are on record as hers, so the name gives it away."""
    hers = LicenceRecord(ID, ID, "周桂英", "C1", date(2020, 1, 1), date(2030, 1, 1), "valid")
    borrowed = check_licence(PartyFacts(ID, ID, "云A5H821", "K33", "PICC1", "张三"), hers, VEHICLE, AT)
    assert borrowed.result == "fail"
    assert borrowed.reason.startswith("姓名与身份证、驾驶证登记的持有人不符")
    assert borrowed.record is not None and borrowed.record["name"] == "周**"  # masked, as every record kept
    # Spaces and the middle dot of a transcribed name are how people write it, not another person.
    theirs = LicenceRecord(ID, ID, "阿卜杜·热合曼", "C1", date(2020, 1, 1), date(2030, 1, 1), "valid")
    written = PartyFacts(ID, ID, "云A5H821", "K33", "PICC1", "阿卜杜 热合曼")
    assert check_licence(written, theirs, VEHICLE, AT).result == "pass"
    assert same_name("王 芳", "王芳") and not same_name("王芳", "王方")


def test_a_policy_counts_only_from_its_start() -> None:
    later = PolicyRecord("PICC1", "人保", "云A5H821", AT + timedelta(hours=1), AT + timedelta(days=365))
    assert "not yet started" in check_insurance(PARTY, [later], AT).reason


def test_missing_input_is_unknown_not_fail() -> None:
    blank = PartyFacts(ID, None, None, None, None, "王芳")
    assert check_licence(blank, None, None, AT).result == "unknown"
    assert check_vehicle(blank, None, AT).result == "unknown"
    assert check_insurance(blank, [], AT).result == "unknown"


FACTS: dict[str, object] = {
    "injury": "none",
    "vehicles_movable": True,
    "suspected_impairment": False,
    "hazardous_goods": False,
    "hit_and_run": False,
    "facts_disputed": False,
    "owner_present": None,
    "place": "五华区翠湖南路",
    "weather": "晴",
}
PASS = {"licence": "pass", "vehicle": "pass", "insurance": "pass"}
D, N, OWN, P = PartyRole.DRIVER, PartyRole.NON_MOTOR, PartyRole.PROPERTY_OWNER, PartyRole.PEDESTRIAN


def test_the_three_qualifying_kinds() -> None:
    assert decide([D, D], FACTS, [PASS, PASS]).verdict == ELIGIBLE
    assert decide([D, N], FACTS | {"injury": "slight"}, [PASS, {}]).kind == "motor_nonmotor"
    single = decide([D, OWN], FACTS | {"owner_present": True}, [PASS, {}])
    assert single.verdict == ELIGIBLE and single.kind == "single"


def test_exclusions_escalate_with_the_reason() -> None:
    changes: list[tuple[dict[str, object], str]] = [
        ({"injury": "serious"}, "serious injury"),
        ({"injury": "death"}, "death"),
        ({"vehicles_movable": False}, "cannot be moved"),
        ({"suspected_impairment": True}, "drink or drug"),
        ({"hazardous_goods": True}, "hazardous goods"),
        ({"hit_and_run": True}, "hit-and-run"),
        ({"facts_disputed": True}, "dispute"),
    ]
    for change, why in changes:
        verdict = decide([D, D], FACTS | change, [PASS, PASS])
        assert verdict.verdict == INELIGIBLE and why in verdict.reason, change
    uninsured = decide([D, D], FACTS, [PASS, PASS | {"insurance": "fail"}])
    assert uninsured.verdict == INELIGIBLE and "乙: no compulsory insurance" in uninsured.reason
    assert "no valid licence" in decide([D, D], FACTS, [PASS | {"licence": "fail"}, PASS]).reason
    assert "not at the scene" in decide([D, OWN], FACTS | {"owner_present": False}, [PASS, {}]).reason
    assert decide([D, P], FACTS, [PASS, {}]).verdict == INELIGIBLE


def test_incomplete_until_everything_is_known() -> None:
    assert decide([D], FACTS, [PASS]).verdict == INCOMPLETE
    assert decide([D, D], None, [PASS, PASS]).verdict == INCOMPLETE
    pending = decide([D, D], FACTS, [PASS, {"licence": "pass", "insurance": None}])
    assert pending.verdict == INCOMPLETE and "乙: insurance not checked" in pending.reason
    unknown = decide([D, D], FACTS, [PASS, PASS | {"licence": "unknown"}])
    assert unknown.verdict == INCOMPLETE and "unknown" in unknown.reason


def test_the_demo_registry_is_valid() -> None:
    counts = {}
    for name in ("licences", "vehicles", "policies"):
        table, rows = read(DEMO / f"{name}.csv")
        counts[table.__tablename__] = len(rows)
    assert counts == {"registry_licences": 42, "registry_vehicles": 42, "registry_policies": 41}


def test_the_cars_the_demo_camera_films_pass_every_check() -> None:
    """The obvious path of the demo: the dispatcher takes the two crashed cars' plates from the
    simulated scene (the demo's camera, seed 1) and their owners as the drivers; nothing fails."""
    licences = [LicenceRecord(**row) for row in read(DEMO / "licences.csv")[1]]
    vehicles = {row["plate"]: VehicleRecord(**row) for row in read(DEMO / "vehicles.csv")[1]}
    policies = [PolicyRecord(**row) for row in read(DEMO / "policies.csv")[1]]
    at = datetime(2026, 12, 7, 10, 5, tzinfo=UTC)
    filmed = [plate for plate, _, _ in Scene(640, 480, seed=SimulatedCamera(CameraSection()).seed).plates]
    assert sorted(filmed) == ["云AFB8367", "云E90059"]
    for plate in filmed:
        vehicle = vehicles[plate]
        (licence,) = [r for r in licences if r.name == vehicle.owner_name]
        party = PartyFacts(licence.id_number, licence.licence_no, plate, vehicle.vehicle_type, None, licence.name)
        assert check_licence(party, licence, vehicle, at).result == "pass", plate
        assert check_vehicle(party, vehicle, at).result == "pass", plate
        assert check_insurance(party, [p for p in policies if p.plate == plate], at).result == "pass", plate


def test_a_bad_registry_line_is_named(tmp_path: Path) -> None:
    text = (DEMO / "licences.csv").read_text(encoding="utf-8").splitlines()
    fields = text[3].split(",")
    fields[1] = fields[1][:-1] + ("0" if fields[1][-1] != "0" else "1")  # a mistyped ID number
    text[3] = ",".join(fields)
    with pytest.raises(ImportError_, match=r"line 4: id_number: .*check character"):
        parse(tmp_path / "x.csv", "\n".join(text))
    with pytest.raises(ImportError_, match="cannot tell which table"):
        parse(tmp_path / "x.csv", "a,b\n1,2\n")
    with pytest.raises(ImportError_, match="missing"):
        parse(tmp_path / "x.csv", "licence_no,name\n1,2\n")
    duplicated = "\n".join([*text[:3], text[2]])
    with pytest.raises(ImportError_, match="appears twice"):
        parse(tmp_path / "x.csv", duplicated)


def test_a_named_policy_must_exist() -> None:
    other = PolicyRecord("PICC2", "人保", "云A5H821", AT - timedelta(days=100), AT + timedelta(days=265))
    assert "no policy PICC1" in check_insurance(PARTY, [other], AT).reason
