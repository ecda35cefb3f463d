"""The dispatcher's camera on a kiosk's screen: the workspace shares it (Chromium's fake camera), the
server forwards the browser's VP8 to the kiosk as it came, and the kiosk's screen shows the pictures
while they come and takes them off when the dispatcher stops. An in-car unit has no screen: its
offer only sends, so the server sends it no video. The browser backend serves the latest picture
beside its page, and Chromium shows it there."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

from aiortc import RTCPeerConnection
from PIL import Image
from playwright.async_api import expect

from device.config import ScreenSection
from device.hal.indicators import Signal
from device.hal.screen import PICTURE, CallPhase, CallView, Screen
from device.hal.screen_browser import BrowserScreen
from device.hal.screen_simulated import SimulatedScreen
from server.calls.forwarding import receives_video
from server.users import Role
from tests.browser import chromium
from tests.cases import case_id, logged_in
from tests.conftest import add_user, make_server_config, start_server
from tests.console_pages import login_live
from tests.devices import kiosk_config, running_device
from tests.services import Mosquitto, free_port
from tests.waiting import wait_for


async def video_shown(screen: Screen, on: bool, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while (call := screen.shown.call) is None or call.video is not on:
        assert time.monotonic() < deadline, f"screen shows {screen.shown}"
        await asyncio.sleep(0.1)


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


async def test_the_workspace_shares_the_dispatchers_camera_on_the_kiosk_screen(
    broker: Mosquitto, tmp_path: Path
) -> None:
    server = await start_server(make_server_config(tmp_path / "server", broker.port))
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    cfg = kiosk_config(tmp_path / "kiosk", broker.port, "kiosk-video-01")
    try:
        async with running_device(cfg) as kiosk, chromium() as browser:
            screen = kiosk.hw.screen
            assert isinstance(screen, SimulatedScreen)
            await kiosk.press()
            case_no = await kiosk.case_number()
            async with asyncio.timeout(30):
                await kiosk.app.call.connected.wait()
            api = await logged_in(server, "wuhua")
            cid = await case_id(api, case_no)
            await api.close()

            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            await login_live(page, server.url, "wuhua")
            await page.goto(f"{server.url}/workspace?id={cid}")
            await expect(page.locator("#call-answer")).to_be_enabled(timeout=20000)  # the call panel is ready
            await page.click("#call-camera")  # before answering: it says what to do
            await expect(page.locator("#error")).to_contain_text("请先接听")
            await page.click("#call-answer")
            await expect(page.locator("#call-state")).to_have_attribute("data-state", "live", timeout=20000)
            assert screen.shown.call is not None and screen.shown.call.video is False

            await page.click("#call-camera")
            await expect(page.locator("#call-camera")).to_have_attribute("data-on", "true")
            await expect(page.locator("#call-self")).to_be_visible()
            await video_shown(screen, True)
            await expect(page.locator("#call-state")).to_have_attribute("data-state", "live", timeout=20000)
            first = screen.pictures

            async def five_more() -> bool:  # they keep coming, several a second
                return screen.pictures >= first + 5

            async def written() -> bool:
                return (screen.output_dir / PICTURE).exists()

            await wait_for("five more of the dispatcher's pictures on the kiosk", five_more, within_s=15)
            await wait_for("the dispatcher's picture written for the screen", written, within_s=5)
            picture = Image.open(io.BytesIO((screen.output_dir / PICTURE).read_bytes()))
            assert picture.format == "JPEG" and picture.width == 640 and picture.height in (360, 480)
            assert '<img class="dispatcher"' in screen.page.read_text(encoding="utf-8")
            # The unit's own picture still reaches the dispatcher on the same connection (joining again
            # with the camera gives the page a new stream, whose first frame takes a moment to decode).
            width = "document.getElementById('call-video').videoWidth"
            await wait_for("the unit's picture at the dispatcher", lambda: page.evaluate(width), within_s=15)

            await page.click("#call-camera")  # stop sharing: off the kiosk's screen
            await expect(page.locator("#call-camera")).to_have_attribute("data-on", "false")
            await video_shown(screen, False)
            assert '<img class="dispatcher"' not in screen.page.read_text(encoding="utf-8")
    finally:
        await server.stop()


async def test_only_a_unit_with_a_screen_offers_to_receive_video() -> None:
    from aiortc import VideoStreamTrack

    kiosk, car = RTCPeerConnection(), RTCPeerConnection()
    try:
        kiosk.addTrack(VideoStreamTrack())
        car.addTransceiver(VideoStreamTrack(), direction="sendonly")
        await kiosk.setLocalDescription(await kiosk.createOffer())
        await car.setLocalDescription(await car.createOffer())
        assert receives_video(kiosk.localDescription.sdp)
        assert not receives_video(car.localDescription.sdp)
        assert not receives_video("v=0\r\nnot an offer")
    finally:
        await kiosk.close()
        await car.close()


async def test_the_browser_screen_serves_the_latest_picture_and_chromium_shows_it() -> None:
    screen = BrowserScreen(ScreenSection(backend="browser", port=free_port()))
    await screen.start()
    try:
        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 800, "height": 480})
            await page.goto(screen.address)
            screen.signal(Signal.CASE_OPEN, "5301022026120600012")
            screen.picture(jpeg(320, 180))
            screen.call(CallView(CallPhase.LIVE, ("张晓明",), 0, video=True))
            picture = page.locator("img.dispatcher")
            await expect(picture).to_be_visible()
            await page.wait_for_function("document.querySelector('img.dispatcher').naturalWidth === 320")
            screen.picture(jpeg(480, 270))  # the next one replaces it without a reload
            await page.wait_for_function("document.querySelector('img.dispatcher').naturalWidth === 480")
            screen.call(CallView(CallPhase.LIVE, ("张晓明",), 0, video=False))
            await expect(picture).to_have_count(0)
    finally:
        await screen.stop()
