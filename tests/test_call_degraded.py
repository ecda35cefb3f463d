"""A call whose video cannot connect, for real: the unit may use TURN relays only and has none that
works, so WebRTC has nothing to connect with. The dispatcher still sees and hears the scene: small
stills and sound clips over MQTT, kept as evidence, shown in the console (headless Chromium); and
the call goes live once the TURN server comes up."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image
from playwright.async_api import Page, expect

from device.hal.audio_simulated import SimulatedAudio
from device.sim.scene import read_frame_counter
from protocol import ProtocolError
from protocol.ids import new_report_id
from protocol.messages import Ack, Command, SceneSample, decode, encode
from protocol.topics import Channel, device_topic
from runtime.ice import IceServer
from server.calls.store import CallStore
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Evidence
from server.users import Role
from tests.browser import chromium
from tests.conftest import RunningServer, add_user, make_server_config, start_server
from tests.console_pages import login_live
from tests.devices import device_config, running_device
from tests.reports import in_car_report
from tests.services import Coturn, Mosquitto, free_port
from tests.stored import call_row, wait_state
from tests.wire import publish_report, raw_device

TONE_HZ = 440.0
GRAB_STILL = """() => {
  const img = document.getElementById("call-scene");
  if (img.hidden || !img.complete || !img.naturalWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  canvas.getContext("2d").drawImage(img, 0, 0);
  return canvas.toDataURL("image/png");
}"""


async def evidence(server: RunningServer, case_id: int) -> list[Evidence]:
    engine = make_engine(server.cfg.database_url)
    try:
        return await CallStore(make_sessionmaker(engine), server.cfg.evidence_dir).evidence_of(case_id)
    finally:
        await engine.dispose()


async def still_counter(page: Page) -> int | None:
    data = await page.evaluate(GRAB_STILL)
    if data is None:
        return None
    image = Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB")
    return read_frame_counter(np.asarray(image))


async def rising_still_counters(page: Page, within_s: float = 20) -> tuple[int, int]:
    async with asyncio.timeout(within_s):
        while (first := await still_counter(page)) is None:
            await asyncio.sleep(0.2)
        while (later := await still_counter(page)) is None or later <= first:
            await asyncio.sleep(0.3)
    return first, later


def dominant_hz(ogg: bytes) -> tuple[float, float]:
    """The strongest frequency in an Ogg Opus clip, and the clip's length in seconds."""
    with av.open(io.BytesIO(ogg), "r") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
        rate = stream.codec_context.sample_rate
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * rate / samples.size), samples.size / rate


