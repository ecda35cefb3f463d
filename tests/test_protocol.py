"""The wire contract: report ids, topic names, and what ``decode`` accepts and refuses (and why)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from protocol import ProtocolError, ids
from protocol.ids import REPORT_ID_PATTERN, is_report_id, new_report_id, report_id_time
from protocol.messages import (
    MAX_PAYLOAD_BYTES,
    SCHEMAS,
    Ack,
    CallSignal,
    Command,
    FixQuality,
    Health,
    Heartbeat,
    PartState,
    Position,
    Presence,
    Report,
    SelfTest,
    Site,
    TrackPoint,
    Trigger,
    Unit,
    Vehicle,
    decode,
    encode,
)
from protocol.plates import display_text, plate_form
from protocol.topics import (
    CASE_EVENTS,
    Channel,
    device_filter,
    device_topic,
    is_device_id,
    parse_device_topic,
    shared,
)

KIOSK = "kiosk-kmz-017"
CAR = "car-0001"
AT = datetime(2025, 5, 14, 2, 31, 7, 412000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_id_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids made with a chosen time here must not leak that time into other tests' ids."""
    monkeypatch.setattr(ids, "_last", (0, 0))


# --- report ids ---------------------------------------------------------------------------------


def test_report_ids_sort_by_time() -> None:
    times = [1_700_000_000_000, 1_700_000_000_001, 1_700_000_060_000, 1_800_000_000_000]
    made = [new_report_id(ms) for ms in times]
    assert made == sorted(made)
    assert [report_id_time(i) for i in made] == [datetime.fromtimestamp(ms / 1000, UTC) for ms in times]


def test_report_ids_increase_within_one_millisecond() -> None:
    made = [new_report_id(1_700_000_000_000) for _ in range(100)]
    assert made == sorted(made)
    assert len(set(made)) == 100
    assert {i[:10] for i in made} == {made[0][:10]}


def test_a_clock_step_back_does_not_make_a_smaller_id() -> None:
    later = new_report_id(1_700_000_000_500)
    assert new_report_id(1_700_000_000_000) > later


def test_report_id_time_round_trip_and_the_ulid_spec_example() -> None:
    # github.com/ulid/spec: 01ARYZ6S41TSV4RRFFQ69G5FAV carries the time 1469918176385.
    assert new_report_id(1_469_918_176_385)[:10] == "01ARYZ6S41"
    assert report_id_time("01ARYZ6S41TSV4RRFFQ69G5FAV") == datetime.fromtimestamp(1_469_918_176.385, UTC)
    now = datetime(2025, 5, 14, 2, 31, 7, 412000, tzinfo=UTC)
    assert report_id_time(new_report_id(int(now.timestamp() * 1000))) == now


def test_report_ids_match_their_pattern() -> None:
    made = new_report_id()
    assert len(made) == 26
    assert re.fullmatch(REPORT_ID_PATTERN, made)
    assert is_report_id(made)
    for bad in (made.lower(), made[:25], made + "0", "8" + made[1:], made[:25] + "I", made[:25] + "U", ""):
        assert not is_report_id(bad), bad


def test_ten_thousand_ids_are_unique_and_ordered() -> None:
    made = [new_report_id() for _ in range(10_000)]
    assert len(set(made)) == 10_000
    assert made == sorted(made)


# --- topics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", list(Channel))
def test_device_topic_round_trip(channel: Channel) -> None:
    topic = device_topic(CAR, channel)
    assert topic == f"kc/v1/dev/{CAR}/{channel.value}"
    assert parse_device_topic(topic) == (CAR, channel)


def test_filters_for_the_server() -> None:
    assert device_filter(Channel.REPORT) == "kc/v1/dev/+/report"
    assert shared(device_filter(Channel.HEARTBEAT)) == "$share/kuaichu-server/kc/v1/dev/+/heartbeat"
    assert CASE_EVENTS == "kc/v1/srv/case-events"


@pytest.mark.parametrize("good", ["car-0001", "abc", "a1b", "kiosk-kmz-017", "x" * 32, "0-0"])
def test_good_device_ids(good: str) -> None:
    assert is_device_id(good)
    assert parse_device_topic(device_topic(good, Channel.ACK))[0] == good


