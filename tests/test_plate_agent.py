"""The unit's plate reading (device.evidence.plates) with the shipped models and rendered stills:
what a bad still, a failing camera or missing models give instead of reads, and that the report
never waits for any of it."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from device.config import CameraSection, PlatesSection
from device.evidence.plates import PlateAgent
from device.hal.camera import CameraError, Frame
from device.hal.camera_simulated import SimulatedCamera, still_size
from device.ocr.reader import DETECTOR_FILE, MODELS_DIR, RECOGNISER_FILE
from protocol.ids import new_report_id
from protocol.messages import PLATE_CROP_MAX_BYTES, Health, PartState, PlateReads, decode
from protocol.plates import plate_form
from protocol.topics import Channel
from server.users import Role
from tests.cases import logged_in, readings
from tests.conftest import RunningServer, add_user
from tests.devices import plate_car, running_device
from tests.services import Mosquitto
from tests.stored import cases_in
from tests.waiting import wait_for

WIDTH, HEIGHT = 320, 240
HEALTH = Health(camera=PartState.OK, gnss=PartState.OK, audio=PartState.OK, storage_free_mb=1, firmware="t", uptime_s=1)


class StillCamera(SimulatedCamera):
    """The simulated camera, whose stills are whatever the test hands it (a driver gone wrong)."""

    def __init__(self, still: Any) -> None:
        super().__init__(CameraSection(backend="simulated", width=WIDTH, height=HEIGHT, fps=2))
        self.next_still = still

    async def still(self) -> Frame:
        still = self.next_still
        if isinstance(still, Exception):
            raise still
        if isinstance(still, asyncio.Event):
            await still.wait()
            return await super().still()
        if still is None:
            return await super().still()
        frame: Frame = still
        return frame


async def never_published(channel: Any, payload: bytes) -> bool:
    raise AssertionError("these tests read, they do not send")


@pytest.fixture
async def camera() -> AsyncIterator[StillCamera]:
    cam = StillCamera(None)
    await cam.start()
    yield cam
    await cam.stop()


def agent_for(camera: StillCamera, spool: Path, **plates: Any) -> PlateAgent:
    return PlateAgent(PlatesSection(**plates), spool, camera, never_published, asyncio.Event())


async def read(agent: PlateAgent) -> PlateReads:
    return await agent.reading(new_report_id(), "request", new_report_id())


async def test_a_still_of_the_simulated_scene_reads_as_plates_with_their_crops(
    camera: StillCamera, tmp_path: Path
) -> None:
    agent = agent_for(camera, tmp_path)
    await agent.check()
    assert agent.in_health(HEALTH).plate_reader is PartState.OK
    reading = await read(agent)
    assert reading.error is None and reading.captured_at is not None and reading.plates
    w, h = still_size(WIDTH, HEIGHT)
    for plate in reading.plates:
        assert plate_form(plate.text) is not None and 0 < plate.confidence <= 1
        x1, y1, x2, y2 = plate.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        jpeg = plate.crop_jpeg()
        assert len(jpeg) <= PLATE_CROP_MAX_BYTES
        with Image.open(io.BytesIO(jpeg)) as crop:
            assert crop.format == "JPEG" and crop.size == (128, 32)
    assert len(base64.b64encode(reading.plates[0].crop_jpeg())) == len(reading.plates[0].crop)


async def test_bad_stills_and_a_failing_camera_give_a_reason_never_a_crash(camera: StillCamera, tmp_path: Path) -> None:
    agent = agent_for(camera, tmp_path)
    await agent.check()
    camera.next_still = np.full((720, 1280, 3), 128, np.uint8)  # nothing in it
    nothing = await read(agent)
    assert (nothing.plates, nothing.error) == ([], None)

    camera.next_still = np.zeros((480, 640), np.uint8)
    assert (await read(agent)).error == "the camera gave an unreadable still (uint8, shape (480, 640))"
    camera.next_still = np.zeros((480, 640, 3), np.float32)
    assert (await read(agent)).error == "the camera gave an unreadable still (float32, shape (480, 640, 3))"
    camera.next_still = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (9000, 8000, 3))  # 72 MP, no memory
    assert (await read(agent)).error == "a still of 8000 x 9000 pixels is too large to read plates in"
    camera.next_still = np.zeros((1, 1, 3), np.uint8)
    assert (await read(agent)).plates == []

    camera.next_still = CameraError("camera not running: capture failed: ETIMEDOUT")
    failed = await read(agent)
    assert failed.error == "no still from the camera: camera not running: capture failed: ETIMEDOUT"
    camera.next_still = asyncio.Event()  # a still that never comes
    impatient = agent_for(camera, tmp_path, read_timeout_s=0.5)
    assert (await read(impatient)).error == "no still read within 0.5 s"

    camera.next_still = None  # and the unit reads on as before
    assert (await read(agent)).plates


async def test_missing_or_corrupt_models_turn_reading_off_with_the_reason_until_they_are_put_right(
    camera: StillCamera, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    agent = agent_for(camera, tmp_path, models_dir=models)
    await agent.check()
    health = agent.in_health(HEALTH)
    missing = f"model file {DETECTOR_FILE} is missing"
    assert health.plate_reader is PartState.FAILED and health.notes == [f"plate_reader: {missing}"]
    assert (await read(agent)).error == f"plate reader off: {missing}"

    for model in MODELS_DIR.glob("*.tflite"):
        shutil.copy(model, models)
    (models / RECOGNISER_FILE).write_bytes(b"TFL3" + bytes(2000))  # corrupt
    corrupt = await read(agent)
    assert corrupt.error is not None
    assert corrupt.error.startswith(f"plate reader off: model file {RECOGNISER_FILE} does not load: ")
    assert agent.in_health(HEALTH).plate_reader is PartState.FAILED

    shutil.copy(MODELS_DIR / RECOGNISER_FILE, models)  # the technician puts it right: no restart needed
    assert (await read(agent)).plates
    assert agent.in_health(HEALTH) == HEALTH.model_copy(update={"plate_reader": PartState.OK})

    off = agent_for(camera, tmp_path, enabled=False)
    assert off.in_health(HEALTH).plate_reader is PartState.ABSENT
    assert (await read(off)).error == "plate reading is switched off on this unit"


def model_checks_running() -> list[int]:
    """This process's children that are checking the models (``python -m device.evidence.plates``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # ended while we looked
        if ppid == os.getpid() and b"device.evidence.plates" in cmdline:
            found.append(int(stat.parent.name))
    return found