async def test_without_any_webrtc_path_the_dispatcher_gets_stills_and_sound_as_evidence(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="device.call")
    cfg = make_server_config(tmp_path / "server", broker.port)
    server = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    # Relay candidates only, and no TURN server: the unit has no address to offer at all.
    webrtc = {"relay_only": True, "degrade_after_s": 2, "degraded_every_s": 1, "degraded_still_width": 160}
    car = device_config(tmp_path / "car", broker.port, "car-degr-01", webrtc=webrtc, camera={"fps": 5})
    try:
        async with running_device(car) as device, chromium() as browser:
            audio = device.hw.audio
            assert isinstance(audio, SimulatedAudio)
            audio.microphone.tone(TONE_HZ)
            await device.wait_fix()
            await device.press()
            case_no = await device.case_number()
            async with asyncio.timeout(15):
                while device.app.call.call_id is None:
                    await asyncio.sleep(0.1)
            call_id = device.app.call.call_id
            row = await wait_state(server, call_id, "degraded")
            assert row.live_at is None

            page = await (await browser.new_context()).new_page()
            await login_live(page, server.url, "wuhua")
            cell = page.locator(f'tr[data-case="{case_no}"] td.call')
            await expect(cell).to_have_attribute("data-state", "degraded", timeout=15000)
            await cell.locator("button.answer").click()
            await expect(page.locator("#call-state")).to_have_attribute("data-state", "degraded", timeout=15000)
            await expect(page.locator("#call-scene")).to_be_visible(timeout=15000)
            await expect(page.locator("#call-video")).to_be_hidden()
            first, later = await rising_still_counters(page)
            assert later > first  # the unit's camera, frame after frame, in the console
            # Sound clips played one after the other on the console.
            await expect(page.locator("#call-sound")).to_have_attribute("data-played", "2", timeout=15000)
            await page.screenshot(path=str(tmp_path / "degraded.png"), full_page=True)
            assert not device.app.call.connected.is_set()
            assert await page.evaluate("document.getElementById('call-state').textContent") == "降级 degraded"
            # The queue, open beside the workspace, sees the call end.
            queue = await page.context.new_page()
            await queue.goto(f"{server.url}/console")
            cell = queue.locator(f'tr[data-case="{case_no}"] td.call')
            await expect(cell).to_have_attribute("data-state", "degraded", timeout=15000)
            await page.click("#call-end")
            await expect(cell).to_have_attribute("data-state", "ended", timeout=15000)
            async with asyncio.timeout(15):
                while device.app.call.call_id is not None:
                    await asyncio.sleep(0.1)
        row = await wait_state(server, call_id, "ended")
        kept = await evidence(server, row.case_id)
    finally:
        await server.stop()

    stills = [e for e in kept if e.kind == "scene-still"]
    sounds = [e for e in kept if e.kind == "scene-sound"]
    assert len(stills) >= 3 and len(sounds) >= 3
    assert all(e.call_id == call_id and e.path.startswith(f"{case_no}/") for e in stills + sounds)
    for item in stills + sounds:
        data = (cfg.evidence_dir / item.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item.sha256 and len(data) == item.size_bytes
    for item in stills:
        with Image.open(cfg.evidence_dir / item.path) as image:
            assert image.format == "JPEG" and image.size == (160, 120)  # reduced from the camera's 320x240
    for item in sounds:
        hz, seconds = dominant_hz((cfg.evidence_dir / item.path).read_bytes())
        assert abs(hz - TONE_HZ) < 5 and 0.9 < seconds < 1.2  # what the unit's microphone heard
        assert item.media_start is not None and item.media_end is not None and item.media_end > item.media_start
    said = [r.getMessage() for r in caplog.records if r.name == "device.call.degraded"]
    assert any("no video for 2 s; sending stills and sound over MQTT" in line for line in said)
    assert any("no TURN server in [webrtc] ice_servers" in r.getMessage() for r in caplog.records)


async def test_the_call_goes_live_when_the_turn_server_comes_up_and_the_stills_stop(
    broker: Mosquitto, tmp_path: Path
) -> None:
    turn = Coturn(free_port(), tmp_path / "turn", {"car-degr-02": "unit secret", "media-w1": "media secret"})
    turn.folder.mkdir()
    cfg = make_server_config(tmp_path / "server", broker.port)
    ice = [IceServer(urls=[turn.url()], username="media-w1", credential="media secret")]
    cfg = cfg.model_copy(update={"calls": cfg.calls.model_copy(update={"ice_servers": ice})})
    server = await start_server(cfg)
    webrtc = {
        "relay_only": True,
        "degrade_after_s": 2,
        "degraded_every_s": 1,
        # reconnect_after_s stays the unit's default (4 s): at 1 s, a second without the dispatcher's
        # voice on a loaded machine renegotiated the live call, and stills came again while it did.
        "ice_servers": [{"urls": [turn.url()], "username": "car-degr-02", "credential": "unit secret"}],
    }
    car = device_config(tmp_path / "car", broker.port, "car-degr-02", webrtc=webrtc)
    try:
        async with running_device(car) as device:
            await device.wait_fix()
            await device.press()
            await device.case_number()
            async with asyncio.timeout(15):
                while device.app.call.call_id is None:
                    await asyncio.sleep(0.1)
            call_id = device.app.call.call_id
            row = await wait_state(server, call_id, "degraded")  # the TURN server is down
            turn.start()
            try:
                async with asyncio.timeout(45):
                    await device.app.call.connected.wait()
                row = await wait_state(server, call_id, "live")
                assert row.live_at is not None
                # A sample already on its way when the video came up may still be stored: one cycle.
                await asyncio.sleep(1.5)
                sent = len([e for e in await evidence(server, row.case_id) if e.kind.startswith("scene-")])
                await asyncio.sleep(3)  # three cycles' worth: no sample comes while the video is up
                later = len([e for e in await evidence(server, row.case_id) if e.kind.startswith("scene-")])
                assert sent >= 2 and later == sent
                assert device.app.call.connected.is_set()
                await device.app.call.hang_up("test over")
                await wait_state(server, call_id, "ended")
            finally:
                turn.stop()  # after the call: closing an allocation waits for the TURN server
    finally:
        await server.stop()


def sample(kind: str, data: bytes, seq: int, call_id: str, report_id: str, case_no: str, **over: Any) -> bytes:
    fields: dict[str, Any] = {
        "type": kind,
        "call_id": call_id,
        "report_id": report_id,
        "case_no": case_no,
        "seq": seq,
        "captured_at": datetime.now(UTC),
        "duration_s": 1.0 if kind == "sound" else None,
        "sha256": hashlib.sha256(data).hexdigest(),
        "data": base64.b64encode(data).decode(),
    } | over
    return encode(SceneSample(**fields))


def jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, shade, shade)).save(out, "JPEG")
    return out.getvalue()