@pytest.mark.parametrize(
    "bad",
    ["car+1", "car#1", "+", "#", "car/0001", "Car-0001", "CAR", "x" * 33, "ab", "-car", "car-", "car_1", "car 1", ""],
)
def test_bad_device_ids_are_refused(bad: str) -> None:
    assert not is_device_id(bad)
    with pytest.raises(ProtocolError) as caught:
        device_topic(bad, Channel.REPORT)
    assert caught.value.reason == "bad_device_id"


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("kc/v2/dev/car-0001/report", "bad_topic"),
        ("kc/v1/srv/case-events", "bad_topic"),
        ("kc/v1/dev/car-0001", "bad_topic"),
        ("kc/v1/dev/car-0001/report/extra", "bad_topic"),
        ("/kc/v1/dev/car-0001/report", "bad_topic"),
        ("kc/v1/dev/car-0001/video", "bad_topic"),
        ("kc/v1/dev/car-0001/REPORT", "bad_topic"),
        ("kc/v1/dev/Car-0001/report", "bad_device_id"),
        ("kc/v1/dev/+/report", "bad_device_id"),
        ("kc/v1/dev/#/report", "bad_device_id"),
        (f"kc/v1/dev/{'x' * 33}/report", "bad_device_id"),
    ],
)
def test_foreign_topics_are_refused(topic: str, reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_device_topic(topic)
    assert caught.value.reason == reason


# --- messages -----------------------------------------------------------------------------------


def _health() -> Health:
    return Health(
        camera=PartState.OK, gnss=PartState.OK, audio=PartState.OK, storage_free_mb=11240, firmware="0.1.0", uptime_s=9
    )


def _position(lon: float = 102.7095, lat: float = 25.044) -> Position:
    return Position(
        time=AT,
        lat=lat,
        lon=lon,
        alt_m=1891.2,
        mode=3,
        quality=FixQuality.GPS,
        sats=11,
        hdop=0.9,
        speed_mps=0.0,
        heading_deg=87.5,
        trusted=True,
    )


def _in_car(points: int = 5) -> Report:
    return Report(
        report_id=new_report_id(),
        device_id=CAR,
        device_kind="in-car",
        trigger=Trigger.BUTTON,
        triggered_at=AT,
        position=_position(),
        track=[
            TrackPoint(time=AT - timedelta(seconds=s), lat=25.044, lon=102.7095 - s * 1e-5, speed_mps=1.0)
            for s in range(points, 0, -1)
        ],
        vehicle=Vehicle(plate="云A5H821", vin="LSVAM4187C2184521"),
        health=_health(),
    )


def _kiosk(position: Position | None = None) -> Report:
    return Report(
        report_id=new_report_id(),
        device_id=KIOSK,
        device_kind="kiosk",
        trigger=Trigger.KIOSK,
        triggered_at=AT,
        position=position,
        site=Site(name="昆明站报警亭", lat=25.0159, lon=102.7217),
        health=_health(),
    )


def _wire(report: Report) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(encode(report))
    return data


def _refusal(payload: bytes | dict[str, Any], model: type[Report] | type[Ack] = Report) -> ProtocolError:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    with pytest.raises(ProtocolError) as caught:
        decode(model, raw)
    return caught.value


def test_refusal_of_an_oversized_payload_is_made_before_parsing() -> None:
    good = encode(_in_car())
    padded = good + b" " * (MAX_PAYLOAD_BYTES - len(good))
    assert len(padded) == MAX_PAYLOAD_BYTES
    assert decode(Report, padded) == decode(Report, good)  # exactly at the bound: accepted
    error = _refusal(padded + b" ")
    assert error.reason == "too_large"
    assert error.raw == (padded + b" ")[:512]


@pytest.mark.parametrize("payload", [b"{not json", b"", b"\xff\xfe{}", b'{"version": 1'])
def test_refusal_of_what_is_not_json(payload: bytes) -> None:
    assert _refusal(payload).reason == "not_json"


def test_refusal_of_a_json_array() -> None:
    error = _refusal(json.dumps([_wire(_in_car())]).encode())
    assert (error.reason, error.detail) == ("schema", "payload is not a JSON object")


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_refusal_of_another_version(version: object) -> None:
    data = _wire(_in_car()) | {"version": version}
    assert _refusal(data).reason == "unsupported_version"


def test_refusal_of_a_missing_version() -> None:
    data = _wire(_in_car())
    del data["version"]
    assert _refusal(data).reason == "unsupported_version"


def _edited(path: str, value: object) -> dict[str, Any]:
    """The good in-car report with one field set (``...`` deletes it); ``path`` is dotted."""
    data = _wire(_in_car())
    *parents, last = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data


SCHEMA_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("missing field", _edited("health", ...), "health: Field required"),
    ("missing nested field", _edited("position.trusted", ...), "position.trusted: Field required"),
    ("unknown field", _edited("speed_kmh", 12), "speed_kmh: Extra inputs are not permitted"),
    ("unknown nested field", _edited("vehicle.colour", "blue"), "vehicle.colour: Extra inputs are not permitted"),
    ("bad plate", _edited("vehicle.plate", "A5H821"), "vehicle.plate: Value error, not a plate any vehicle can"),
    ("lowercase plate", _edited("vehicle.plate", "云a5h821"), "vehicle.plate: Value error, not a plate any vehicle"),
    ("plate with its dot", _edited("vehicle.plate", "使014·578"), "vehicle.plate: Value error, not a plate any"),
    ("bad VIN", _edited("vehicle.vin", "LSVAM4187C218452I"), "vehicle.vin: String should match pattern"),
    ("latitude out of range", _edited("position.lat", 91.0), "position.lat: Input should be less than or equal"),
    ("GCJ-02 datum", _edited("position.datum", "GCJ-02"), "position.datum: Input should be 'WGS-84'"),
    ("naive time", _edited("triggered_at", "2025-05-14T10:31:07"), "triggered_at: Input should have timezone info"),
    ("naive track time", _edited("track.0.time", "2025-05-14T10:31:03"), "track.0.time: Input should have timezone"),
    ("bad report id", _edited("report_id", "01JV6A38WMQD5YD17TBD5D5KGI"), "report_id: String should match pattern"),
    ("bad device kind", _edited("device_kind", "truck"), "device_kind: Input should be 'in-car' or 'kiosk'"),
    ("in-car without vehicle", _edited("vehicle", ...), "an in-car report must carry its vehicle"),
    ("track over 60 points", _edited("track", _wire(_in_car(60))["track"] * 2), "track: List should have at most 60"),
]


