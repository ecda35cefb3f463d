"""The dispatcher queue in headless Chromium follows each case's changes in place: a case escalated
from another console, and a case the clearing watch flags (its unit did not move off), change their
own row's status while the page stays loaded, and no other row."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import expect

from protocol.messages import encode
from server.users import Role
from tests.browser import chromium
from tests.cases import case_id, logged_in
from tests.configs import clearing
from tests.conftest import add_user, make_server_config, start_server
from tests.console_pages import login
from tests.reports import WUHUA, in_car_report
from tests.services import Mosquitto
from tests.wire import publish_report, raw_device


async def test_a_cases_row_changes_in_place_as_the_case_changes(broker: Mosquitto, tmp_path: Path) -> None:
    server = await start_server(clearing(make_server_config(tmp_path / "server", broker.port), 1))
    try:
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        # Units on the wire that send no heartbeats: told to clear the road, they never move off.
        async with raw_device(broker.port, "car-0970") as (client, acks):
            cases = []
            for _ in range(3):
                await publish_report(client, "car-0970", encode(in_car_report("car-0970", WUHUA)))
                cases.append(str((await asyncio.wait_for(acks.get(), 10)).case_no))
        stays, escalated, flagged = cases
        other = await logged_in(server, "wuhua")  # the same dispatcher at another console

        async with chromium() as browser:
            page = await browser.new_page()
            await login(page, server.url, "wuhua")
            await expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
            rows = {case_no: page.locator(f'tr[data-case="{case_no}"]') for case_no in cases}
            for row in rows.values():
                await expect(row).to_have_attribute("data-status", "new")
                await expect(row.locator(".status")).to_have_text("新报警 new")
            await page.evaluate("window.sameLoad = true")  # gone if the page reloads

            reason = "当事人对基本事实有争议"
            response = await other.http.post(
                f"/api/cases/{await case_id(other, escalated)}/escalate", json={"reason": reason}
            )
            assert response.status_code == 200
            await expect(rows[escalated]).to_have_attribute("data-status", "escalated")
            await expect(rows[escalated].locator(".status")).to_have_text("转现场 escalated")

            assert (await other.http.post(f"/api/cases/{await case_id(other, flagged)}/clear-road")).status_code == 200
            await expect(rows[flagged]).to_have_class("flagged")
            await expect(rows[flagged].locator(".flag")).to_have_text(
                "not moved off within 1 s of the clear-the-road command"
            )
            await expect(rows[flagged]).to_have_attribute("data-status", "new")

            # The rest of each row, and the other case, are as they were; the page never reloaded.
            await expect(rows[stays]).to_have_attribute("data-status", "new")
            await expect(rows[stays]).not_to_have_class("flagged")
            await expect(page.locator('section.unit[data-unit="530102"] tbody tr')).to_have_count(3)
            await expect(rows[escalated].locator(".vehicle")).to_have_text("云A5H821")
            await expect(rows[flagged].locator(".case-no a")).to_have_text(flagged)
            assert await page.evaluate("window.sameLoad") is True
        await other.close()
    finally:
        await server.stop()
