"""The fleet page in a real headless Chromium: an admin sees every device's presence, heartbeat,
firmware, health and last self-test, with an alert for a device offline too long; others may not."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import expect

from protocol.ids import new_report_id
from protocol.messages import CheckStatus, DeviceKind, Presence, SelfTest, SelfTestCheck, encode
from protocol.topics import Channel, device_topic
from server.users import Role
from tests.browser import chromium
from tests.conftest import PASSWORD, add_user, make_server_config, start_server
from tests.console_pages import login_admin
from tests.devices import device_config, running_device
from tests.services import Mosquitto
from tests.wire import Console, raw_device

ALERT_MIN = 0.05  # 3 s: long enough for the running unit's 1 s heartbeats, short for a test


def _selftest() -> SelfTest:
    started = datetime.now(UTC) - timedelta(minutes=2)
    return SelfTest(
        run_id=new_report_id(),
        device_kind=DeviceKind.KIOSK,
        firmware="0.1.0",
        started_at=started,
        finished_at=started + timedelta(seconds=50),
        passed=False,
        checks=[
            SelfTestCheck(name="camera", status=CheckStatus.PASS, detail="640x480 frame in 90 ms", duration_ms=90),
            SelfTestCheck(name="audio_loop", status=CheckStatus.FAIL, detail="tone not heard", duration_ms=3000),
            SelfTestCheck(name="hazard", status=CheckStatus.SKIP, detail="a kiosk has no hazard line", duration_ms=0),
        ],
    )


async def test_an_admin_sees_the_fleet_live_with_alerts_and_a_dispatcher_may_not(
    broker: Mosquitto, tmp_path: Path
) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)
    cfg = cfg.model_copy(update={"fleet": cfg.fleet.model_copy(update={"offline_alert_min": ALERT_MIN})})
    server = await start_server(cfg)
    await add_user(cfg, "fleet-admin", Role.ADMIN, [])
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    admin = Console(server.url)
    try:
        await admin.login("fleet-admin", PASSWORD)
        registration = {"kind": "in-car", "cert_fingerprint": "cd" * 32, "vehicle": {"plate": "云A7Q310"}}
        assert (await admin.http.put("/api/devices/car-never-01", json=registration)).status_code == 200
        # A kiosk that ran its self-test, said it was online, then went offline.
        async with raw_device(broker.port, "kiosk-fleet-01") as (kiosk, _):
            state = device_topic("kiosk-fleet-01", Channel.STATE)
            await kiosk.publish(device_topic("kiosk-fleet-01", Channel.SELFTEST), encode(_selftest()), qos=1)
            # Presence travels on another subscription than the self-test: wait until the server
            # knows the kiosk (from its self-test) so that its presence is not taken for a stranger's.
            async with asyncio.timeout(10):
                while (await admin.http.get("/api/devices/kiosk-fleet-01")).status_code != 200:
                    await asyncio.sleep(0.1)
            await kiosk.publish(state, encode(Presence(state="online", at=datetime.now(UTC))), qos=1, retain=True)
            await kiosk.publish(state, encode(Presence(state="offline", at=datetime.now(UTC))), qos=1, retain=True)

        car_cfg = device_config(tmp_path / "car", broker.port, "car-fleet-01")
        async with running_device(car_cfg) as car, chromium() as browser:
            page = await browser.new_page()
            await login_admin(page, server.url, "fleet-admin")
            await page.click("#fleet-link")
            await expect(page).to_have_url(server.url + "/fleet")

            car_row = page.locator('tr[data-device="car-fleet-01"]')
            await expect(car_row.locator(".presence .badge")).to_have_text("在线 online", timeout=15000)
            await expect(car_row.locator(".registration")).to_have_text("未登记 unregistered")
            await expect(car_row.locator(".firmware")).not_to_have_text("—")
            await expect(car_row.locator(".health")).to_contain_text("camera ok")
            await expect(car_row.locator(".health")).to_contain_text("plate_reader ok", timeout=15000)
            await expect(car_row.locator(".heartbeat")).to_contain_text("ago")
            await expect(car_row.locator(".selftest")).to_have_text("未自检 never run")
            await expect(car_row).not_to_have_class("alert")

            kiosk_row = page.locator('tr[data-device="kiosk-fleet-01"]')
            await expect(kiosk_row.locator(".presence .badge")).to_have_text("离线 offline")
            await expect(kiosk_row.locator(".selftest .verdict")).to_have_text("未通过 FAIL")
            await expect(kiosk_row.locator(".selftest .failed")).to_have_text("audio_loop")
            await kiosk_row.locator(".selftest summary").click()
            await expect(kiosk_row.locator(".selftest li.check-skip")).to_contain_text("a kiosk has no hazard line")

            # Offline (and never heard from) for longer than the alert time: flagged, and listed on top.
            await expect(kiosk_row).to_have_class("alert", timeout=15000)
            await expect(page.locator('tr[data-device="car-never-01"]')).to_have_class("alert", timeout=15000)
            await expect(page.locator("#alerts")).to_be_visible()
            await expect(page.locator('#alert-list li[data-device="kiosk-fleet-01"]')).to_contain_text("离线 offline")
            await expect(page.locator("#devices tr").first).to_have_class("alert")

            # The page follows the fleet by itself: the car stops cleanly and shows offline.
            await car.stop()
            await expect(car_row.locator(".presence .badge")).to_have_text("离线 offline", timeout=15000)

            await page.fill("#filter", "云A7Q310")
            await expect(page.locator("#devices tr")).to_have_count(1)
            await page.screenshot(path=str(tmp_path / "fleet.png"), full_page=True)

            # A dispatcher gets neither the link nor the page.
            await page.click("#logout")
            await page.fill("#username", "wuhua")
            await page.fill("#password", PASSWORD)
            await page.click("#login-button")
            await expect(page).to_have_url(server.url + "/console")
            await expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
            await expect(page.locator("#fleet-link")).to_be_hidden()
            await page.goto(server.url + "/fleet")
            await expect(page.locator("#forbidden")).to_be_visible()
            await expect(page.locator("#devices tr")).to_have_count(0)
    finally:
        await admin.close()
        await server.stop()
