"""The dispatcher takes a still and fetches the seconds before the click and before the press from
the workspace's call panel, in headless Chromium: each appears in the gallery as soon as the server
has it, the still at the unit's full resolution, the clip plays, and a reloaded workspace shows them
again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import expect

from device.hal.camera_simulated import still_size
from server.users import Role
from tests.browser import chromium, loaded_width
from tests.conftest import add_user, make_server_config, start_server
from tests.console_pages import login_live
from tests.devices import device_config, running_device
from tests.services import Mosquitto

# The viewer's video has decoded pictures of the clip's own size.
PLAYS_PICTURES = """() => {
  const video = document.querySelector("dialog#viewer video");
  return Boolean(video) && video.videoWidth > 0 && video.webkitVideoDecodedByteCount > 0;
}"""


async def test_take_still_and_last_seconds_fill_the_evidence_strip(broker: Mosquitto, tmp_path: Path) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)
    server = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    car = device_config(tmp_path / "car", broker.port, "car-still-09", camera={"fps": 5}, evidence={"pretrigger_s": 5})
    try:
        async with running_device(car) as device, chromium() as browser:
            await device.wait_fix()
            await asyncio.sleep(3)  # some video from before the press
            await device.press()
            case_no = await device.case_number()
            async with asyncio.timeout(30):
                await device.app.call.connected.wait()

            page = await browser.new_page()
            await login_live(page, server.url, "wuhua")
            cell = page.locator(f'tr[data-case="{case_no}"] td.call')
            await expect(cell).to_have_attribute("data-state", "live")
            await cell.locator("button.answer").click()
            await expect(page.locator("#call-state")).to_have_attribute("data-state", "live", timeout=20000)
            strip = page.locator("#call-evidence")
            await expect(strip.locator("figure")).to_have_count(0)

            await page.click("#call-still")
            await expect(strip.locator("figure.pending")).to_have_count(1)
            still = strip.locator('figure[data-kind="still"] img')
            await expect(still).to_have_count(1, timeout=60000)
            await expect(strip.locator("figure.pending")).to_have_count(0)
            assert await loaded_width(still) == still_size(car.camera.width, car.camera.height)[0]

            await page.click("#call-clip")
            clip = strip.locator('figure[data-kind="clip"] a[download]')
            await expect(clip).to_have_count(1, timeout=60000)
            await page.screenshot(path=str(tmp_path / "evidence.png"), full_page=True)
            # The clip (Motion-JPEG, which no browser decodes) plays in the viewer as WebM.
            await strip.locator('figure[data-kind="clip"] button.thumb').click()
            await page.wait_for_function(PLAYS_PICTURES, timeout=30000)
            await page.keyboard.press("Escape")

            await page.click("#call-report-clip")  # 报警前10秒: the seconds before the press
            await expect(clip).to_have_count(2, timeout=60000)

            # A reloaded workspace shows what the case already has.
            await page.reload()
            await expect(strip.locator('figure[data-kind="still"] img')).to_have_count(1)
            await expect(strip.locator('figure[data-kind="clip"]')).to_have_count(2)
    finally:
        await server.stop()
