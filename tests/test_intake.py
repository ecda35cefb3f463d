"""Reports over a real broker into a real server: cases, routing, duplicates and refusals."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from protocol.messages import MAX_PAYLOAD_BYTES, encode
from protocol.topics import CASE_EVENTS
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Case
from server.users import Role
from tests.conftest import PASSWORD, RunningServer, add_user
from tests.pki import current as fleet_pki
from tests.reports import ANNING, GUANDU, WUHUA, in_car_report, kiosk_report
from tests.services import Mosquitto
from tests.wire import Console, mqtt_client, publish_report, raw_device


async def count_cases(server: RunningServer) -> int:
    engine = make_engine(server.cfg.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(Case)) or 0)
    finally:
        await engine.dispose()


async def test_report_opens_a_case_in_the_right_district_and_reaches_its_dispatcher(
    server: RunningServer, broker: Mosquitto
) -> None:
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    console = Console(server.url)
    assert (await console.login("wuhua", PASSWORD)).status_code == 200
    hello = await console.connect_live()
    assert hello["operator"]["units"] == ["530102"]

    report = in_car_report("car-0001", WUHUA)
    async with raw_device(broker.port, "car-0001") as (client, acks):
        await publish_report(client, "car-0001", encode(report))
        ack = await asyncio.wait_for(acks.get(), 10)

    assert ack.status == "accepted" and not ack.duplicate
    assert ack.report_id == report.report_id
    assert ack.unit is not None and ack.unit.adcode == "530102" and ack.unit.name == "五华区交警大队"
    local_day = report.triggered_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    assert ack.case_no == f"530102{local_day}0001"

    event = await console.next_event()
    assert event["type"] == "case.new"
    assert event["case"]["case_no"] == ack.case_no
    assert event["case"]["vehicle"]["plate"] == "云A5H821"
    assert event["case"]["position"]["lat"] == pytest.approx(WUHUA[1])
    listed = (await console.http.get("/api/cases")).json()
    assert [c["case_no"] for c in listed] == [ack.case_no]
    await console.close()


async def test_a_retried_report_returns_the_same_case(server: RunningServer, broker: Mosquitto) -> None:
    report = in_car_report("car-0002", WUHUA)
    async with raw_device(broker.port, "car-0002") as (client, acks):
        await publish_report(client, "car-0002", encode(report))
        first = await asyncio.wait_for(acks.get(), 10)
        for _ in range(3):
            await publish_report(client, "car-0002", encode(report))
        repeats = [await asyncio.wait_for(acks.get(), 10) for _ in range(3)]
    assert all(r.case_no == first.case_no and r.duplicate for r in repeats)
    assert not first.duplicate
    assert await count_cases(server) == 1


async def test_simultaneous_reports_each_get_their_own_number(server: RunningServer, broker: Mosquitto) -> None:
    reports = [in_car_report("car-0003", WUHUA) for _ in range(20)] + [kiosk_report("kiosk-0003", GUANDU)]
    async with (
        raw_device(broker.port, "car-0003") as (car, car_acks),
        raw_device(broker.port, "kiosk-0003") as (kiosk, kiosk_acks),
    ):
        await asyncio.gather(
            *(publish_report(car, "car-0003", encode(r)) for r in reports[:-1]),
            publish_report(kiosk, "kiosk-0003", encode(reports[-1])),
        )
        car_numbers = {(await asyncio.wait_for(car_acks.get(), 10)).case_no for _ in range(20)}
        kiosk_ack = await asyncio.wait_for(kiosk_acks.get(), 10)
    assert len(car_numbers) == 20 and all(n and n.startswith("530102") for n in car_numbers)
    assert kiosk_ack.unit is not None and kiosk_ack.unit.adcode == "530111"
    assert await count_cases(server) == 21


async def test_unplaceable_reports_are_flagged_to_the_city_not_dropped(
    server: RunningServer, broker: Mosquitto
) -> None:
    cases = {
        "outside": in_car_report("car-0004", ANNING),
        "no-fix": in_car_report("car-0004", None),
        "untrusted": in_car_report("car-0004", WUHUA, trusted=False),
    }
    answers = {}
    async with raw_device(broker.port, "car-0004") as (client, acks):
        for name, report in cases.items():
            await publish_report(client, "car-0004", encode(report))
            answers[name] = await asyncio.wait_for(acks.get(), 10)
    assert answers["outside"].unit and answers["outside"].unit.adcode == "530100"
    assert answers["outside"].flag and "outside the pilot districts" in answers["outside"].flag
    assert answers["no-fix"].unit and answers["no-fix"].unit.adcode == "530100"
    assert answers["no-fix"].flag and "no position" in answers["no-fix"].flag
    assert answers["untrusted"].unit and answers["untrusted"].unit.adcode == "530102"
    assert answers["untrusted"].flag and "not trusted" in answers["untrusted"].flag
    assert await count_cases(server) == 3


async def test_test_reports_are_acknowledged_without_a_case(server: RunningServer, broker: Mosquitto) -> None:
    report = in_car_report("car-0005", WUHUA, trigger=__import__("protocol.messages").messages.Trigger.TEST)
    async with raw_device(broker.port, "car-0005") as (client, acks):
        await publish_report(client, "car-0005", encode(report))
        ack = await asyncio.wait_for(acks.get(), 10)
    assert ack.status == "accepted" and ack.test and ack.case_no is None
    assert await count_cases(server) == 0


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("oversized", "too_large"),
        ("not-json", "not_json"),
        ("wrong-version", "unsupported_version"),
        ("bad-schema", "schema"),
        ("other-device", "device_mismatch"),
    ],
)
async def test_hostile_payloads_are_refused_with_a_reason_and_store_nothing(
    server: RunningServer, broker: Mosquitto, caplog: pytest.LogCaptureFixture, name: str, reason: str
) -> None:
    report = in_car_report("car-0006", WUHUA)
    good = json.loads(encode(report))
    payloads = {
        "oversized": json.dumps({**good, "pad": "x" * MAX_PAYLOAD_BYTES}).encode(),
        "not-json": b"\xff\xfe{{{ definitely not json",
        "wrong-version": json.dumps({**good, "version": 2}).encode(),
        "bad-schema": json.dumps({**good, "position": {**good["position"], "lat": 123.0}}).encode(),
        "other-device": encode(in_car_report("car-9999", WUHUA, report_id=report.report_id)),
    }
    caplog.set_level(logging.INFO)
    async with raw_device(broker.port, "car-0006") as (client, acks):
        await publish_report(client, "car-0006", payloads[name])
        ack = await asyncio.wait_for(acks.get(), 10)
        assert ack.status == "refused" and ack.reason == reason
        if name not in ("not-json",):
            assert ack.report_id == report.report_id
        # The device can still report properly afterwards.
        await publish_report(client, "car-0006", encode(report))
        after = await asyncio.wait_for(acks.get(), 10)
    assert after.status == "accepted" and not after.duplicate
    assert await count_cases(server) == 1
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any(reason in line and "car-0006" in line for line in refusals)
    assert not any("云A5H821" in r.getMessage() or "LSVAM4187C2184521" in r.getMessage() for r in caplog.records)


async def test_messages_on_foreign_topics_are_ignored(server: RunningServer, broker: Mosquitto) -> None:
    foreign = [("kc/v1/dev/CAR BAD/report", encode(in_car_report("car-0007"))), ("kc/v1/dev/car-0007/unknown", b"{}")]
    async with raw_device(broker.port, "car-0007") as (client, acks):
        # The broker's ACL drops these from a device: it may write only its own known channels.
        for topic, payload in foreign:
            await client.publish(topic, payload, qos=1)
        # The server must still ignore them should they arrive, so a client the ACL lets write the
        # whole tree (the server's certificate) publishes them too, before the valid report.
        async with mqtt_client(
            fleet_pki().server_port(broker.port), "kuaichu-test-foreign", fleet_pki().server_tls()
        ) as whole_tree:
            for topic, payload in foreign:
                await whole_tree.publish(topic, payload, qos=1)
        await publish_report(client, "car-0007", encode(in_car_report("car-0007")))
        ack = await asyncio.wait_for(acks.get(), 10)
    assert ack.status == "accepted"
    assert await count_cases(server) == 1


async def test_other_workers_hear_of_every_case_one_line_each(server: RunningServer, broker: Mosquitto) -> None:
    reports = [in_car_report("car-0008", WUHUA) for _ in range(5)]
    # In another worker's shoes: the server's certificate, a client id of its own.
    async with mqtt_client(
        fleet_pki().server_port(broker.port), "kuaichu-server-peer", fleet_pki().server_tls()
    ) as peer:
        await peer.subscribe(CASE_EVENTS, qos=1)
        async with raw_device(broker.port, "car-0008") as (client, acks):
            await asyncio.gather(*(publish_report(client, "car-0008", encode(r)) for r in reports))
            answers = [await asyncio.wait_for(acks.get(), 10) for _ in reports]
        events: list[dict[str, Any]] = []
        while len(events) < len(reports):
            message = await asyncio.wait_for(anext(peer.messages), 10)
            assert isinstance(message.payload, bytes)
            events += [json.loads(line) for line in message.payload.split(b"\n")]
    assert all(event["type"] == "case.new" for event in events)
    assert sorted(event["case"]["case_no"] for event in events) == sorted(a.case_no or "" for a in answers)
    assert {event["case"]["device_id"] for event in events} == {"car-0008"}


async def test_cases_another_worker_opened_reach_this_workers_consoles(
    server: RunningServer, broker: Mosquitto
) -> None:
    await add_user(server.cfg, "wuhua-peer", Role.DISPATCHER, ["530102"])
    console = Console(server.url)
    assert (await console.login("wuhua-peer", PASSWORD)).status_code == 200
    await console.connect_live()
    events = [
        {"type": "case.new", "case": {"case_no": f"{adcode}202611250{n}", "unit": {"adcode": adcode, "name": "x"}}}
        for n, adcode in enumerate(["530102", "530111", "530102"], start=1)
    ]
    async with mqtt_client(
        fleet_pki().server_port(broker.port), "kuaichu-server-peer", fleet_pki().server_tls()
    ) as peer:
        lines = "\n".join(json.dumps(event, ensure_ascii=False) for event in events)
        await peer.publish(CASE_EVENTS, lines.encode(), qos=1)
    # In order, and only the cases of the units this dispatcher serves.
    seen = [(await console.next_event())["case"]["case_no"] for _ in range(2)]
    assert seen == ["5301022026112501", "5301022026112503"]
    await console.close()
