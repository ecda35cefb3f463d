"""The review's pages in headless Chromium: a party files from a 360 px wide phone, with a photo,
and follows it; the officer forwards it from the console's /reviews page."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import FilePayload, expect

from server.users import Role
from tests.browser import chromium
from tests.casework_data import seed_registry
from tests.conftest import RunningServer, add_user
from tests.console_pages import login
from tests.review_data import JPEG, determined_over_api, party_client
from tests.services import Mosquitto

PHONES = ("13700005555", "13700006666")


async def test_a_party_files_on_a_phone_and_the_officer_forwards_it(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    await seed_registry(server.cfg.database_url, tmp_path / "registry")
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(server.cfg, "officer", Role.OFFICER, ["530102"])
    _, case_no, _ = await determined_over_api(server, broker, PHONES)
    party = await party_client(server, case_no, PHONES[0])
    cookie = party.cookies["kc_party"]
    await party.aclose()
    async with chromium() as browser:
        phone = await browser.new_context(viewport={"width": 360, "height": 740})
        await phone.add_cookies([{"name": "kc_party", "value": cookie, "url": server.url}])
        page = await phone.new_page()
        await page.goto(server.url + "/p")
        await expect(page.locator("#review-when")).to_contain_text("24时前申请复核")
        await page.click("#review-send")
        await expect(page.locator("#review-error")).to_contain_text("请写明您的复核请求")
        await page.fill("#review-request", "请求撤销原认定，重新认定责任")
        await page.fill("#review-reasons", "对方突然变道，我方已减速避让。")
        photo: FilePayload = {"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": JPEG}
        await page.set_input_files("#review-files", [photo])
        await page.click("#review-send")
        await expect(page.locator("#review-label")).to_have_text("已申请，待转交")
        await expect(page.locator("#review-form")).to_be_hidden()
        await expect(page.locator('#timeline li[data-step="review_requested"]')).to_have_attribute("data-done", "true")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360

        console = await (await browser.new_context()).new_page()
        await login(console, server.url, "officer")
        await console.goto(server.url + "/reviews")
        review = console.locator("section.review")
        await expect(review).to_have_attribute("data-status", "requested")
        await expect(review).to_contain_text("请求撤销原认定")
        await expect(review.locator(".due")).to_contain_text("转交期限")
        await review.locator('[data-action="forward"]').click()
        await expect(review).to_have_attribute("data-status", "forwarded")
        await expect(page.locator("#review-label")).to_have_text("已转交上级")
