"""The dispatcher answers a live call in headless Chromium (fake camera and microphone): the page
shows frames that really come from the unit's camera (its frame counter, read back from the
video element), the browser's microphone reaches the unit's speaker, and a reloaded tab rejoins."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.async_api import Page, expect

from device.hal.audio import rms
from device.hal.audio_simulated import SimulatedAudio
from device.sim.scene import read_frame_counter
from server.users import Role
from tests.browser import chromium
from tests.conftest import add_user, make_server_config, start_server
from tests.console_pages import login_live
from tests.devices import device_config, running_device
from tests.services import Mosquitto

GRAB_FRAME = """() => {
  const video = document.getElementById("call-video");
  if (!video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return canvas.toDataURL("image/png");
}"""


async def frame_counter(page: Page) -> int | None:
    data = await page.evaluate(GRAB_FRAME)
    if data is None:
        return None
    image = Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB")
    return read_frame_counter(np.asarray(image))


async def counters(page: Page, within_s: float = 20) -> tuple[int, int]:
    """Two frame counters read off the page a second apart: live video shows them rising."""
    async with asyncio.timeout(within_s):
        while (first := await frame_counter(page)) is None:
            await asyncio.sleep(0.2)
        while True:
            await asyncio.sleep(1)
            later = await frame_counter(page)
            if later is not None and later != first:
                return first, later


async def test_a_dispatcher_answers_sees_the_scene_talks_and_ends_the_call(broker: Mosquitto, tmp_path: Path) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)
    server = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(cfg, "guandu", Role.DISPATCHER, ["530111"])
    car = device_config(tmp_path / "car", broker.port, "car-call-09", camera={"fps": 5})
    try:
        async with running_device(car) as device, chromium() as browser:
            await device.wait_fix()
            await device.press()
            case_no = await device.case_number()
            async with asyncio.timeout(30):
                await device.app.call.connected.wait()
            call_id = device.app.call.call_id

            # Another district's dispatcher sees neither the case nor its call, and cannot join it.
            other = await browser.new_page()
            await login_live(other, server.url, "guandu")
            await expect(other.locator(f'tr[data-case="{case_no}"]')).to_have_count(0)
            sneaky = await other.evaluate(
                """async (callId) => {
                  const ws = new WebSocket(`ws://${location.host}/api/ws`);
                  await new Promise((r) => ws.addEventListener("open", r));
                  const reply = new Promise((r) => ws.addEventListener("message", (e) => {
                    const m = JSON.parse(e.data); if (m.type.startsWith("call.")) r(m);
                  }));
                  ws.send(JSON.stringify({type: "call.join", call_id: callId, sdp: "v=0\\r\\nbogus=1\\r\\n"}));
                  return await reply;
                }""",
                call_id,
            )
            assert sneaky == {"type": "call.error", "call_id": call_id, "reason": "no such call"}

            page = await (await browser.new_context()).new_page()
            await login_live(page, server.url, "wuhua")
            cell = page.locator(f'tr[data-case="{case_no}"] td.call')
            await expect(cell).to_have_attribute("data-state", "live")
            await cell.locator("button.answer").click()
            await expect(page.locator("#call-panel")).to_be_visible()
            await expect(page.locator("#call-state")).to_have_attribute("data-state", "live", timeout=20000)
            first, later = await counters(page)
            assert later > first  # frames rendered by the unit's camera, one after another

            # The browser's (fake) microphone reaches the unit's speaker, only while the mic is open.
            audio = device.hw.audio
            assert isinstance(audio, SimulatedAudio)
            # The mic starts closed: once the unit has finished speaking its own prompts (the case
            # number), its speaker is silent although the call is live.
            async with asyncio.timeout(30):
                while rms(audio.speaker.last(1.5)) > 0.002:
                    await asyncio.sleep(0.2)
            await page.click("#call-mic")
            async with asyncio.timeout(15):
                while rms(audio.speaker.last(1.0)) < 0.01:
                    await asyncio.sleep(0.2)

            await page.click("#call-mute")
            assert await page.evaluate("document.getElementById('call-video').muted") is True
            await page.click("#call-mute")
            assert await page.evaluate("document.getElementById('call-video').muted") is False

            # A reloaded workspace (opened by the queue's answer) answers again by itself and sees
            # the same call live.
            await page.reload()
            await expect(page.locator("#call-state")).to_have_attribute("data-state", "live", timeout=20000)
            await counters(page)
            await page.screenshot(path=str(tmp_path / "call.png"), full_page=True)

            # The queue, open beside the workspace, sees the call end.
            queue = await page.context.new_page()
            await queue.goto(f"{server.url}/console")
            cell = queue.locator(f'tr[data-case="{case_no}"] td.call')
            await expect(cell).to_have_attribute("data-state", "live", timeout=15000)
            await page.click("#call-end")
            await expect(cell).to_have_attribute("data-state", "ended", timeout=15000)
            async with asyncio.timeout(15):
                while device.app.call.call_id is not None:
                    await asyncio.sleep(0.1)
    finally:
        await server.stop()
