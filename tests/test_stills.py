"""Stills and clips, end to end: a dispatcher asks during a live call, the simulated unit takes the
picture (or cuts the seconds before its press, or before the dispatcher's click) and uploads it in
chunks over the real broker, the server checks the hash and keeps it as evidence with the operator who asked.
Uploads survive a broker restart and a device restart, resuming from the server's offset."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import av
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from device.hal.camera_simulated import still_size
from device.sim.scene import read_frame_counter
from protocol.ids import new_report_id
from protocol.messages import CHUNK_BYTES, Command, decode
from protocol.topics import Channel, device_topic
from server.calls.store import CallStore
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Evidence, User
from server.users import Role
from tests import pki
from tests.calls import ask
from tests.conftest import PASSWORD, RunningServer, add_user, make_server_config, start_server
from tests.devices import device_config, running_device
from tests.services import Mosquitto
from tests.wire import Console, event, mqtt_client

WIDTH, HEIGHT = 320, 240


async def dispatcher(server: RunningServer, username: str = "wuhua") -> Console:
    console = Console(server.url)
    assert (await console.login(username, PASSWORD)).status_code == 200
    await console.connect_live()
    return console


async def evidence_row(server: RunningServer, evidence_id: int) -> tuple[Evidence, str]:
    """The evidence row and the user name of the operator it is tied to."""
    engine = make_engine(server.cfg.database_url)
    try:
        sessions = make_sessionmaker(engine)
        row = await CallStore(sessions, server.cfg.evidence_dir).evidence(evidence_id)
        assert row is not None
        async with sessions() as session:
            username = await session.scalar(select(User.username).where(User.id == row.operator_id))
        assert username is not None
        return row, username
    finally:
        await engine.dispose()


async def downloaded(console: Console, evidence: dict[str, Any]) -> bytes:
    response = await console.http.get(evidence["url"])
    assert response.status_code == 200
    assert response.headers["x-evidence-sha256"] == evidence["sha256"]
    assert hashlib.sha256(response.content).hexdigest() == evidence["sha256"]
    return response.content


async def requested(console: Console, case_id: int, upload_id: str) -> dict[str, Any]:
    """What the case log says was asked for with ``upload_id``."""
    log = (await console.http.get(f"/api/cases/{case_id}/events")).json()["events"]
    [asked] = [
        e["detail"] for e in log if e["action"] == "evidence.requested" and e["detail"]["upload_id"] == upload_id
    ]
    detail: dict[str, Any] = asked
    return detail


@pytest.fixture
async def server(broker: Mosquitto, tmp_path: Path) -> Any:
    cfg = make_server_config(tmp_path / "server", broker.port)
    running = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(cfg, "guandu", Role.DISPATCHER, ["530111"])
    yield running
    await running.stop()


async def test_a_still_taken_during_the_call_is_kept_with_its_hash_and_the_dispatcher_who_asked(
    broker: Mosquitto, server: RunningServer, tmp_path: Path
) -> None:
    car = device_config(tmp_path / "car", broker.port, "car-still-01", camera={"width": WIDTH, "height": HEIGHT})
    async with running_device(car) as device:
        case_no, call_id = await device.live_call()
        console = await dispatcher(server)
        other = await dispatcher(server, "guandu")
        try:
            camera = device.hw.camera
            frames_before = camera.frames_captured
            upload_id = await ask(console, "still", call_id)
            new = await event(console, "evidence.new")
            assert new["upload_id"] == upload_id
            evidence = new["evidence"]
            assert (evidence["kind"], evidence["case_no"], evidence["call_id"]) == ("still", case_no, call_id)

            # The video went on while the still was taken: the camera kept delivering frames, the call stayed live.
            assert camera.frames_captured >= frames_before + 2
            calls = (await console.http.get("/api/calls")).json()["calls"]
            assert [(c["call_id"], c["state"]) for c in calls] == [(call_id, "live")]

            # A full-resolution JPEG, byte for byte what the unit hashed, with its capture time inside.
            jpeg = await downloaded(console, evidence)
            with Image.open(io.BytesIO(jpeg)) as image:
                assert image.format == "JPEG"
                assert image.size == still_size(WIDTH, HEIGHT) and image.size[0] > WIDTH * 4
                assert image.getexif().get_ifd(0x8769)[0x9003].startswith(evidence["media_start"][:4])

            row, username = await evidence_row(server, evidence["id"])
            assert username == "wuhua"  # the still is tied to the dispatcher who asked for it
            assert (row.kind, row.call_id, row.path) == ("still", call_id, f"{case_no}/still-{upload_id}.jpg")
            on_disk = server.cfg.evidence_dir / row.path
            assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == row.sha256 == evidence["sha256"]
            listed = (await console.http.get(f"/api/cases/{evidence['case_id']}/evidence")).json()
            assert evidence["id"] in [e["id"] for e in listed if e["kind"] == "still"]

            # The unit forgets its copy once the server has confirmed the hash; the server's
            # incoming folder is empty too.
            assert list((car.device.data_dir / "uploads").iterdir()) == []
            assert list((server.cfg.server.data_dir / "uploads").iterdir()) == []

            # Another district's dispatcher can neither fetch the still nor ask for one.
            assert (await other.http.get(evidence["url"])).status_code == 404
            await other.ws.send(json.dumps({"type": "still.take", "call_id": call_id}))
            refused = await event(other, "call.error", 10)
            assert refused == {"type": "call.error", "call_id": call_id, "reason": "no such call"}
        finally:
            await console.close()
            await other.close()


def frame_counters(clip: bytes) -> list[int]:
    with av.open(io.BytesIO(clip), "r") as container:
        assert container.streams.video[0].codec_context.name == "mjpeg"
        counters = []
        for frame in container.decode(video=0):
            number = read_frame_counter(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
            assert number is not None
            counters.append(number)
    return counters


async def test_the_clip_shows_the_seconds_before_the_press(
    broker: Mosquitto, server: RunningServer, tmp_path: Path
) -> None:
    car = device_config(
        tmp_path / "car",
        broker.port,
        "car-clip-01",
        camera={"width": WIDTH, "height": HEIGHT, "fps": 4},
        evidence={"pretrigger_s": 8, "pretrigger_fps": 4},
    )
    async with running_device(car) as device:
        await device.wait_fix()
        await asyncio.sleep(9)  # the ring fills
        camera = device.hw.camera
        before_press = read_frame_counter(np.asarray(await camera.frame()))
        case_no, call_id = await device.live_call()
        after_press = read_frame_counter(np.asarray(await camera.frame()))
        assert before_press is not None and after_press is not None
        console = await dispatcher(server)
        try:
            await asyncio.sleep(3)  # the call is on: anything the clip showed from now would be wrong
            upload_id = await ask(console, "report_clip", call_id, seconds=5)
            new = await event(console, "evidence.new")
            assert new["upload_id"] == upload_id
            evidence = new["evidence"]
            assert evidence["kind"] == "clip" and evidence["case_no"] == case_no
            clip = await downloaded(console, evidence)

            # Frames of the camera in order, from about 5 s before the press up to the press.
            counters = frame_counters(clip)
            assert counters == sorted(counters) and len(set(counters)) == len(counters)
            assert len(counters) >= 12
            assert before_press - 2 <= counters[-1] <= after_press
            assert counters[-1] - counters[0] >= 4 * 4  # at least 4 of the 5 s at 4 frames a second

            case = next(c for c in (await console.http.get("/api/cases")).json() if c["case_no"] == case_no)
            pressed = case["triggered_at"]
            assert evidence["media_end"] <= pressed
            row, username = await evidence_row(server, evidence["id"])
            assert username == "wuhua" and row.media_start is not None and row.media_end is not None
            assert 4 <= (row.media_end - row.media_start).total_seconds() <= 5
        finally:
            await console.close()


async def test_the_last_seconds_are_those_before_the_click_and_the_report_clip_those_before_the_press(
    broker: Mosquitto, server: RunningServer, tmp_path: Path
) -> None:
    car = device_config(
        tmp_path / "car",
        broker.port,
        "car-clip-02",
        camera={"width": WIDTH, "height": HEIGHT, "fps": 4},
        evidence={"pretrigger_s": 8, "pretrigger_fps": 4},
    )
    async with running_device(car) as device:
        await device.wait_fix()
        await asyncio.sleep(6)  # some video from before the press
        case_no, call_id = await device.live_call()
        console = await dispatcher(server)
        try:
            await asyncio.sleep(8)  # the call is on: the 5 s before the click are all after the press
            camera = device.hw.camera
            before_click = read_frame_counter(np.asarray(await camera.frame()))
            upload_id = await ask(console, "clip", call_id, seconds=5)
            after_click = read_frame_counter(np.asarray(await camera.frame()))
            assert before_click is not None and after_click is not None
            new = await event(console, "evidence.new")
            assert new["upload_id"] == upload_id
            clip = new["evidence"]
            assert clip["kind"] == "clip" and clip["case_no"] == case_no

            # The camera's frames in order, the last of them at the click.
            counters = frame_counters(await downloaded(console, clip))
            assert counters == sorted(counters) and len(set(counters)) == len(counters)
            assert len(counters) >= 12
            assert before_click - 2 <= counters[-1] <= after_click
            assert counters[-1] - counters[0] >= 4 * 4

            # The click is the server's time of the request, in the case log; the clip's media times
            # are the 5 s up to it, all of them after the press.
            asked = await requested(console, clip["case_id"], upload_id)
            assert asked["seconds"] == 5
            clicked = datetime.fromisoformat(asked["until"])
            row, username = await evidence_row(server, clip["id"])
            assert username == "wuhua" and row.media_start is not None and row.media_end is not None
            assert clicked - timedelta(seconds=1) <= row.media_end <= clicked
            assert clicked - timedelta(seconds=5) <= row.media_start <= clicked - timedelta(seconds=4)
            case = next(c for c in (await console.http.get("/api/cases")).json() if c["case_no"] == case_no)
            pressed = datetime.fromisoformat(case["triggered_at"])
            assert row.media_start > pressed

            # 报警前10秒 still gets the seconds before the press, not before the click.
            report_clip_id = await ask(console, "report_clip", call_id, seconds=5)
            new = await event(console, "evidence.new")
            assert new["upload_id"] == report_clip_id
            assert "until" not in await requested(console, clip["case_id"], report_clip_id)
            before_press, _ = await evidence_row(server, new["evidence"]["id"])
            assert before_press.media_start is not None and before_press.media_end is not None
            assert pressed - timedelta(seconds=1) <= before_press.media_end <= pressed
            assert 4 <= (before_press.media_end - before_press.media_start).total_seconds() <= 5
        finally:
            await console.close()


async def test_an_upload_resumes_from_the_servers_offset_after_broker_server_and_device_restarts(
    broker: Mosquitto, server: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="device.evidence.uploads")
    # Slow enough (40 kB/s) that the test can cut the still's upload three times.
    car = device_config(
        tmp_path / "car",
        broker.port,
        "car-resume-01",
        camera={"width": WIDTH, "height": HEIGHT},
        evidence={"upload_kbps": 320},
    )
    incoming = server.cfg.server.data_dir / "uploads"

    async def received_at_least(upload_id: str, size: int) -> int:
        async with asyncio.timeout(60):
            while True:
                part = incoming / f"{upload_id}.part"
                have = part.stat().st_size if part.exists() else 0
                if have >= size:
                    return have
                await asyncio.sleep(0.1)

    console = await dispatcher(server)
    try:
        async with running_device(car) as device:
            _, call_id = await device.live_call()
            upload_id = await ask(console, "still", call_id)
            await received_at_least(upload_id, 64 * 1024)
            broker.stop()
            await asyncio.sleep(2)
            broker.start()
            await received_at_least(upload_id, 128 * 1024)
            await console.close()
            await server.stop()  # what it has received is on its disk, with the request
            server = await start_server(server.cfg)
            console = await dispatcher(server)
            before_device_restart = await received_at_least(upload_id, 192 * 1024)
        pending = car.device.data_dir / "uploads" / f"{upload_id}.data"
        assert pending.exists()  # the unit keeps the still until the server has confirmed it
        sent = pending.read_bytes()
        async with running_device(car):
            new = await event(console, "evidence.new")
            async with asyncio.timeout(10):
                while pending.exists():  # the unit forgets it once the server has confirmed the hash
                    await asyncio.sleep(0.1)
        assert new["upload_id"] == upload_id
        stored = await downloaded(console, new["evidence"])
        assert stored == sent and new["evidence"]["size_bytes"] == len(sent)
        row, username = await evidence_row(server, new["evidence"]["id"])
        assert username == "wuhua" and row.kind == "still"
        # After the broker came back the unit went on from where the server was, not from the start;
        # after its own restart the server told it how much it already had.
        messages = [r.getMessage() for r in caplog.records]
        resumed = [int(m.split("resuming at byte ")[1].split()[0]) for m in messages if "link back" in m]
        assert resumed and max(resumed) >= 64 * 1024, messages
        ahead = [int(m.split("already has ")[1].split()[0]) for m in messages if "already has" in m]
        assert ahead and ahead[-1] >= before_device_restart, messages
    finally:
        await console.close()
        await server.stop()


class RawUnit:
    """A client in a unit's shoes (its certificate, another client id): sends upload messages as told
    and collects the server's answers on the unit's cmd topic."""

    def __init__(self, client: aiomqtt.Client, device_id: str) -> None:
        self.client = client
        self.device_id = device_id
        self.replies: asyncio.Queue[Command] = asyncio.Queue()

    async def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps({"version": 1, **message}).encode()
        await self.client.publish(device_topic(self.device_id, Channel.UPLOAD), payload, qos=1)

    async def reply(self, upload_id: str) -> Command:
        async with asyncio.timeout(10):
            while True:
                command = await self.replies.get()
                if command.upload_id == upload_id and command.type.startswith("upload."):
                    return command


@asynccontextmanager
async def raw_unit(port: int, device_id: str) -> AsyncIterator[RawUnit]:
    async with mqtt_client(port, f"{device_id}-raw", pki.current().device_tls(device_id)) as client:
        unit = RawUnit(client, device_id)
        await client.subscribe(device_topic(device_id, Channel.CMD), qos=1)

        async def collect() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                unit.replies.put_nowait(decode(Command, message.payload))

        task = asyncio.create_task(collect())
        try:
            yield unit
        finally:
            task.cancel()


def chunks(
    upload_id: str, call_id: str, case_no: str, data: bytes, *, sha256: str | None = None
) -> list[dict[str, Any]]:
    """The upload messages for ``data``, as a unit sends them."""
    declared = {
        "type": "chunk",
        "upload_id": upload_id,
        "kind": "still",
        "call_id": call_id,
        "case_no": case_no,
        "content_type": "image/jpeg",
        "size": len(data),
        "sha256": sha256 or hashlib.sha256(data).hexdigest(),
        "captured_at": "2025-05-14T02:33:41.208Z",
    }
    return [
        {**declared, "offset": at, "data": base64.b64encode(data[at : at + CHUNK_BYTES]).decode()}
        for at in range(0, len(data), CHUNK_BYTES)
    ]


def noise_jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (150, 200, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    assert 2 * CHUNK_BYTES < len(out.getvalue()) <= 3 * CHUNK_BYTES
    return out.getvalue()


async def test_bad_uploads_are_refused_with_their_reason_and_harm_nothing_stored(
    broker: Mosquitto, server: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="server.calls.uploads")
    car = device_config(tmp_path / "car", broker.port, "car-bad-01", evidence={"pretrigger_s": 0})
    console = await dispatcher(server)
    incoming = server.cfg.server.data_dir / "uploads"
    try:
        async with running_device(car) as device:
            case_no, call_id = await device.live_call()
            # A unit that keeps no video from before its presses says so, and the console hears it.
            upload_id = await ask(console, "report_clip", call_id)
            failed = await event(console, "evidence.failed")
            assert failed["upload"]["upload_id"] == upload_id
            assert failed["upload"]["reason"] == "no video from before this press on the device"
            # Nor can a unit whose camera has failed take a still.
            await device.hw.camera.stop()
            upload_id = await ask(console, "still", call_id)
            failed = await event(console, "evidence.failed")
            assert failed["upload"]["upload_id"] == upload_id
            assert failed["upload"]["reason"] == "the unit could not make it: camera not running: stopped"
        # The unit is gone (its call waits for it to come back); from here on what arrives on its
        # upload channel is played by hand, with its certificate, and by a second unit's.
        async with raw_unit(broker.port, "car-bad-01") as unit, raw_unit(broker.port, "car-bad-02") as stranger:
            good = noise_jpeg(1)
            first = await ask(console, "still", call_id)
            for message in chunks(first, call_id, case_no, good):
                await unit.send(message)
            assert [(await unit.reply(first)).type for _ in range(3)] == ["upload.ack", "upload.ack", "upload.done"]
            stored = (await event(console, "evidence.new"))["evidence"]
            stored_file = server.cfg.evidence_dir / stored["file"]
            assert stored_file.read_bytes() == good

            second = await ask(console, "still", call_id)
            parts = chunks(second, call_id, case_no, good)

            # Out of order: not written; the answer says which byte the server wants.
            await unit.send(parts[1])
            answer = await unit.reply(second)
            assert (answer.type, answer.offset) == ("upload.ack", 0)
            assert answer.reason == f"chunk at byte {CHUNK_BYTES} out of order: expected byte 0"
            assert not (incoming / f"{second}.part").exists()

            # Oversized: over CHUNK_BYTES in one chunk.
            await unit.send({**parts[0], "data": base64.b64encode(good[: CHUNK_BYTES + 4000]).decode()})
            answer = await unit.reply(second)
            assert answer.type == "upload.refused" and answer.reason is not None
            assert answer.reason.startswith("schema: data: String should have at most")

            # Another unit's chunks for this upload, and this unit's for another case.
            await stranger.send(parts[0])
            answer = await stranger.reply(second)
            assert (answer.type, answer.reason) == ("upload.refused", "not this device's upload")
            await unit.send({**parts[0], "case_no": "530102209901010001"})
            answer = await unit.reply(second)
            assert (answer.type, answer.reason) == (
                "upload.refused",
                "not the case, call or kind this upload was asked for",
            )
            assert not (incoming / f"{second}.part").exists()

            # A chunk that declares another file than the first chunk did: what was received goes.
            await unit.send(chunks(second, call_id, case_no, good + b"more")[0])
            answer = await unit.reply(second)
            assert (answer.type, answer.reason) == ("upload.refused", "the file changed during its upload")
            assert (await event(console, "evidence.failed"))["upload"]["upload_id"] == second
            assert not list(incoming.glob(f"{second}.*"))

            # A whole file that is not the one its hash declares: discarded, and the console told.
            fourth = await ask(console, "still", call_id)
            for message in chunks(fourth, call_id, case_no, good, sha256=hashlib.sha256(b"other").hexdigest()):
                await unit.send(message)
            replies = [await unit.reply(fourth) for _ in range(3)]
            assert [r.type for r in replies] == ["upload.ack", "upload.ack", "upload.refused"]
            assert replies[-1].reason == f"sha256 mismatch: received {hashlib.sha256(good).hexdigest()}"
            failed = await event(console, "evidence.failed")
            assert failed["upload"] == {
                "upload_id": fourth,
                "kind": "still",
                "call_id": call_id,
                "case_no": case_no,
                "reason": replies[-1].reason,
            }
            assert not list(incoming.glob(f"{fourth}.*"))
            assert not list(server.cfg.evidence_dir.rglob(f"*{fourth}*"))

            # A whole file whose hash is the declared one but which is no whole JPEG (cut short):
            # discarded, and the console told why.
            fifth = await ask(console, "still", call_id)
            cut = chunks(fifth, call_id, case_no, good[: len(good) // 2])
            for message in cut:
                await unit.send(message)
            replies = [await unit.reply(fifth) for _ in cut]
            assert replies[-1].type == "upload.refused" and "不完整或已损坏" in (replies[-1].reason or "")
            failed = await event(console, "evidence.failed")
            assert failed["upload"]["upload_id"] == fifth and failed["upload"]["reason"] == replies[-1].reason
            assert not list(server.cfg.evidence_dir.rglob(f"*{fifth}*"))

            # A finished upload sent again: the same file is acknowledged again, another is refused;
            # the stored file stays as it was.
            other = noise_jpeg(2)
            await unit.send(chunks(first, call_id, case_no, other)[0])
            answer = await unit.reply(first)
            assert (answer.type, answer.reason) == (
                "upload.refused",
                "this upload is already stored, with another sha256",
            )
            await unit.send(chunks(first, call_id, case_no, good)[0])
            answer = await unit.reply(first)
            assert (answer.type, answer.sha256) == ("upload.done", hashlib.sha256(good).hexdigest())
            assert stored_file.read_bytes() == good

            # An evidence file is never overwritten, even by a good upload that would take its name.
            third = await ask(console, "still", call_id)
            squatter = server.cfg.evidence_dir / case_no / f"still-{third}.jpg"
            squatter.write_bytes(b"already here")
            for message in chunks(third, call_id, case_no, other):
                await unit.send(message)
            answer = [await unit.reply(third) for _ in range(3)][-1]
            assert (answer.type, answer.reason) == ("upload.refused", "a file of that name is already stored")
            assert squatter.read_bytes() == b"already here"

            # Nothing was asked under this id.
            nobody = new_report_id()
            await unit.send(chunks(nobody, call_id, case_no, good)[0])
            assert (await unit.reply(nobody)).reason == "no such upload"

        listed = (await console.http.get(f"/api/cases/{stored['case_id']}/evidence")).json()
        assert [e["id"] for e in listed if e["kind"] == "still"] == [stored["id"]]
        logged = "\n".join(r.getMessage() for r in caplog.records)
        for reason in ("out of order", "not this device's upload", "file changed", "sha256 mismatch", "already stored"):
            assert reason in logged
    finally:
        await console.close()
