"""The case page in headless Chromium: a dispatcher enters the parties and facts, runs the
checks, sees bad input refused with its reason, and hands the case to the officers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import expect

from protocol.messages import encode
from server.users import Role
from tests.browser import chromium
from tests.casework_data import DRIVER_A, DRIVER_B, seed_registry
from tests.conftest import RunningServer, add_user
from tests.console_pages import fill_driver, login
from tests.reports import WUHUA, in_car_report
from tests.services import Mosquitto
from tests.wire import publish_report, raw_device


async def test_dispatcher_completes_a_case_in_the_browser(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    await seed_registry(server.cfg.database_url, tmp_path / "registry")
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    async with raw_device(broker.port, "car-0700") as (client, acks):
        await publish_report(client, "car-0700", encode(in_car_report("car-0700", WUHUA)))
        case_no = (await asyncio.wait_for(acks.get(), 10)).case_no

    async with chromium() as browser:
        page = await browser.new_page()
        await login(page, server.url, "wuhua")
        await page.click(f'tr[data-case="{case_no}"] .case-no a')
        await expect(page.locator("#case-no")).to_have_text(str(case_no))

        await fill_driver(page, DRIVER_A, use_read=True)
        await expect(page.locator("#p-plate")).to_have_value("云A5H821")
        await page.fill("#p-id-number", "530402196505056621")  # one digit wrong
        await page.click("#p-save")
        # The refusal is shown next to the field it is about, not in the page's error box.
        id_problem = page.locator('#party-form .field-error[data-field="id_number"]')
        await expect(id_problem).to_contain_text("check character")
        await expect(page.locator("#p-id-number")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#error")).to_be_hidden()
        await expect(page.locator("#parties tr")).to_have_count(0)
        await page.fill("#p-id-number", DRIVER_A["id_number"])
        await page.click("#p-save")
        await expect(page.locator('tr[data-party="甲"] .plate')).to_contain_text("识别 read 云A5H821")
        await expect(page.locator("#error")).to_be_hidden()
        await expect(page.locator("#party-form .field-error")).to_have_count(0)

        await fill_driver(page, DRIVER_B)
        await page.fill("#p-plate", "云A58")
        await page.click("#p-save")
        await expect(page.locator('#party-form .field-error[data-field="plate"]')).to_contain_text("not a valid plate")
        await page.fill("#p-plate", DRIVER_B["plate"])
        await page.click("#p-save")
        await expect(page.locator('tr[data-party="乙"]')).to_be_visible()

        await page.fill("#f-place", "五华区翠湖南路")
        await page.click("#f-save")
        await expect(page.locator("#eligibility")).to_have_attribute("data-verdict", "incomplete")
        await expect(page.locator("#hand-over")).to_be_disabled()
        await page.click("#run-checks")
        await expect(page.locator('tr[data-party="乙"] .check-pass')).to_have_count(3)
        await expect(page.locator("#eligibility")).to_have_attribute("data-verdict", "eligible")
        await page.click("#hand-over")
        await expect(page.locator("#case-status")).to_have_attribute("data-state", "handed_over")
        await expect(page.locator("#p-save")).to_be_disabled()
        await page.screenshot(path=str(tmp_path / "case.png"), full_page=True)


async def test_a_case_page_follows_other_consoles_without_losing_what_is_being_typed(
    server: RunningServer, broker: Mosquitto
) -> None:
    """Two dispatchers on one case: one tells the parties to clear the road and then escalates;
    the other's page shows both as they happen, and the facts it is typing stay as typed."""
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(server.cfg, "wuhua-2", Role.DISPATCHER, ["530102"])
    async with raw_device(broker.port, "car-0701") as (client, acks):
        await publish_report(client, "car-0701", encode(in_car_report("car-0701", WUHUA)))
        case_no = (await asyncio.wait_for(acks.get(), 10)).case_no

        async with chromium() as browser:
            pages = []
            for username in ("wuhua", "wuhua-2"):
                page = await (await browser.new_context()).new_page()
                await login(page, server.url, username)
                await page.click(f'tr[data-case="{case_no}"] .case-no a')
                await expect(page.locator("#case-no")).to_have_text(str(case_no))
                pages.append(page)
            watching, acting = pages
            await watching.fill("#f-place", "五华区翠湖南路与")  # half typed

            await acting.click("#clear-road")
            await expect(watching.locator("#clear-state")).to_have_attribute("data-state", "sent")
            await acting.click("#escalate")  # no reason: refused on the page, nothing asked
            await expect(acting.locator("#error")).to_contain_text("请选择或填写转现场处理的原因")
            await expect(acting.locator("#escalate-confirm")).not_to_be_visible()
            await acting.select_option("#escalate-reason-code", "vehicle_immovable")
            await acting.fill("#escalate-reason", "乙车前轮脱落")
            await acting.click("#escalate")
            dialog = acting.locator("#escalate-confirm")
            await expect(dialog).to_contain_text("本案将转为现场处理，民警将赶赴现场；已收集的证据保留，此操作不能撤销")
            await expect(dialog).to_contain_text("车辆无法移动：乙车前轮脱落")
            await acting.click("#escalate-no")  # thought better of it: nothing happens
            await expect(dialog).not_to_be_visible()
            await expect(acting.locator("#case-status")).to_have_attribute("data-state", "new")
            await acting.click("#escalate")
            await acting.click("#escalate-yes")
            await expect(watching.locator("#case-status")).to_have_attribute("data-state", "escalated")
            await expect(watching.locator("#closed-line")).to_contain_text("车辆无法移动")
            await expect(watching.locator("#f-save")).to_be_disabled()
            await expect(watching.locator("#f-place")).to_have_value("五华区翠湖南路与")
