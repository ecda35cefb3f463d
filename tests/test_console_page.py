"""The dispatcher's console in a real headless Chromium: login, and the queue filling live."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from playwright.async_api import expect

from device.sim.control import serve_control
from protocol.messages import encode
from server.users import Role
from tests.browser import chromium
from tests.conftest import PASSWORD, RunningServer, add_user, make_server_config, start_server
from tests.console_pages import login_live
from tests.devices import device_config, running_device
from tests.reports import GUANDU, WUHUA, in_car_report, kiosk_report
from tests.services import Mosquitto
from tests.wire import publish_report, raw_device


async def test_dispatcher_logs_in_and_sees_cases_arrive_live(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    async with raw_device(broker.port, "car-0300") as (client, acks):
        # One case before the page opens (loaded over HTTP), one while it is open (pushed live).
        await publish_report(client, "car-0300", encode(in_car_report("car-0300", WUHUA)))
        earlier = await asyncio.wait_for(acks.get(), 10)

        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(server.url + "/console")
            await expect(page).to_have_url(server.url + "/login")  # no session: sent to log in
            await page.fill("#username", "wuhua")
            await page.fill("#password", "wrong password")
            await page.click("#login-button")
            await expect(page.locator("#login-error")).to_be_visible()
            await page.fill("#password", PASSWORD)
            await page.click("#login-button")
            await expect(page).to_have_url(server.url + "/console")
            await expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
            await expect(page.locator(f'tr[data-case="{earlier.case_no}"]')).to_be_visible()

            await publish_report(client, "car-0300", encode(in_car_report("car-0300", WUHUA)))
            live = await asyncio.wait_for(acks.get(), 10)
            async with raw_device(broker.port, "kiosk-0300") as (kiosk, kiosk_acks):
                await publish_report(kiosk, "kiosk-0300", encode(kiosk_report("kiosk-0300", GUANDU)))
                other_unit = await asyncio.wait_for(kiosk_acks.get(), 10)

            row = page.locator(f'tr[data-case="{live.case_no}"]')
            await expect(row).to_be_visible()
            await expect(row.locator(".vehicle")).to_have_text("云A5H821")
            section = page.locator('section.unit[data-unit="530102"]')
            await expect(section.locator("h2")).to_contain_text("五华区交警大队")
            await expect(section.locator("tbody tr")).to_have_count(2)
            # The 官渡 kiosk's case is not this dispatcher's.
            await expect(page.locator(f'tr[data-case="{other_unit.case_no}"]')).to_have_count(0)
            await page.screenshot(path=str(tmp_path / "queue.png"), full_page=True)

            await page.click("#logout")
            await expect(page).to_have_url(server.url + "/login")


async def test_the_demo_panel_presses_a_simulated_device_through_its_gpio(broker: Mosquitto, tmp_path: Path) -> None:
    # Unix socket paths are short; pytest's tmp_path may be too long for one.
    with tempfile.TemporaryDirectory(prefix="kc-") as control_dir:
        server = await start_server(make_server_config(tmp_path / "server", broker.port, control_dir=Path(control_dir)))
        await add_user(server.cfg, "dispatcher", Role.DISPATCHER, ["530102"])
        cfg = device_config(tmp_path / "car", broker.port, "car-demo-09")
        try:
            async with running_device(cfg) as device:
                await device.wait_fix()
                control = await serve_control(Path(control_dir) / "car-demo-09.sock", device.hw.pins, cfg.gpio)
                try:
                    async with chromium() as browser:
                        page = await browser.new_page()
                        await login_live(page, server.url, "dispatcher")
                        await expect(page.locator("#demo-panel")).to_be_visible()
                        await page.click('button[data-press="car-demo-09"]')
                        case_no = await device.case_number()
                        row = page.locator(f'tr[data-case="{case_no}"]')
                        await expect(row).to_be_visible()
                        await expect(row.locator(".vehicle")).to_have_text("云A5H821")
                finally:
                    control.close()
                    await control.wait_closed()
        finally:
            await server.stop()