@pytest.mark.parametrize(("data", "detail"), [c[1:] for c in SCHEMA_REFUSALS], ids=[c[0] for c in SCHEMA_REFUSALS])
def test_schema_refusals_say_where(data: dict[str, Any], detail: str) -> None:
    error = _refusal(data)
    assert error.reason == "schema"
    assert detail in error.detail, error.detail


PLATES = [
    "云A5H821", "云AD12345", "云A12345D", "云A1234学", "云A1234警", "粤Z1234港", "云A1234领", "使014578",
    "云A5H8Z1", "云AB1CD2", "云A1234使", "使01457", "使01457A", "领014578", "云I5H821", "云A5H821学", "",
]  # fmt: skip


@pytest.mark.parametrize("text", PLATES)
def test_a_vehicle_plate_is_whatever_the_plate_grammar_allows(text: str) -> None:
    if plate_form(text) is None:
        with pytest.raises(ValidationError, match="not a plate any vehicle can carry"):
            Vehicle(plate=text)
    else:
        assert Vehicle(plate=text).plate == text


def test_a_report_from_an_embassy_car_goes_over_the_wire() -> None:
    report = _in_car().model_copy(update={"vehicle": Vehicle(plate="使014578")})
    back = decode(Report, encode(report))
    assert back == report
    assert back.vehicle is not None and display_text(back.vehicle.plate) == "使014·578"


def test_refusal_of_a_nan_latitude() -> None:
    # json.loads reads NaN, so the range check of the model is what must refuse it.
    payload = encode(_in_car()).replace(b'"lat":25.044,', b'"lat":NaN,', 1)
    assert b"NaN" in payload
    error = _refusal(payload)
    assert error.reason == "schema"
    assert "position.lat" in error.detail


def test_refusal_of_a_kiosk_without_site() -> None:
    data = _wire(_kiosk())
    del data["site"]
    error = _refusal(data)
    assert error.reason == "schema"
    assert "a kiosk report must carry its site" in error.detail


def test_a_track_of_60_points_is_accepted() -> None:
    assert len(decode(Report, encode(_in_car(60))).track) == 60


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ({"version": 1, "report_id": "01JV6A38WMQD5YD17TBD5D5KGS", "status": "accepted"}, "has a case number"),
        ({"version": 1, "status": "accepted", "test": True}, "has its report id"),
        ({"version": 1, "report_id": "01JV6A38WMQD5YD17TBD5D5KGS", "status": "refused"}, "a refusal has a reason"),
        ({"version": 1, "status": "lost", "reason": "x"}, "status: Input should be 'accepted' or 'refused'"),
    ],
)
def test_ack_rules(data: dict[str, Any], detail: str) -> None:
    error = _refusal(data, Ack)
    assert error.reason == "schema"
    assert detail in error.detail, error.detail


# --- round trips and schemas --------------------------------------------------------------------


ROUND_TRIPS = [
    _in_car(),
    _in_car(0),
    _kiosk(),
    _kiosk(_position(102.72149, 25.01608)),
    Ack(
        report_id=new_report_id(),
        status="accepted",
        duplicate=True,
        case_no="530102202505140007",
        unit=Unit(adcode="530102", name="五华区交警大队"),
        flag="位置不可靠 (GNSS fix not trusted)",
    ),
    Ack(status="refused", reason="not_json"),
    Ack(report_id=new_report_id(), status="accepted", test=True),
    Presence(state="offline"),
    Presence(state="online", at=AT, firmware="0.1.0"),
    Heartbeat(at=AT, device_kind="kiosk", app_state="idle", outbox_pending=0, health=_health()),
    Heartbeat(
        at=AT, device_kind="in-car", app_state="reporting", outbox_pending=2, position=_position(), health=_health()
    ),
]