async def test_a_unit_stopping_while_its_models_are_checked_leaves_no_process_behind(
    camera: StillCamera, tmp_path: Path
) -> None:
    agent = agent_for(camera, tmp_path)
    agent.start()
    deadline = asyncio.get_running_loop().time() + 20
    while not (checking := model_checks_running()):
        assert asyncio.get_running_loop().time() < deadline, "the model check never started"
        await asyncio.sleep(0.005)
    await agent.stop()
    assert model_checks_running() == []  # killed and reaped, not left to a loop that is about to close
    assert not any(Path(f"/proc/{pid}").exists() for pid in checking)
    assert agent.in_health(HEALTH).plate_reader is None  # the check did not finish: still unknown


async def test_a_reading_the_broker_has_not_taken_is_sent_after_a_restart_and_only_then_forgotten(
    camera: StillCamera, tmp_path: Path
) -> None:
    spool, link_up = tmp_path / "plates", asyncio.Event()
    link_up.set()

    async def link_drops(channel: Channel, payload: bytes) -> bool:
        return False  # each publish fails before the broker's PUBACK

    first = PlateAgent(PlatesSection(), spool, camera, link_drops, link_up)
    first.start()
    report_id = new_report_id()
    first.after_report(report_id)

    async def kept() -> list[Path]:
        return list(spool.glob("*.json"))

    [reading] = await wait_for("the reading on the card", kept)
    on_card = reading.read_bytes()
    await first.stop()  # the unit loses power: what is on the card is all that is left

    sent: list[tuple[Channel, bytes]] = []

    async def broker_takes(channel: Channel, payload: bytes) -> bool:
        sent.append((channel, payload))
        return True

    second = PlateAgent(PlatesSection(), spool, camera, broker_takes, link_up)
    second.start()
    try:

        async def sent_again() -> bool:
            return bool(sent)

        await wait_for("the reading sent again", sent_again)
        assert sent == [(Channel.PLATES, on_card)]
        message = decode(PlateReads, on_card)
        assert (message.report_id, message.source, message.reading_id) == (report_id, "report", reading.stem)
        assert message.error is None and message.plates

        async def forgotten() -> bool:
            return not any(spool.iterdir())

        await wait_for("the card emptied", forgotten)
        assert sent == [(Channel.PLATES, on_card)]  # once
    finally:
        await second.stop()


