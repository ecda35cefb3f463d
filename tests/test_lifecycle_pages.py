"""The pages take the lifecycles' labels from the server (GET /api/lifecycles), not from copies of
their own: served with other labels, the queue, the case page and the call panel show those."""

from __future__ import annotations

import asyncio
import copy

import httpx
from playwright.async_api import Route, expect

from protocol.messages import encode
from server.lifecycles.call import CALL
from server.lifecycles.case import CASE
from server.users import Role
from tests.browser import chromium
from tests.conftest import RunningServer, add_user
from tests.console_pages import login
from tests.reports import WUHUA, in_car_report
from tests.services import Mosquitto
from tests.wire import publish_report, raw_device


async def test_the_lifecycles_are_served_without_a_session(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.get("/api/lifecycles")
    assert response.status_code == 200
    served = response.json()
    assert served == {"case": CASE.as_json(), "call": CALL.as_json()}
    assert served["case"]["states"]["escalated"]["label"] == "转现场 escalated"
    assert served["case"]["states"]["handed_over"]["next"] == "民警正在审核证据，认定书出具后会以短信通知您。"
    assert served["call"]["values"]["DEGRADED"] == "degraded"


async def test_the_queue_and_the_case_page_show_the_labels_the_server_serves(
    server: RunningServer, broker: Mosquitto
) -> None:
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    async with raw_device(broker.port, "car-0710") as (client, acks):
        await publish_report(client, "car-0710", encode(in_car_report("car-0710", WUHUA)))
        case_no = (await asyncio.wait_for(acks.get(), 10)).case_no
    served = {"case": copy.deepcopy(CASE.as_json()), "call": copy.deepcopy(CALL.as_json())}
    served["case"]["states"]["new"]["label"] = "新案件（服务器） new"
    served["call"]["states"]["degraded"]["label"] = "降级（服务器） degraded"

    async def lifecycles(route: Route) -> None:
        await route.fulfill(json=served)

    async with chromium() as browser:
        page = await browser.new_page()
        await page.route("**/api/lifecycles", lifecycles)
        await login(page, server.url, "wuhua")
        row = page.locator(f'tr[data-case="{case_no}"]')
        await expect(row).to_have_attribute("data-status", "new")
        await expect(row.locator(".status")).to_have_text("新案件（服务器） new")
        assert await page.evaluate("stateLabel('call', 'degraded')") == "降级（服务器） degraded"
        await row.locator(".case-no a").click()
        await expect(page.locator("#case-status")).to_have_attribute("data-state", "new")
        await expect(page.locator("#case-status")).to_have_text("新案件（服务器） new")
        await expect(page.locator("#closed-line")).to_be_hidden()
        await expect(page.locator("#clear-road")).to_be_enabled()
