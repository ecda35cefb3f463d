"""Per-case milestones and the dashboard per district and day: over the API on SQLite and
PostgreSQL, and the dashboard page's charts in headless Chromium."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from server.users import Role
from tests.browser import chromium
from tests.cases import case_id, handed_over_case, logged_in, new_case
from tests.casework_data import seed_registry
from tests.conftest import RunningServer, add_user, make_server_config, start_server
from tests.console_pages import login
from tests.services import Mosquitto


async def test_milestones_and_the_dashboard(case_server: RunningServer, broker: Mosquitto) -> None:
    server = case_server
    handed, _ = await handed_over_case(server, broker)
    wuhua = await logged_in(server, "wuhua")
    assert (await wuhua.http.post(f"/api/cases/{handed}/clear-road")).status_code == 200
    escalated = await case_id(wuhua, await new_case(broker))
    await wuhua.http.post(f"/api/cases/{escalated}/escalate", json={"reason": "一方车辆无法移动"})
    await new_case(broker)  # still with the dispatcher

    milestones = (await wuhua.http.get(f"/api/cases/{handed}/milestones")).json()
    assert list(milestones) == ["reported", "answered", "evidence_complete", "cleared", "determined", "delivered"]
    assert milestones["reported"]["after_s"] == 0
    assert milestones["evidence_complete"]["after_s"] >= 0 and milestones["cleared"]["after_s"] >= 0
    assert milestones["answered"] is None and milestones["determined"] is None and milestones["delivered"] is None

    rows = (await wuhua.http.get("/api/dashboard", params={"days": 7})).json()
    assert len(rows) == 1
    row = rows[0]
    assert row["unit"]["adcode"] == "530102"
    assert (row["cases"], row["eligible"], row["escalated"]) == (3, 1, 1)
    assert row["handling_median_min"] is not None and row["handling_median_min"] < 5
    guandu = await logged_in(server, "guandu")
    assert (await guandu.http.get("/api/dashboard")).json() == []  # another district's figures are not theirs
    assert (await guandu.http.get(f"/api/cases/{handed}/milestones")).status_code == 404
    for console in (wuhua, guandu):
        await console.close()


async def test_the_dashboard_page_draws_its_charts(broker: Mosquitto, tmp_path: Path) -> None:
    server = await start_server(make_server_config(tmp_path / "server", broker.port))
    try:
        await seed_registry(server.cfg.database_url, tmp_path / "registry")
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        await handed_over_case(server, broker)
        await new_case(broker)
        async with chromium() as browser:
            page = await browser.new_page()
            await login(page, server.url, "wuhua")
            await page.click("#dashboard-link")
            section = page.locator('section[data-unit="530102"]')
            await expect(section.locator("h2")).to_contain_text("五华区")
            await expect(section.locator("tbody tr")).to_have_count(1)
            await expect(section.locator(".cases-chart rect.bar.eligible")).to_have_attribute("data-value", "1")
            await expect(section.locator(".cases-chart rect.bar.other")).to_have_attribute("data-value", "1")
            await expect(section.locator(".time-chart rect.bar.handling_median_min")).to_have_count(1)
            await expect(section.locator(".time-chart line.reference")).to_have_count(1)
            await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    finally:
        await server.stop()
