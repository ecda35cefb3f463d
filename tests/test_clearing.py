"""Clearing the road: the dispatcher's command reaches a real (simulated) in-car unit, which speaks
and blinks it; its GNSS heartbeats confirm it moved off. A unit that does not move off in time
flags the case. On SQLite; the case page's button in headless Chromium."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from playwright.async_api import expect

from device.hal.indicators import Signal
from device.hal.prompts import CLIP_RATE, CLIPS_DIR, clip_file, read_clip, resample_pcm16
from device.reporting import AppState
from protocol.messages import Command, encode
from protocol.topics import Channel, device_topic
from server.users import Role
from tests import pki
from tests.browser import chromium
from tests.cases import case_id, logged_in
from tests.configs import clearing
from tests.conftest import add_user, make_server_config, start_server
from tests.console_pages import login
from tests.devices import RunningDevice, device_config, running_device
from tests.reports import WUHUA, in_car_report
from tests.services import Mosquitto
from tests.wire import mqtt_client, publish_report, raw_device


async def heard(device: RunningDevice, prompt: str, within_s: float = 60) -> None:
    """Wait until the unit's (simulated) speaker has played the clip of ``prompt``; it plays after
    whatever prompts were queued before it."""
    rate = device.hw.audio.sample_rate
    clip = resample_pcm16(read_clip(CLIPS_DIR / clip_file(prompt)), CLIP_RATE, rate)
    middle = clip[len(clip) // 2 : len(clip) // 2 + rate // 5 * 2]  # 0.2 s from its middle
    deadline = time.monotonic() + within_s
    while middle not in device.hw.audio.speaker.last(60):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"{prompt} not played"
        await asyncio.sleep(0.5)


async def test_the_unit_is_told_to_clear_the_road_and_moves_off(broker: Mosquitto, tmp_path: Path) -> None:
    server = await start_server(clearing(make_server_config(tmp_path / "server", broker.port), 120))
    try:
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        await add_user(server.cfg, "officer", Role.OFFICER, ["530102"])
        async with running_device(device_config(tmp_path / "car", broker.port, "car-0900")) as device:
            await device.wait_fix()
            await device.press()
            case_no = await device.case_number()
            wuhua = await logged_in(server, "wuhua")
            cid = await case_id(wuhua, case_no)
            officer = await logged_in(server, "officer")
            assert (await officer.http.post(f"/api/cases/{cid}/clear-road")).status_code == 403

            async with chromium() as browser:
                page = await browser.new_page()
                await login(page, server.url, "wuhua")
                await page.goto(f"{server.url}/case?id={cid}")
                await page.click("#clear-road")
                await expect(page.locator("#clear-state")).to_have_attribute("data-state", "sent")
                deadline = time.monotonic() + 10
                while device.hw.indicators.shown is not Signal.CLEAR_ROAD and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert device.hw.indicators.shown is Signal.CLEAR_ROAD
                assert device.app.machine.state is AppState.IN_CASE
                await heard(device, "clear_road")

                # The simulated unit drives on along its recorded track: its heartbeats show it gone.
                await page.reload()
                await expect(page.locator("#clear-state")).to_have_attribute("data-state", "moved-off", timeout=60_000)
            events = (await wuhua.http.get(f"/api/cases/{cid}/events")).json()["events"]
            actions = [e["action"] for e in events]
            assert "road.clear" in actions and "road.moved_off" in actions
            moved = next(e for e in events if e["action"] == "road.moved_off")
            assert moved["detail"]["distance_m"] >= 30

            # document.ready, as the server sends it on issue: the unit beeps twice.
            buzzer = device.hw.pins.pin(device.app.cfg.gpio.buzzer_pin)
            buzzer.clear_states()
            ready = Command(type="document.ready", case_no=case_no, url=f"{server.url}/verify/abc")
            async with mqtt_client(
                pki.current().server_port(broker.port), "kuaichu-server-test", pki.current().server_tls()
            ) as as_server:
                await as_server.publish(device_topic("car-0900", Channel.CMD), encode(ready), qos=1)
            deadline = time.monotonic() + 10
            while sum(1 for state in buzzer.states if state.state) < 2:
                assert time.monotonic() < deadline, "no double beep"
                await asyncio.sleep(0.05)
            for console in (wuhua, officer):
                await console.close()
    finally:
        await server.stop()


async def test_a_unit_that_does_not_move_off_flags_its_case(broker: Mosquitto, tmp_path: Path) -> None:
    server = await start_server(clearing(make_server_config(tmp_path / "server", broker.port), 1))
    try:
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        # A unit on the wire that sends no heartbeats after the command: it has not moved.
        async with raw_device(broker.port, "car-0901") as (client, acks):
            await publish_report(client, "car-0901", encode(in_car_report("car-0901", WUHUA)))
            case_no = str((await asyncio.wait_for(acks.get(), 10)).case_no)
            wuhua = await logged_in(server, "wuhua")
            cid = await case_id(wuhua, case_no)
            work = (await wuhua.http.post(f"/api/cases/{cid}/clear-road")).json()
            assert work["case"]["clear_sent_at"] is not None and work["case"]["moved_off_at"] is None
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                work = (await wuhua.http.get(f"/api/cases/{cid}/work")).json()
                if work["case"]["clear_overdue_at"]:
                    break
                await asyncio.sleep(0.2)
            assert work["case"]["clear_overdue_at"] is not None
            assert work["case"]["flag"] == "not moved off within 1 s of the clear-the-road command"
            actions = [e["action"] for e in (await wuhua.http.get(f"/api/cases/{cid}/events")).json()["events"]]
            assert actions[-2:] == ["road.clear", "road.not_moved_off"]
            await wuhua.close()
    finally:
        await server.stop()