async def test_bad_scene_samples_are_refused_and_nothing_stored_is_harmed(broker: Mosquitto, tmp_path: Path) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)
    server = await start_server(cfg)
    device_id = "car-degr-03"
    try:
        commands: asyncio.Queue[Command] = asyncio.Queue()
        async with raw_device(broker.port, device_id, commands) as (client, acks):
            report = in_car_report(device_id)
            await publish_report(client, device_id, encode(report))
            ack: Ack = await asyncio.wait_for(acks.get(), 15)
            assert ack.case_no is not None
            case_no, report_id, call_id = ack.case_no, report.report_id, new_report_id()

            async def publish(payload: bytes) -> None:
                await client.publish(device_topic(device_id, Channel.SCENE), payload, qos=1)

            original = jpeg(90)
            await publish(sample("still", original, 1, call_id, report_id, case_no))
            row = await wait_state(server, call_id, "degraded")
            stored = await _wait_for_evidence(server, row.case_id, 1)

            await publish(sample("still", jpeg(200), 1, call_id, report_id, case_no))  # seq 1 again, other bytes
            await publish(sample("still", original, 2, call_id, report_id, case_no, sha256="0" * 64))
            await publish(sample("still", b"GIF89a not a jpeg", 3, call_id, report_id, case_no))
            await publish(sample("sound", original, 4, call_id, report_id, case_no))  # a JPEG is no Ogg
            await publish(sample("still", original[: len(original) // 2], 6, call_id, report_id, case_no))  # cut short
            await publish(sample("still", original, 1, call_id, report_id, case_no))  # a repeat: ignored
            await publish(b'{"version": 1, "type": "still"}')
            # A call for a report that is not this device's is refused, and the device is told
            # to end it (on its command channel).
            stranger = new_report_id()
            await publish(sample("still", original, 1, stranger, new_report_id(), case_no))
            ended = await asyncio.wait_for(commands.get(), 15)
            assert (ended.type, ended.call_id, ended.reason) == ("call.end", stranger, "no such case for this device")
            await publish(sample("still", jpeg(30), 5, call_id, report_id, case_no))  # a good one still goes in
            after = await _wait_for_evidence(server, row.case_id, 2)
    finally:
        await server.stop()
    assert after[0].sha256 == stored[0].sha256 == hashlib.sha256(original).hexdigest()
    assert (cfg.evidence_dir / after[0].path).read_bytes() == original
    assert [e.path.rsplit("-", 1)[1] for e in after] == ["00001.jpg", "00005.jpg"]
    assert await call_row(server, stranger) is None


async def _wait_for_evidence(server: RunningServer, case_id: int, count: int) -> list[Evidence]:
    async with asyncio.timeout(15):
        while len(found := await evidence(server, case_id)) < count:
            await asyncio.sleep(0.1)
    return found


def test_a_scene_sample_is_checked_on_the_wire() -> None:
    base = json.loads(sample("still", jpeg(90), 1, new_report_id(), new_report_id(), "530102202505140017"))
    for change, detail in [
        ({"data": "not base64!"}, "data is not base64"),
        ({"duration_s": 1.5}, "a sound, and only a sound, carries duration_s"),
        ({"type": "sound"}, "a sound, and only a sound, carries duration_s"),
        ({"data": "A" * 30_000}, "data"),
        ({"seq": 0}, "seq"),
    ]:
        with pytest.raises(ProtocolError, match=detail):
            decode(SceneSample, json.dumps(base | change).encode())
