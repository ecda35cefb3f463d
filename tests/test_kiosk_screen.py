"""The kiosk's screen: what a walk-up party sees from the press to the determination's QR code.

The browser backend is served to real headless Chromium and its QR code read back from a
screenshot with zbar; the simulated backend runs inside a real (simulated) kiosk that reports to a
real server, and the page it writes is opened in Chromium the same way.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
from pathlib import Path

from PIL import Image
from playwright.async_api import Page, expect
from pyzbar import pyzbar  # type: ignore[import-untyped]

from device.config import DeviceConfig, ScreenSection
from device.hal.indicators import Signal
from device.hal.screen import Screen, Shown, View, render_main
from device.hal.screen_browser import BrowserScreen
from device.hal.screen_simulated import SimulatedScreen
from protocol.messages import Command, encode
from protocol.topics import Channel, device_topic
from server.users import Role
from tests import pki
from tests.browser import chromium
from tests.cases import case_id, logged_in
from tests.conftest import add_user, make_server_config, start_server
from tests.devices import device_config, running_device
from tests.reports import WUHUA
from tests.services import Mosquitto
from tests.wire import mqtt_client

URL = "https://kuaichu.example.cn/verify/7fQ2kX9wLm3pR8sT"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def qr_on(page: Page) -> str:
    """The text of the one QR code the page shows, read from a screenshot of it."""
    shot = await page.locator(".qr").screenshot()
    codes = pyzbar.decode(Image.open(io.BytesIO(shot)))
    assert len(codes) == 1, codes
    text: str = codes[0].data.decode("utf-8")
    return text


async def until(shown: Shown, screen: Screen, within_s: float = 15) -> None:
    deadline = time.monotonic() + within_s
    while screen.shown.shown is not shown:
        assert time.monotonic() < deadline, f"screen shows {screen.shown}, not {shown}"
        await asyncio.sleep(0.05)


def kiosk_config(data_dir: Path, broker_port: int, device_id: str, **screen: object) -> DeviceConfig:
    lon, lat = WUHUA
    site = {"name": "翠湖报警亭", "lat": lat, "lon": lon}
    cfg = device_config(data_dir, broker_port, device_id, device={"kind": "kiosk"}, site=site, screen=screen)
    return cfg.model_copy(update={"vehicle": None})


# --- what is on screen when -------------------------------------------------------------------


async def test_notices_last_their_time_and_a_new_report_takes_the_screen_at_once(tmp_path: Path) -> None:
    screen = SimulatedScreen(ScreenSection(backend="simulated", notice_s=0.3), tmp_path)
    await screen.start()
    try:
        screen.signal(Signal.CASE_OPEN, "5301022026120600012")
        screen.clear_road("5301022026120600012")
        screen.signal(Signal.IDLE, None)  # the case hold ends while the notice is up: it stays
        assert screen.shown == View(Shown.CLEAR_ROAD, "5301022026120600012")
        await until(Shown.IDLE, screen)
        await screen.document("5301022026120600012", URL)
        screen.signal(Signal.REPORTING, None)  # someone else walks up and presses
        assert screen.shown == View(Shown.REPORTING)
        assert [v.shown for v in screen.shown_views] == [
            Shown.IDLE,
            Shown.CASE,
            Shown.CLEAR_ROAD,
            Shown.IDLE,
            Shown.DOCUMENT,
            Shown.REPORTING,
        ]
    finally:
        await screen.stop()
    page = screen.page.read_text("utf-8")
    assert 'data-shown="reporting"' in page and "正在报警" in page


def test_a_case_number_is_written_as_text_never_as_markup() -> None:
    main = render_main(View(Shown.CASE, '<img src=x onerror="alert(1)">'))
    assert "<img" not in main and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in main


# --- the browser backend in Chromium -----------------------------------------------------------


async def test_chromium_follows_the_screen_without_reloading_and_shows_a_readable_qr_code() -> None:
    screen = BrowserScreen(ScreenSection(backend="browser", port=free_port()))
    await screen.start()
    try:
        assert screen.note == ""
        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 800, "height": 480})  # the Pi's 7" display
            await page.goto(screen.address)
            await expect(page.locator("main")).to_have_attribute("data-shown", "idle")
            await page.evaluate("window.loadedOnce = true")  # gone if the page reloads

            screen.signal(Signal.REPORTING, None)
            await expect(page.locator("main")).to_have_attribute("data-shown", "reporting")
            screen.signal(Signal.CASE_OPEN, "5301022026120600012")
            await expect(page.locator(".case-no")).to_contain_text("5301022026120600012")
            await screen.document("5301022026120600012", URL)
            await expect(page.locator("main")).to_have_attribute("data-shown", "document")
            assert await qr_on(page) == URL
            assert await page.evaluate("window.loadedOnce") is True

            # A browser that starts later (its watchdog restarted it) gets the current screen at once.
            late = await browser.new_page()
            await late.goto(screen.address)
            assert await qr_on(late) == URL
    finally:
        await screen.stop()


async def test_the_screen_server_refuses_what_it_does_not_serve() -> None:
    screen = BrowserScreen(ScreenSection(backend="browser", port=free_port()))
    await screen.start()

    async def ask(raw: bytes) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", screen.cfg.port)
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer.decode("utf-8")

    try:
        assert (await ask(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")).startswith("HTTP/1.1 405")
        assert (await ask(b"GET /etc/passwd HTTP/1.1\r\n\r\n")).startswith("HTTP/1.1 404")
        assert "v must be" in await ask(b"GET /view?v=abc HTTP/1.1\r\n\r\n")
        assert (await ask(b"hello\r\n\r\n")).startswith("HTTP/1.1 400")
        assert (await ask(b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n")).startswith("HTTP/1.1 431")
        # A stale version is answered at once with the current screen.
        assert '"v": 1' in await ask(b"GET /view?v=0 HTTP/1.1\r\n\r\n")
        # A poll waiting for the next screen is ended when the unit stops, not kept for its 25 s.
        waiting = asyncio.create_task(ask(b"GET /view?v=1 HTTP/1.1\r\n\r\n"))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await screen.stop()
        assert await asyncio.wait_for(waiting, 5) == ""
    finally:
        await screen.stop()


async def test_a_screen_that_cannot_listen_leaves_the_unit_working_and_says_why() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        screen = BrowserScreen(ScreenSection(backend="browser", port=taken.getsockname()[1]))
        await screen.start()
        try:
            assert screen.note.startswith(f"cannot serve http://127.0.0.1:{screen.cfg.port}/")
            screen.signal(Signal.REPORTING, None)  # still follows, for when it can serve again
            assert screen.shown == View(Shown.REPORTING)
        finally:
            await screen.stop()


# --- a kiosk, end to end ------------------------------------------------------------------------


async def test_a_kiosk_shows_its_case_number_the_clearing_and_the_determinations_qr_code(
    broker: Mosquitto, tmp_path: Path
) -> None:
    server = await start_server(make_server_config(tmp_path / "server", broker.port))
    try:
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        cfg = kiosk_config(tmp_path / "kiosk", broker.port, "kiosk-0950", backend="simulated")
        async with running_device(cfg) as kiosk:
            screen = kiosk.hw.screen
            assert isinstance(screen, SimulatedScreen)
            await until(Shown.IDLE, screen)
            await kiosk.press()
            case_no = await kiosk.case_number()
            await until(Shown.CASE, screen)
            assert screen.shown.case_no == case_no

            wuhua = await logged_in(server, "wuhua")
            cid = await case_id(wuhua, case_no)
            assert (await wuhua.http.post(f"/api/cases/{cid}/clear-road")).status_code == 200
            await until(Shown.CLEAR_ROAD, screen)
            assert screen.shown.case_no == case_no
            await wuhua.close()

            url = f"{server.url}/verify/7fQ2kX9wLm3pR8sT"
            ready = Command(type="document.ready", case_no=case_no, url=url)
            async with mqtt_client(
                pki.current().server_port(broker.port), "kuaichu-server-test", pki.current().server_tls()
            ) as as_server:
                await as_server.publish(device_topic("kiosk-0950", Channel.CMD), encode(ready), qos=1)
            await until(Shown.DOCUMENT, screen)
            deadline = time.monotonic() + 10  # the page is written by the screen's own task
            while 'data-shown="document"' not in screen.page.read_text("utf-8"):
                assert time.monotonic() < deadline, "the document's screen was never written"
                await asyncio.sleep(0.05)
            async with chromium() as browser:
                page = await browser.new_page(viewport={"width": 800, "height": 480})
                await page.goto(screen.page.as_uri())
                await expect(page.locator(".case-no")).to_contain_text(case_no)
                assert await qr_on(page) == url
            assert "screen" not in " ".join(kiosk.hw.health().notes)
    finally:
        await server.stop()
