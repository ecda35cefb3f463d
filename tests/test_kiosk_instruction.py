"""The dispatcher's instruction reaches the kiosk's screen: ``POST /api/cases/{id}/instruct`` sends
``instruction`` on the unit's cmd topic, the screen shows it under the case number, and the case's
log keeps it. A case handed over is past the scene: the route refuses, and the unit is idle. The
workspace sends them from its call panel, a common one picked or one typed, and lists what was sent."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from playwright.async_api import expect

from device.hal.screen import Shown
from device.hal.screen_simulated import SimulatedScreen
from server.users import Role
from tests.browser import chromium
from tests.cases import case_id, hand_over, logged_in
from tests.casework_data import seed_registry
from tests.conftest import add_user, make_server_config, start_server
from tests.console_pages import login
from tests.devices import kiosk_config, running_device
from tests.services import Mosquitto

TEXT = "请把车辆移到右侧应急车道外，人员站到护栏外等候。"


async def shown_instruction(screen: SimulatedScreen, text: str) -> None:
    deadline = time.monotonic() + 10
    while screen.shown.instruction != text:
        assert time.monotonic() < deadline, f"screen shows {screen.shown}"
        await asyncio.sleep(0.05)


async def test_an_instruction_shows_on_the_kiosk_and_stays_in_the_log(broker: Mosquitto, tmp_path: Path) -> None:
    server = await start_server(make_server_config(tmp_path / "server", broker.port))
    cfg = kiosk_config(tmp_path / "kiosk", broker.port, "kiosk-say-01")
    try:
        await seed_registry(server.cfg.database_url, tmp_path / "registry")
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        async with running_device(cfg) as kiosk:
            screen = kiosk.hw.screen
            assert isinstance(screen, SimulatedScreen)
            await kiosk.press()
            case_no = await kiosk.case_number()
            wuhua = await logged_in(server, "wuhua")
            cid = await case_id(wuhua, case_no)
            answer = await wuhua.http.post(f"/api/cases/{cid}/instruct", json={"text": f"  {TEXT} "})
            assert answer.status_code == 200, answer.text
            assert answer.json()["text"] == TEXT
            await shown_instruction(screen, TEXT)
            shown = screen.shown
            assert shown.shown is Shown.CASE and shown.case_no == case_no
            assert shown.url == f"https://kuaichu.example.cn/p?case={case_no}" and shown.qr is not None
            log = (await wuhua.http.get(f"/api/cases/{cid}/events")).json()
            assert any(e["action"] == "unit.instruction" and e["detail"]["text"] == TEXT for e in log["events"])
            assert (await wuhua.http.post(f"/api/cases/{cid}/instruct", json={"text": ""})).status_code == 422

            await hand_over(wuhua, cid)
            late = await wuhua.http.post(f"/api/cases/{cid}/instruct", json={"text": TEXT})
            assert late.status_code == 409 and "设备不再显示本案" in late.json()["detail"]
            deadline = time.monotonic() + 10
            while screen.shown.shown is not Shown.IDLE:
                assert time.monotonic() < deadline, f"screen shows {screen.shown}"
                await asyncio.sleep(0.05)
            await wuhua.close()
    finally:
        await server.stop()


async def test_the_workspace_sends_a_common_or_typed_instruction_and_lists_it(
    broker: Mosquitto, tmp_path: Path
) -> None:
    server = await start_server(make_server_config(tmp_path / "server", broker.port))
    try:
        await seed_registry(server.cfg.database_url, tmp_path / "registry")
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        async with (
            running_device(kiosk_config(tmp_path / "kiosk", broker.port, "kiosk-say-02")) as unit,
            chromium() as browser,
        ):
            screen = unit.hw.screen
            assert isinstance(screen, SimulatedScreen)
            await unit.press()
            case_no = await unit.case_number()
            api = await logged_in(server, "wuhua")
            cid = await case_id(api, case_no)
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            await login(page, server.url, "wuhua")
            await page.goto(f"{server.url}/workspace?id={cid}")
            await expect(page.locator("#case-no")).to_have_text(case_no)
            await expect(page.locator("#instructions")).to_be_visible()
            await expect(page.locator("#instructions-none")).to_be_visible()

            common = "请开启危险报警闪光灯，在来车方向放置三角警告牌。"
            await page.select_option("#instruction-common", common)
            await expect(page.locator("#instruction-text")).to_have_value(common)
            await page.click("#instruction-send")
            await shown_instruction(screen, common)
            await expect(page.locator("#instruction-state")).to_have_attribute("data-state", "sent")
            await expect(page.locator("#instruction-text")).to_have_value("")
            await expect(page.locator(f'#instructions-sent li[data-instruction="{common}"]')).to_be_visible()
            await expect(page.locator("#instructions-none")).to_be_hidden()

            # Nothing typed: the browser's own required check stops it; a blank sent anyway is
            # refused in Chinese next to the box.
            await page.fill("#instruction-text", "   ")
            await page.click("#instruction-send")
            await expect(page.locator("#instruction-form .field-error")).to_contain_text("请")
            assert screen.shown.instruction == common

            await page.fill("#instruction-text", TEXT)
            await page.keyboard.press("Enter")
            await shown_instruction(screen, TEXT)
            await expect(page.locator("#instructions-sent li")).to_have_count(2)
            await expect(page.locator("#instructions-sent li").first).to_have_attribute("data-instruction", TEXT)
            # Beijing time beside each one, whatever the browser's own zone.
            stamp = await page.locator("#instructions-sent li time").first.text_content()
            assert stamp and len(stamp.split(":")) == 3

            await hand_over(api, cid)
            await expect(page.locator("#instruction-send")).to_be_disabled()  # the feed redraws the case
            await expect(page.locator("#instructions-closed")).to_be_visible()
            await api.close()
    finally:
        await server.stop()
