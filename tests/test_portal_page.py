"""A party on a 360 px phone in headless Chromium: the SMS link, the code, the progress moving as the
dispatcher and the officer work (no reload), the determination downloaded and printed."""

from __future__ import annotations

import io
import re
from pathlib import Path

from playwright.async_api import ViewportSize, expect
from pypdf import PdfReader

from tests.browser import chromium
from tests.cases import logged_in
from tests.casework_data import decision
from tests.conftest import RunningServer
from tests.parties import CODE, PHONE_B, case_with_parties, link_token, stack, texts_to
from tests.services import Mosquitto
from tests.sms_provider import Provider

__all__ = ["stack"]  # the fixture, shared with the API tests

PHONE: ViewportSize = {"width": 360, "height": 740}


async def test_a_party_follows_the_case_from_the_link_to_the_printed_determination(
    stack: tuple[RunningServer, Provider, Mosquitto], tmp_path: Path
) -> None:
    server, provider, broker = stack
    case_no, cid = await case_with_parties(server, broker)
    (link_sms,) = await texts_to(provider, PHONE_B, "/p/")
    async with chromium() as browser:
        context = await browser.new_context(viewport=PHONE, is_mobile=True, accept_downloads=True)
        phone = await context.new_page()
        await phone.goto(f"{server.url}/p/{link_token(link_sms)}")
        await expect(phone.locator("#login-case")).to_contain_text(case_no)
        await expect(phone.locator("#login-case")).to_contain_text("139****0001")
        await expect(phone.locator("#phone")).to_be_hidden()
        await phone.click("#log-in")
        await expect(phone.locator("#login-error")).to_contain_text("6位验证码")
        await phone.click("#send-code")
        await expect(phone.locator("#login-message")).to_contain_text("验证码已发送")
        await expect(phone.locator("#send-code")).to_be_disabled()
        codes = await texts_to(provider, PHONE_B, CODE)
        code = re.search(CODE, codes[-1])
        assert code
        await phone.fill("#code", code.group(1))
        await phone.click("#log-in")
        await expect(phone.locator("#case-no-shown")).to_have_text(case_no)
        await expect(phone.locator('#timeline li[data-step="reported"]')).to_have_attribute("data-done", "true")
        await expect(phone.locator('#timeline li[data-step="handed_over"]')).to_have_attribute("data-done", "false")
        await expect(phone.locator('.party[data-mine="false"] dd').nth(1)).to_have_text(re.compile(r"^\d{4}\*+\d{3}"))
        # Nothing overflows the phone's width.
        assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await phone.screenshot(path=str(tmp_path / "party-before.png"), full_page=True)

        # The dispatcher runs the checks and hands over; the officer decides: the phone follows.
        wuhua = await logged_in(server, "wuhua")
        assert (await wuhua.http.post(f"/api/cases/{cid}/checks")).status_code == 200
        assert (await wuhua.http.post(f"/api/cases/{cid}/hand-over")).status_code == 200
        await wuhua.close()
        await expect(phone.locator('#timeline li[data-step="handed_over"]')).to_have_attribute("data-done", "true")
        await expect(phone.locator("#now-title")).to_have_text("已移交民警认定")
        parties = (await (await logged_in(server, "officer")).http.get(f"/api/cases/{cid}/work")).json()["parties"]
        officer = await logged_in(server, "officer")
        issued = await officer.http.post(f"/api/cases/{cid}/determinations", json=decision([p["id"] for p in parties]))
        assert issued.status_code == 201, issued.text
        await officer.close()
        version = phone.locator('#versions li[data-version="1"]')
        await expect(version).to_contain_text("现行有效", timeout=30_000)
        await expect(phone.locator('#timeline li[data-step="delivered"]')).to_have_attribute(
            "data-done", "true", timeout=20_000
        )
        await phone.screenshot(path=str(tmp_path / "party-after.png"), full_page=True)

        async with phone.expect_download() as download_info:
            await version.get_by_text("下载认定书").click()
        download = await download_info.value
        saved = tmp_path / "mine.pdf"
        await download.save_as(saved)
        assert saved.read_bytes().startswith(b"%PDF")
        assert download.suggested_filename == f"{case_no}-v1.pdf"

        await version.get_by_text("打印认定书").click()
        await expect(phone.locator("#sheet")).to_be_visible()
        await expect(phone.locator("#sheet")).to_contain_text("道路交通事故认定书（简易程序）")
        await expect(phone.locator("#sheet")).to_contain_text(case_no)
        await expect(phone.locator("#sheet img.qr")).to_be_visible()
        await phone.emulate_media(media="print")
        await expect(phone.locator(".toolbar")).to_be_hidden()
        printed = PdfReader(io.BytesIO(await phone.pdf(format="A4")))
        assert len(printed.pages) <= 2
        text = "".join(page.extract_text() for page in printed.pages)
        assert case_no in text.replace(" ", "")