async def test_the_report_goes_out_while_the_still_for_its_plates_is_still_being_taken(
    broker: Mosquitto, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    release = asyncio.Event()
    simulated_still = SimulatedCamera.still

    async def held_still(self: SimulatedCamera) -> Frame:
        await release.wait()  # the sensor is slow to switch modes, for as long as the test likes
        return await simulated_still(self)

    monkeypatch.setattr(SimulatedCamera, "still", held_still)
    # The still follows the server's answer, not a minute without one (answer_wait_s).
    car = plate_car(tmp_path / "car", broker, "car-plates-03", plates={"read_timeout_s": 60, "answer_wait_s": 60})
    console = await logged_in(server, "wuhua")
    try:
        async with running_device(car) as device:
            await device.wait_fix()
            await device.press()
            case_no = await device.case_number()  # answered while the still is held
            [case] = [c for c in await cases_in(server.cfg.database_url) if c.case_no == case_no]
            assert (await console.http.get(f"/api/cases/{case.id}/plates")).json()["readings"] == []
            release.set()
            [reading] = await readings(console, case.id, "report", within_s=30)
            assert reading["error"] is None and reading["plates"]
    finally:
        await console.close()


class CountingCamera(StillCamera):
    """The simulated camera, counting the stills taken."""

    def __init__(self) -> None:
        super().__init__(None)
        self.stills = 0

    async def still(self) -> Frame:
        self.stills += 1
        return await super().still()


@pytest.fixture
async def counting_camera() -> AsyncIterator[CountingCamera]:
    cam = CountingCamera()
    await cam.start()
    yield cam
    await cam.stop()


async def test_the_still_for_a_reports_plates_waits_for_the_servers_answer_to_that_report(
    counting_camera: CountingCamera, tmp_path: Path
) -> None:
    link_up, sent = asyncio.Event(), list[bytes]()
    link_up.set()

    async def broker_takes(channel: Channel, payload: bytes) -> bool:
        sent.append(payload)
        return True

    agent = PlateAgent(PlatesSection(answer_wait_s=60), tmp_path / "plates", counting_camera, broker_takes, link_up)
    agent.start()
    try:
        report_id = new_report_id()
        agent.after_report(report_id)
        await asyncio.sleep(0.5)  # the report on its way: nothing taken from the unit meanwhile
        agent.answered(new_report_id())  # another report's answer, or a repeat of one long gone
        await asyncio.sleep(0.2)
        assert counting_camera.stills == 0 and sent == []
        agent.answered(report_id)
        await agent.settled()
        assert counting_camera.stills == 1
        [payload] = sent
        message = decode(PlateReads, payload)
        assert (message.report_id, message.source, message.error) == (report_id, "report", None)
        assert message.plates
    finally:
        await agent.stop()


async def test_a_report_left_unanswered_has_its_plates_read_all_the_same_and_kept_until_sent(
    counting_camera: CountingCamera, tmp_path: Path
) -> None:
    spool, link_up = tmp_path / "plates", asyncio.Event()  # the link is down: no answer comes
    sent: list[bytes] = []

    async def broker_takes(channel: Channel, payload: bytes) -> bool:
        sent.append(payload)
        return True

    agent = PlateAgent(PlatesSection(answer_wait_s=0.3), spool, counting_camera, broker_takes, link_up)
    agent.start()
    try:
        report_id = new_report_id()
        agent.after_report(report_id)

        async def kept() -> list[Path]:
            return list(spool.glob("*.json"))

        [reading] = await wait_for("the reading on the card", kept)
        assert counting_camera.stills == 1 and sent == []
        on_card = reading.read_bytes()
        link_up.set()
        await agent.settled()
        assert sent == [on_card]
        message = decode(PlateReads, on_card)
        assert (message.report_id, message.source, message.error) == (report_id, "report", None)
        assert not any(spool.iterdir())
    finally:
        await agent.stop()
