"""Plates read on the unit, end to end over the real broker and server: sent after a report, read
again on a dispatcher's request, confirmed or corrected, taken into a party; a unit without its
models still reports and says why it reads nothing; what a device must not send is refused."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from device.hal.camera_simulated import SimulatedCamera, still_size
from device.sim.scene import Scene
from protocol.ids import new_report_id
from protocol.messages import PlateReadOut, PlateReads, encode
from protocol.plates import plate_form
from protocol.topics import Channel, device_topic
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Case, CaseEvent, User
from server.users import Role
from tests.cases import detail, logged_in, readings
from tests.casework_data import DRIVER_A, DRIVER_B, FACTS, driver
from tests.commands import server_command
from tests.conftest import RunningServer, add_user, make_server_config, start_server
from tests.devices import PLATE_HEIGHT, PLATE_WIDTH, plate_car, running_device
from tests.reports import WUHUA, in_car_report
from tests.services import Mosquitto
from tests.stored import cases_in, plate_rows
from tests.wire import publish_report, raw_device

WIDTH, HEIGHT = PLATE_WIDTH, PLATE_HEIGHT


@pytest.fixture
async def server(broker: Mosquitto, tmp_path: Path) -> AsyncIterator[RunningServer]:
    cfg = make_server_config(tmp_path / "server", broker.port)
    running = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(cfg, "guandu", Role.DISPATCHER, ["530111"])
    await add_user(cfg, "officer", Role.OFFICER, ["530102"])
    await add_user(cfg, "admin", Role.ADMIN, [])
    yield running
    await running.stop()


async def case_of(server: RunningServer, case_no: str) -> Case:
    [case] = [c for c in await cases_in(server.cfg.database_url) if c.case_no == case_no]
    return case


def scene_plates(seed: int) -> set[str]:
    w, h = still_size(WIDTH, HEIGHT)
    return {p.text for p in Scene(w, h, seed=seed).render(0, counter=False).plates}


def near(text: str, truth: set[str]) -> bool:
    """One of the scene's plates, but for at most two characters (the reader is not perfect yet;
    bench/ocr.py measures how far): a read of something that is no plate would not be."""
    return any(len(t) == len(text) and sum(a != b for a, b in zip(t, text, strict=True)) <= 2 for t in truth)


def check_crop(read: dict[str, Any]) -> None:
    assert read["crop"].startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(read["crop"].split(",", 1)[1]))) as crop:
        assert crop.format == "JPEG" and crop.size == (128, 32)


async def test_the_report_goes_out_and_its_plates_follow_then_the_dispatcher_reads_again_and_corrects(
    broker: Mosquitto, case_server: RunningServer, tmp_path: Path
) -> None:
    server = case_server  # on SQLite and PostgreSQL
    car = plate_car(tmp_path / "car", broker, "car-plates-01")
    wuhua = await logged_in(server, "wuhua")
    guandu = await logged_in(server, "guandu")
    officer = await logged_in(server, "officer")
    try:
        async with running_device(car) as device:
            await device.wait_fix()
            await device.press()
            case = await case_of(server, await device.case_number())
            camera = device.hw.camera
            assert isinstance(camera, SimulatedCamera)
            truth = scene_plates(camera.seed)

            # The reads taken at the press follow the report, each with its straightened crop.
            [at_report] = await readings(wuhua, case.id, "report")
            assert at_report["error"] is None and at_report["captured_at"] is not None
            assert at_report["plates"], "no plate read in the simulated scene"
            for read in at_report["plates"]:
                assert plate_form(read["text"]) is not None and near(read["text"], truth), (read["text"], truth)
                check_crop(read)
            confidences = [r["confidence"] for r in at_report["plates"]]
            assert confidences == sorted(confidences, reverse=True)

            # The dispatcher asks again: a full-resolution still read now, the answer in the reply.
            response = await wuhua.http.post(f"/api/cases/{case.id}/plates/read", timeout=30)
            assert response.status_code == 200, response.text
            asked = response.json()
            assert asked["source"] == "request" and asked["error"] is None and asked["requested_at"]
            assert asked["plates"] and all(near(r["text"], truth) for r in asked["plates"])
            listed = (await wuhua.http.get(f"/api/cases/{case.id}/plates")).json()["readings"]
            assert [r["reading_id"] for r in listed] == [asked["reading_id"], at_report["reading_id"]]

            # Others may not: another district's dispatcher does not see the case, an officer may look only.
            assert (await guandu.http.get(f"/api/cases/{case.id}/plates")).status_code == 404
            assert (await guandu.http.post(f"/api/cases/{case.id}/plates/read")).status_code == 404
            assert (await officer.http.get(f"/api/cases/{case.id}/plates")).status_code == 200
            assert (await officer.http.post(f"/api/cases/{case.id}/plates/read")).status_code == 403

        # The dispatcher confirms one read and corrects another; both are kept with the read and its crop.
        first = asked["plates"][0]
        confirmed = await wuhua.http.put(
            f"/api/cases/{case.id}/plates/reads/{first['id']}", json={"text": first["text"]}
        )
        assert confirmed.status_code == 200 and confirmed.json()["confirmed_text"] == first["text"]
        assert confirmed.json()["corrected"] is False
        other = at_report["plates"][0]
        bad = await wuhua.http.put(f"/api/cases/{case.id}/plates/reads/{other['id']}", json={"text": "云A58"})
        assert bad.status_code == 422 and "not a valid plate" in bad.json()["detail"]
        # An embassy's car leads with 使 instead of a province; typed as written, with its dot.
        embassy = await wuhua.http.put(f"/api/cases/{case.id}/plates/reads/{other['id']}", json={"text": "使014·578"})
        assert embassy.status_code == 200 and embassy.json()["confirmed_text"] == "使014578"
        corrected = await wuhua.http.put(
            f"/api/cases/{case.id}/plates/reads/{other['id']}", json={"text": "云 a5·h821"}
        )
        assert corrected.status_code == 200 and corrected.json()["confirmed_text"] == "云A5H821"
        assert corrected.json()["corrected"] is (other["text"] != "云A5H821")
        assert (
            await guandu.http.put(f"/api/cases/{case.id}/plates/reads/{other['id']}", json={"text": "云A5H821"})
        ).status_code == 404

        # A party's plate taken from a read: the party keeps the read, the read what it was confirmed as.
        party = await wuhua.http.post(
            f"/api/cases/{case.id}/parties",
            json={
                "role": "driver",
                "name": DRIVER_B["name"],
                "id_number": DRIVER_B["id_number"],
                "phone": "13888000002",
                "licence_no": DRIVER_B["id_number"],
                "plate": DRIVER_B["plate"],
                "vehicle_type": "K33",
                "plate_read_source": "reader",
                "plate_read_id": first["id"],
            },
        )
        assert party.status_code == 201, party.text
        assert party.json()["plate_read"] == first["text"] and party.json()["plate"] == DRIVER_B["plate"]
        unknown = await wuhua.http.post(
            f"/api/cases/{case.id}/parties",
            json={
                "role": "pedestrian",
                "name": "王五",
                "id_number": DRIVER_B["id_number"],
                "phone": "13888000003",
                "plate_read_source": "reader",
                "plate_read_id": 999_999,
            },
        )
        assert unknown.status_code == 422 and "no such plate read in this case" in unknown.text

        stored = {read.id: (read, reading) for reading, reads in await plate_rows(server) for read in reads}
        read, reading = stored[first["id"]]
        assert (reading.source, reading.device_id, reading.report_id) == ("request", "car-plates-01", case.report_id)
        assert (
            read.confirmed_text == DRIVER_B["plate"] and read.text == first["text"]
        )  # the party's save re-confirmed it
        assert base64.b64encode(read.crop).decode() == first["crop"].split(",", 1)[1]
        read, reading = stored[other["id"]]
        assert (read.text, read.confirmed_text) == (other["text"], "云A5H821")
        engine = make_engine(server.cfg.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                requester = await session.scalar(select(User.username).where(User.id == reading.requested_by))
                [asker] = [r for r, _ in await plate_rows(server) if r.source == "request"]
                asker_name = await session.scalar(select(User.username).where(User.id == asker.requested_by))
                events = (
                    await session.scalars(
                        select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.action == "plate.reviewed")
                    )
                ).all()
        finally:
            await engine.dispose()
        assert requester is None and asker_name == "wuhua"  # the report's reading was nobody's request
        assert [(e.actor, e.detail["confirmed"]) for e in events] == [
            ("wuhua", first["text"]),
            ("wuhua", "使014578"),
            ("wuhua", "云A5H821"),
        ]

        # Tomorrow's training data: the reviewed reads with their crops, labelled as confirmed.
        out = tmp_path / "training"
        done = await asyncio.to_thread(server_command, server, tmp_path / "server.toml", "plate-reads", str(out))
        assert done.returncode == 0, done.stderr
        changed = int(other["text"] != "云A5H821") + int(first["text"] != DRIVER_B["plate"])
        assert f"2 reviewed plate reads ({changed} corrected) written to {out}" in done.stdout
        with (out / "labels.csv").open(encoding="utf-8") as f:
            labels = {row["file"]: row for row in csv.DictReader(f)}
        assert {name: (row["plate"], row["read"]) for name, row in labels.items()} == {
            f"crops/{other['id']}.jpg": ("云A5H821", other["text"]),
            f"crops/{first['id']}.jpg": (DRIVER_B["plate"], first["text"]),
        }
        assert (out / f"crops/{first['id']}.jpg").read_bytes() == stored[first["id"]][0].crop
    finally:
        for console in (wuhua, guandu, officer):
            await console.close()


async def test_a_unit_without_its_models_still_reports_and_says_why_it_reads_nothing(
    broker: Mosquitto, server: RunningServer, tmp_path: Path
) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    car = plate_car(tmp_path / "car", broker, "car-plates-02", plates={"models_dir": empty})
    wuhua = await logged_in(server, "wuhua")
    admin = await logged_in(server, "admin")
    try:
        async with running_device(car) as device:
            # The heartbeat says the reader is off, and why.
            async with asyncio.timeout(30):
                while True:
                    fleet = (await admin.http.get("/api/devices")).json()["devices"]
                    health = next((d["health"] for d in fleet if d["id"] == "car-plates-02"), None)
                    if health is not None and health.get("plate_reader") is not None:  # checked its models
                        break
                    await asyncio.sleep(0.3)
            assert health["plate_reader"] == "failed"
            assert "plate_reader: model file detector.tflite is missing" in health["notes"]

            await device.wait_fix()
            await device.press()
            case = await case_of(server, await device.case_number())  # the report went out all the same
            assert case.report["health"]["plate_reader"] == "failed"
            [at_report] = await readings(wuhua, case.id, "report")
            assert at_report["plates"] == []
            assert at_report["error"] == "plate reader off: model file detector.tflite is missing"

            asked = await wuhua.http.post(f"/api/cases/{case.id}/plates/read", timeout=30)
            assert asked.status_code == 200
            assert asked.json()["error"] == "plate reader off: model file detector.tflite is missing"
            assert device.app.running  # nothing of this took the unit down
    finally:
        await wuhua.close()
        await admin.close()


def reading(report_id: str, **fields: Any) -> PlateReads:
    crop = io.BytesIO()
    Image.new("RGB", (128, 32), (20, 60, 160)).save(crop, "JPEG")
    plate = PlateReadOut(
        text="云A5H821",
        confidence=0.9,
        kind="blue",
        box=(10, 10, 90, 40),
        crop=base64.b64encode(crop.getvalue()).decode(),
    )
    values: dict[str, Any] = {
        "reading_id": new_report_id(),
        "source": "report",
        "report_id": report_id,
        "captured_at": datetime.now(UTC),
        "plates": [plate],
    }
    return PlateReads(**(values | fields))


async def test_readings_a_device_must_not_send_are_refused_and_harm_nothing(
    broker: Mosquitto, case_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = case_server  # on SQLite and PostgreSQL
    async with raw_device(broker.port, "car-0701") as (own, acks):
        report = in_car_report("car-0701", WUHUA)
        await publish_report(own, "car-0701", encode(report))
        case_no = (await asyncio.wait_for(acks.get(), 10)).case_no
        assert case_no is not None
        good = reading(report.report_id)
        async with raw_device(broker.port, "car-0702") as (other, _):
            topic = device_topic("car-0702", Channel.PLATES)
            # Not a reading at all; a reading of another device's report; an answer nobody asked for.
            await other.publish(topic, b'{"version": 1, "reading_id": "nope"', qos=1)
            await other.publish(topic, encode(reading(report.report_id)), qos=1)
            await other.publish(topic, encode(reading(report.report_id, source="request")), qos=1)
            # And the broker's ACL: car-0702 cannot publish on car-0701's plates topic at all.
            await other.publish(device_topic("car-0701", Channel.PLATES), encode(reading(report.report_id)), qos=1)
        own_topic = device_topic("car-0701", Channel.PLATES)
        # A plate no vehicle can carry: refused, and its text stays out of the log.
        impossible = encode(reading(report.report_id)).replace("云A5H821".encode(), "云AO1234".encode())
        await own.publish(own_topic, impossible, qos=1)
        await own.publish(own_topic, encode(good), qos=1)
        await own.publish(own_topic, encode(good), qos=1)  # a QoS 1 repeat is stored once
        # A reading that overtakes its report is kept, and found once the case exists.
        early = in_car_report("car-0701", WUHUA)
        await own.publish(own_topic, encode(reading(early.report_id)), qos=1)
        marker = reading(report.report_id)
        await own.publish(own_topic, encode(marker), qos=1)
        async with asyncio.timeout(15):
            while not any(r.reading_id == marker.reading_id for r, _ in await plate_rows(server)):
                await asyncio.sleep(0.2)
        await publish_report(own, "car-0701", encode(early))
        early_case_no = (await asyncio.wait_for(acks.get(), 10)).case_no
        assert early_case_no is not None

    assert "plates.0: Value error, text is not a plate any vehicle can carry" in caplog.text
    assert "云AO1234" not in caplog.text
    stored = [(r.reading_id, r.device_id, len(reads)) for r, reads in await plate_rows(server)]
    assert stored == [
        (good.reading_id, "car-0701", 1),
        (stored[1][0], "car-0701", 1),
        (marker.reading_id, "car-0701", 1),
    ]
    console = await logged_in(server, "wuhua")
    try:
        early_case = await case_of(server, early_case_no)
        [found] = (await console.http.get(f"/api/cases/{early_case.id}/plates")).json()["readings"]
        assert found["plates"][0]["text"] == "云A5H821"
    finally:
        await console.close()


async def test_a_reading_on_the_wire_is_bounded_and_only_carries_plates_that_can_exist() -> None:
    good = reading(new_report_id())
    assert PlateReads.model_validate_json(encode(good)) == good
    with pytest.raises(ValueError, match="not a plate any vehicle can carry"):
        reading(new_report_id(), plates=[good.plates[0].model_copy(update={"text": "云AO1234"}).model_dump()])
    with pytest.raises(ValueError, match="box"):
        PlateReadOut(text="云A5H821", confidence=0.9, kind="blue", box=(90, 10, 10, 40), crop=good.plates[0].crop)
    with pytest.raises(ValueError, match="at most 5464 characters"):
        PlateReadOut(text="云A5H821", confidence=0.9, kind="blue", box=(1, 1, 9, 9), crop="A" * 5468)
    with pytest.raises(ValueError, match="carries no plates"):
        reading(new_report_id(), error="camera failed")
    with pytest.raises(ValueError, match="the time its still was taken"):
        PlateReads(reading_id=new_report_id(), source="report", report_id=new_report_id())
    with pytest.raises(ValueError, match="at most 4 items"):
        reading(new_report_id(), plates=[good.plates[0]] * 5)


@pytest.mark.parametrize("case_server", ["sqlite"], indirect=True)
async def test_reads_are_no_longer_reviewed_once_the_case_is_handed_over(
    broker: Mosquitto, case_server: RunningServer
) -> None:
    """What the officer decides on stays as it was handed over, the plates as much as the parties."""
    async with raw_device(broker.port, "car-0703") as (own, acks):
        report = in_car_report("car-0703", WUHUA)
        await publish_report(own, "car-0703", encode(report))
        case_no = (await asyncio.wait_for(acks.get(), 10)).case_no
        assert case_no is not None
        await own.publish(device_topic("car-0703", Channel.PLATES), encode(reading(report.report_id)), qos=1)
    wuhua = await logged_in(case_server, "wuhua")
    try:
        case = await case_of(case_server, case_no)
        [read] = (await readings(wuhua, case.id, "report"))[0]["plates"]
        reviewed = f"/api/cases/{case.id}/plates/reads/{read['id']}"
        assert (await wuhua.http.put(reviewed, json={"text": "云A5H821"})).status_code == 200
        base = f"/api/cases/{case.id}"
        for party in (driver(DRIVER_A), driver(DRIVER_B)):
            assert (await wuhua.http.post(f"{base}/parties", json=party)).status_code == 201
        assert (await wuhua.http.put(f"{base}/facts", json=FACTS)).status_code == 200
        await wuhua.http.post(f"{base}/checks")
        assert (await wuhua.http.post(f"{base}/hand-over")).status_code == 200

        refused = await wuhua.http.put(reviewed, json={"text": "云A5H822"})
        assert refused.status_code == 409 and detail(refused).startswith("案件已不在接警阶段"), refused.text
        [after] = (await readings(wuhua, case.id, "report"))[0]["plates"]
        assert after["confirmed_text"] == "云A5H821"
    finally:
        await wuhua.close()
