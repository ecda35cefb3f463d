"""Phones in calls, in headless Chromium with a fake camera and microphone, on a 360 px phone with
a set position: a driver with no unit reports from the web app and the 五华 dispatcher answers and
sees the phone's video, and a still of it is kept with the reporting party; a second party joins a
unit's live call from the link in their SMS, the dispatcher's page shows their tile, a still of it
is stored as evidence with that party, and the dispatcher mutes and drops them."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.browser import chromium
from tests.cases import case_id, logged_in
from tests.casework_data import DRIVER_A, DRIVER_B, driver
from tests.conftest import RunningServer
from tests.console_pages import login_live
from tests.devices import device_config, running_device
from tests.parties import CODE, PHONE_B, link_token, stack, texts_to
from tests.phones import CUIHU, code_for
from tests.services import Mosquitto
from tests.sms_provider import Provider

__all__ = ["stack"]  # the fixture

PHONE: ViewportSize = {"width": 360, "height": 740}
REPORTER = "13700004441"
VIDEO_PLAYS = """(selector) => {
  const video = document.querySelector(selector);
  return Boolean(video && video.videoWidth > 0 && video.currentTime > 0.5);
}"""


async def phone_context(browser: Browser) -> BrowserContext:
    return await browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        geolocation={"latitude": CUIHU[0], "longitude": CUIHU[1], "accuracy": 30},
        permissions=["geolocation", "camera", "microphone"],
    )


async def plays(page: Page, selector: str, within_s: float = 30) -> None:
    async with asyncio.timeout(within_s):
        while not await page.evaluate(VIDEO_PLAYS, selector):
            await asyncio.sleep(0.3)


async def evidence_of(server: RunningServer, cid: int, kind: str, count: int = 1) -> list[dict[str, Any]]:
    wuhua = await logged_in(server, "wuhua")
    try:
        async with asyncio.timeout(30):
            while True:
                found = [e for e in (await wuhua.http.get(f"/api/cases/{cid}/evidence")).json() if e["kind"] == kind]
                if len(found) >= count:
                    return found
                await asyncio.sleep(0.5)
    finally:
        await wuhua.close()


async def test_a_phone_reports_and_the_dispatcher_answers_its_video(
    stack: tuple[RunningServer, Provider, Mosquitto], tmp_path: Path
) -> None:
    server, provider, _broker = stack
    async with chromium() as browser:
        console = await browser.new_page()
        await login_live(console, server.url, "wuhua")

        phone = await (await phone_context(browser)).new_page()
        await phone.goto(f"{server.url}/p")
        await expect(phone.locator("#report-box")).to_be_visible()
        await phone.fill("#report-phone", REPORTER)
        await phone.click("#report-send-code")
        await expect(phone.locator("#report-message")).to_contain_text("验证码已发送")
        await phone.fill("#report-code", await code_for(provider, REPORTER))
        await phone.click("#report-log-in")
        await phone.click("#report-button")
        await expect(phone.locator("#case-no-shown")).to_have_text(re.compile(r"^530102\d+"), timeout=20_000)
        case_no = await phone.locator("#case-no-shown").text_content()
        assert case_no
        await expect(phone.locator("#call-box")).to_have_attribute("data-state", "live", timeout=30_000)
        assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        row = console.locator(f'tr[data-case="{case_no}"]')
        await expect(row.locator("td.device")).to_have_text(f"手机报警 {REPORTER}")
        await row.locator("td.call button.answer").click(timeout=20_000)  # the case's workspace answers
        await expect(console.locator("#call-state")).to_have_attribute("data-state", "live", timeout=20_000)
        await plays(console, "#call-video")
        await expect(phone.locator("#call-note")).to_contain_text("调度员能看到", timeout=10_000)
        await phone.screenshot(path=str(tmp_path / "phone-report.png"), full_page=True)

        await console.click("#call-still")
        await expect(console.locator('#call-evidence figure[data-kind="still"]')).to_be_visible(timeout=20_000)
        wuhua = await logged_in(server, "wuhua")
        cid = await case_id(wuhua, case_no)
        await wuhua.close()
        (still,) = await evidence_of(server, cid, "still")
        work = await (await logged_in(server, "wuhua")).http.get(f"/api/cases/{cid}/work")
        (reporter,) = work.json()["parties"]
        assert still["party_id"] == reporter["id"] and still["operator_id"] is not None
        await console.click("#call-end")
        recordings = await evidence_of(server, cid, "recording")
        assert all(r["sha256"] for r in recordings)


async def test_a_second_party_joins_a_units_call_from_a_phone(
    stack: tuple[RunningServer, Provider, Mosquitto], tmp_path: Path
) -> None:
    server, provider, broker = stack
    car = device_config(tmp_path / "car", broker.port, "car-call-15", camera={"fps": 5})
    async with running_device(car) as device, chromium() as browser:
        await device.wait_fix()
        await device.press()
        case_no = await device.case_number()
        async with asyncio.timeout(30):
            await device.app.call.connected.wait()
        wuhua = await logged_in(server, "wuhua")
        cid = await case_id(wuhua, case_no)
        for d, phone_no in ((DRIVER_A, "13812348000"), (DRIVER_B, PHONE_B)):
            saved = await wuhua.http.post(f"/api/cases/{cid}/parties", json=driver(d, phone=phone_no))
            assert saved.status_code == 201, saved.text
        party_b = saved.json()["id"]
        await wuhua.close()

        console = await browser.new_page()
        await login_live(console, server.url, "wuhua")
        await console.locator(f'tr[data-case="{case_no}"] td.call button.answer').click(timeout=20_000)
        await expect(console.locator("#call-state")).to_have_attribute("data-state", "live", timeout=20_000)

        (link_sms,) = await texts_to(provider, PHONE_B, "/p/")
        phone = await (await phone_context(browser)).new_page()
        await phone.goto(f"{server.url}/p/{link_token(link_sms)}")
        await phone.click("#send-code")
        codes = await texts_to(provider, PHONE_B, CODE)
        found = re.search(CODE, codes[-1])
        assert found
        await phone.fill("#code", found.group(1))
        await phone.click("#log-in")
        await expect(phone.locator("#call-join")).to_have_text("加入视频通话", timeout=15_000)
        await phone.click("#call-join")
        await expect(phone.locator("#call-box")).to_have_attribute("data-state", "live", timeout=30_000)
        # The phone hears the dispatcher: the server's voice track plays on the phone's speaker.
        voice = "document.getElementById('call-voice').srcObject.getAudioTracks()[0].readyState"
        assert await phone.evaluate(voice) == "live"

        tile = console.locator(f'figure.participant[data-party="{party_b}"]')
        await expect(tile.locator("figcaption")).to_contain_text("乙方", timeout=20_000)
        await plays(console, f'figure.participant[data-party="{party_b}"] video')
        await plays(console, "#call-video")  # the unit's own picture goes on beside it
        await console.screenshot(path=str(tmp_path / "tiles.png"), full_page=True)

        await tile.locator('[data-act="still"]').click()
        (still,) = await evidence_of(server, cid, "still")
        assert still["party_id"] == party_b

        await tile.locator('[data-act="mute"]').click()
        await expect(tile).to_have_attribute("data-muted", "true")
        await expect(phone.locator("#call-muted")).to_be_visible(timeout=10_000)
        await tile.locator('[data-act="drop"]').click()
        await expect(tile).to_have_count(0, timeout=10_000)
        await expect(phone.locator("#call-note")).to_contain_text("调度员已结束您的视频连接", timeout=15_000)
        recordings = await evidence_of(server, cid, "recording")
        assert [r for r in recordings if r["party_id"] == party_b]  # the phone's own recording, kept
        wuhua = await logged_in(server, "wuhua")
        log = (await wuhua.http.get(f"/api/cases/{cid}/events")).json()
        actions = [e["action"] for e in log["events"]]
        assert {"call.party_joined", "call.party_muted", "call.party_dropped"} <= set(actions)
        await wuhua.close()
        await console.click("#call-end")