@pytest.mark.parametrize("message", ROUND_TRIPS, ids=lambda m: type(m).__name__)
def test_encode_decode_round_trip(message: Report | Ack | Presence | Heartbeat) -> None:
    payload = encode(message)
    assert decode(type(message), payload) == message
    assert b"null" not in payload  # what is not known is left out


def test_the_will_is_minimal() -> None:
    assert json.loads(encode(Presence(state="offline"))) == {"version": 1, "state": "offline"}


def test_json_schema_export_has_every_model() -> None:
    assert set(SCHEMAS) == {
        "report",
        "ack",
        "state",
        "heartbeat",
        "selftest",
        "call",
        "scene",
        "cmd",
        "upload",
        "plates",
    }
    for name, model in SCHEMAS.items():
        schema = json.loads(json.dumps(model.model_json_schema(), ensure_ascii=False))
        assert schema["type"] == "object", name
        assert schema["additionalProperties"] is False, name
        assert "version" in schema["properties"], name
    report = SCHEMAS["report"].model_json_schema()
    assert {"Position", "TrackPoint", "Vehicle", "Site", "Health"} <= set(report["$defs"])
    assert report["properties"]["track"]["maxItems"] == 60


def test_cli_writes_the_schemas(tmp_path: Path) -> None:
    kuaichu = Path(sys.executable).with_name("kuaichu")
    out = tmp_path / "schemas"
    done = subprocess.run(
        [str(kuaichu), "protocol", "schema", "--out", str(out)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{name}.schema.json" for name in SCHEMAS)
    for name, model in SCHEMAS.items():
        assert json.loads((out / f"{name}.schema.json").read_text(encoding="utf-8")) == model.model_json_schema()


def _selftest(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": 1,
        "run_id": "01JV2M8QK4ZP7D3W5B6N9T0SXA",
        "device_kind": "kiosk",
        "firmware": "0.1.0",
        "started_at": "2025-05-14T01:10:02Z",
        "finished_at": "2025-05-14T01:10:09Z",
        "passed": True,
        "checks": [
            {"name": "camera", "status": "pass", "detail": "frame", "duration_ms": 20},
            {"name": "hazard", "status": "skip", "detail": "a kiosk has no hazard line", "duration_ms": 0},
        ],
    }
    data.update(overrides)
    return data


def test_a_selftest_passes_with_skipped_checks_but_not_with_a_failed_one() -> None:
    assert decode(SelfTest, json.dumps(_selftest()).encode()).passed
    failed = _selftest()
    failed["checks"][0]["status"] = "fail"
    with pytest.raises(ProtocolError, match="passed must be true exactly when no check failed"):
        decode(SelfTest, json.dumps(failed).encode())
    failed["passed"] = False
    assert not decode(SelfTest, json.dumps(failed).encode()).passed


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"checks": []}, "checks"),
        ({"finished_at": "2025-05-14T01:09:00Z"}, "finished_at is before started_at"),
        ({"checks": [{"name": "Camera!", "status": "pass", "detail": "", "duration_ms": 1}]}, "checks.0.name"),
        ({"checks": [{"name": "camera", "status": "maybe", "detail": "", "duration_ms": 1}]}, "checks.0.status"),
    ],
)
def test_a_malformed_selftest_is_refused(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(SelfTest, json.dumps(_selftest(**overrides)).encode())
    assert reason in caught.value.detail


CALL = {"version": 1, "call_id": "01JV2MC3N8Q4R7T0W2Y5A8D1FG", "report_id": "01JV2MBZX6HF1RM9XY3K7T2Q8C"}


@pytest.mark.parametrize(
    ("model", "data", "reason"),
    [
        (CallSignal, {**CALL, "type": "offer", "case_no": "1"}, "an offer carries its sdp"),
        (CallSignal, {**CALL, "type": "hangup", "case_no": "1"}, "a hangup carries its reason"),
        (CallSignal, {**CALL, "type": "offer", "case_no": "1", "sdp": "v=0" + "a" * 16400}, "sdp"),
        (CallSignal, {**CALL, "type": "ring", "case_no": "1", "sdp": "v=0\r\n" * 3}, "type"),
        (Command, {"version": 1, "type": "call.answer", "call_id": CALL["call_id"]}, "an answer carries its sdp"),
        (Command, {"version": 1, "type": "call.end", "call_id": CALL["call_id"]}, "an end carries its reason"),
        (Command, {"version": 1, "type": "call.end", "call_id": "../../etc", "reason": "x"}, "call_id"),
    ],
)
def test_call_signalling_is_refused_when_incomplete(model: type[Any], data: dict[str, Any], reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(model, json.dumps(data).encode())
    assert reason in caught.value.detail
