"""The case workspace on a 1920×1080 monitor, in headless Chromium with a simulated in-car unit:
the queue's "answer" opens it and the call is answered there; every panel is on the screen at
once; the keys answer, take a still, mark a statement and clear the road (not while typing); the
still appears in the gallery; the statement is saved over the call's recording; and the officer
plays that statement's span of the recording on the determination page."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import Page, ViewportSize, expect

from server.users import Role
from tests.browser import chromium, loaded_width
from tests.cases import case_id, logged_in
from tests.casework_data import DRIVER_A, driver
from tests.conftest import add_user, make_server_config, start_server
from tests.console_pages import login, login_live
from tests.devices import device_config, running_device
from tests.services import Mosquitto

SCREEN: ViewportSize = {"width": 1920, "height": 1080}
PANELS = [
    *("#call-panel", "#gallery-section", "#summary", "#parties-section", "#plates-panel"),
    *("#facts-section", "#statements-section", "#actions"),
]

# Each panel wholly inside the window, and the page itself not scrollable either way.
LAID_OUT = """(panels) => {
  const out = panels.filter((p) => {
    const r = document.querySelector(p).getBoundingClientRect();
    return r.width === 0 || r.height === 0 || r.left < 0 || r.top < 0 || r.right > innerWidth || r.bottom > innerHeight;
  });
  const page = document.scrollingElement;
  if (page.scrollHeight > innerHeight || page.scrollWidth > innerWidth) out.push("page scrolls");
  return out;
}"""


async def press(page: Page, key: str) -> None:
    """A key pressed with no field focused, as a dispatcher does between typing."""
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await page.keyboard.press(key)


async def test_one_workspace_holds_the_call_and_the_case_and_the_officer_plays_a_statement(
    broker: Mosquitto, tmp_path: Path
) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)
    cfg = cfg.model_copy(update={"calls": cfg.calls.model_copy(update={"segment_s": 2})})
    server = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(cfg, "officer", Role.OFFICER, ["530102"])
    car = device_config(tmp_path / "car", broker.port, "car-ws-01", camera={"fps": 5})
    try:
        async with running_device(car) as device, chromium() as browser:
            await device.wait_fix()
            await device.press()
            case_no = await device.case_number()
            async with asyncio.timeout(30):
                await device.app.call.connected.wait()
            api = await logged_in(server, "wuhua")
            cid = await case_id(api, case_no)
            assert (await api.http.post(f"/api/cases/{cid}/parties", json=driver(DRIVER_A))).status_code == 201
            await api.close()

            page = await browser.new_page(viewport=SCREEN)
            await login_live(page, server.url, "wuhua")
            cell = page.locator(f'tr[data-case="{case_no}"] td.call')
            await expect(cell).to_have_attribute("data-state", "live")
            await cell.locator("button.answer").click()  # opens the workspace, which answers
            await expect(page).to_have_url(f"{server.url}/workspace?id={cid}&answer={device.app.call.call_id}")
            await expect(page.locator("#case-no")).to_have_text(case_no)
            await expect(page.locator("#call-state")).to_have_attribute("data-state", "live", timeout=20000)
            await expect(page.locator("#call-answer")).to_be_disabled()
            assert await page.evaluate(LAID_OUT, PANELS) == []
            for key in ("A", "S", "B", "E", "C"):  # each frequent action shows its key
                await expect(page.locator(f"button[data-key='{key.lower()}'] kbd")).to_have_text(key)

            # Typing in a field is typing: the letters of the keys go into the field, nothing fires.
            await page.click("#f-place")
            await page.keyboard.type("sbec")
            await expect(page.locator("#f-place")).to_have_value("sbec")
            await expect(page.locator("#call-evidence figure")).to_have_count(0)
            await expect(page.locator("#s-start")).to_have_value("")
            await expect(page.locator("#clear-state")).to_have_attribute("data-state", "")

            # S takes a still: it appears in the gallery and opens full size.
            await press(page, "s")
            still = page.locator('#call-evidence figure[data-kind="still"] img')
            await expect(still).to_have_count(1, timeout=60000)
            assert await loaded_width(still) > 0
            await still.click()
            await expect(page.locator("dialog#viewer img")).to_be_visible()
            await page.keyboard.press("Escape")
            await expect(page.locator("dialog#viewer")).to_be_hidden()

            # B and E mark the statement over the live call; saved once the recording covers it.
            await press(page, "b")
            await expect(page.locator("#s-start")).not_to_have_value("")
            await asyncio.sleep(1.5)
            await press(page, "e")
            await expect(page.locator("#s-end")).not_to_have_value("")
            await page.fill("#s-summary", "甲：前车急刹，我未保持安全距离。")
            await asyncio.sleep(cfg.calls.segment_s + 2)  # the segment holding the end is closed and kept
            await page.click("#s-save")
            await expect(page.locator("#statements li")).to_have_count(1)
            await expect(page.locator("#statements li")).to_contain_text("前车急刹")

            # C tells the parties to clear the road.
            await press(page, "c")
            await expect(page.locator("#clear-state")).to_have_attribute("data-state", "sent")
            await page.screenshot(path=str(tmp_path / "workspace.png"))

            officer = await (await browser.new_context(viewport=SCREEN)).new_page()
            await login(officer, server.url, "officer")
            await officer.goto(f"{server.url}/determine?id={cid}")
            await expect(officer.locator('#evidence figure[data-kind="still"] img')).to_be_visible()
            await expect(officer.locator('#evidence figure[data-kind="recording"]').first).to_be_visible()
            await officer.locator("#statements li button.play-span").click()
            player = officer.locator("dialog#viewer video")
            await expect(player).to_have_attribute("data-state", "playing", timeout=15000)
            await expect(player).to_have_attribute("data-state", "done", timeout=15000)
            await officer.screenshot(path=str(tmp_path / "determine.png"))
    finally:
        await server.stop()
