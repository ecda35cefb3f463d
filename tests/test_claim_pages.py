"""The one-key claim in headless Chromium: a party on a 360 px wide phone presses 一键理赔 once the
determination has reached them; the claim shows on their insurer's page (the demo's simulated
insurer, calling the real insurers' API), where someone accepts it and assigns an adjuster; the
party's progress shows each step live and their phone gets the SMS."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from server.users import Role
from tests.browser import chromium
from tests.casework_data import seed_registry
from tests.conftest import RunningServer, add_user
from tests.insurers import claim_sms, three_insurers
from tests.pki import FleetPki
from tests.review_data import determined_over_api, party_client
from tests.services import Mosquitto

PHONES = ("13700007777", "13700008888")  # 甲 holds a PICC policy


async def test_one_key_claim_from_the_phone_to_the_insurer_and_back(
    server: RunningServer, broker: Mosquitto, fleet_pki: FleetPki, tmp_path: Path
) -> None:
    await seed_registry(server.cfg.database_url, tmp_path / "registry")
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(server.cfg, "officer", Role.OFFICER, ["530102"])
    async with three_insurers(server, fleet_pki, tmp_path / "certs") as insurers:
        _, case_no, _ = await determined_over_api(server, broker, PHONES)
        party = await party_client(server, case_no, PHONES[0])
        cookie = party.cookies["kc_party"]
        await party.aclose()
        async with chromium() as browser:
            phone = await browser.new_context(viewport={"width": 360, "height": 740})
            await phone.add_cookies([{"name": "kc_party", "value": cookie, "url": server.url}])
            page = await phone.new_page()
            await page.goto(server.url + "/p")
            await expect(page.locator("#claim-why")).to_contain_text("认定书送达您之后")
            await expect(page.locator("#claim-form")).to_be_hidden()
            # Opening the determination is its delivery to the party: the button appears.
            async with page.expect_download():
                await page.locator("#versions a[download]").click()
            await page.reload()
            await expect(page.locator("#claim-what")).to_contain_text("人保财险")
            await page.select_option("#claim-contact", "evening")
            await page.click("#claim-send")
            await expect(page.locator("#claim-label")).to_have_text("人保财险：已提交理赔申请")
            await expect(page.locator('#timeline li[data-step="claim_requested"]')).to_have_attribute(
                "data-done", "true"
            )
            assert await page.evaluate("document.documentElement.scrollWidth") <= 360

            desk = await (await browser.new_context()).new_page()
            await desk.goto(f"http://127.0.0.1:{insurers.ports['PICC']}/")
            claim = desk.locator("[data-claim]")
            await expect(claim).to_have_attribute("data-status", "requested")
            await expect(claim).to_contain_text(PHONES[0])
            await expect(claim).to_contain_text("晚上")
            await claim.locator('form[data-action="accepted"] button').click()
            await expect(desk.locator("[data-claim]")).to_have_attribute("data-status", "accepted")
            await expect(page.locator('#timeline li[data-step="claim_accepted"]')).to_have_attribute(
                "data-done", "true"
            )
            assign = desk.locator('[data-claim] form[data-action="adjuster_assigned"]')
            await assign.locator("input[name=adjuster_name]").fill("王强")
            await assign.locator("input[name=adjuster_phone]").fill("13800000000")
            await assign.locator("button").click()
            await expect(desk.locator("[data-claim]")).to_have_attribute("data-status", "adjuster_assigned")

            # Back on the phone, live: the adjuster to call back, on the progress and in the section.
            step = page.locator('#timeline li[data-step="claim_adjuster_assigned"]')
            await expect(step).to_contain_text("人保财险查勘员 王强 13800000000 将联系您")
            await expect(page.locator("#claim-call")).to_have_attribute("href", "tel:13800000000")
            assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    texts = await claim_sms(server, PHONES[0])
    assert texts[-1] == "【快处】人保财险查勘员 王* 138****0000 将联系您，请保持电话畅通。"
    assert len(texts) == 3
