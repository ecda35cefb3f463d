"""The fleet page's map, firmware summary and remote self-test in headless Chromium: the five pilot
districts drawn from the server's geofences, a kiosk at its site and a car at its last fix on them,
a car never heard from listed beside the map, the firmware versions counted, and a self-test asked
from the page run by the running firmware with its result shown in the unit's row."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from server.users import Role
from tests.browser import chromium
from tests.conftest import PASSWORD, add_user, make_server_config, start_server
from tests.console_pages import login_admin
from tests.devices import device_config, running_device
from tests.reports import GUANDU
from tests.services import Mosquitto
from tests.wire import Console

DISTRICTS = ["五华区", "盘龙区", "官渡区", "西山区", "呈贡区"]


async def test_the_map_shows_the_districts_and_units_and_a_remote_selftest_reports_back(
    broker: Mosquitto, tmp_path: Path
) -> None:
    server = await start_server(make_server_config(tmp_path / "server", broker.port))
    await add_user(server.cfg, "fleet-admin", Role.ADMIN, [])
    admin = Console(server.url)
    lon, lat = GUANDU
    kiosk_cfg = device_config(
        tmp_path / "kiosk",
        broker.port,
        "kiosk-map-01",
        device={"kind": "kiosk"},
        site={"name": "昆明站报警亭", "lat": lat, "lon": lon},
    ).model_copy(update={"vehicle": None})
    try:
        await admin.login("fleet-admin", PASSWORD)
        registration = {"kind": "in-car", "cert_fingerprint": "ab" * 32, "vehicle": {"plate": "云A7Q311"}}
        assert (await admin.http.put("/api/devices/car-never-02", json=registration)).status_code == 200
        # A kiosk's place is its surveyed site, as the provisioning station registers it.
        site = {
            "kind": "kiosk",
            "cert_fingerprint": "cd" * 32,
            "site": {"name": "昆明站报警亭", "lat": lat, "lon": lon},
        }
        assert (await admin.http.put("/api/devices/kiosk-map-01", json=site)).status_code == 200
        async with (
            running_device(kiosk_cfg),
            running_device(device_config(tmp_path / "car", broker.port, "car-map-01")) as car,
            chromium() as browser,
        ):
            await car.wait_fix()
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await login_admin(page, server.url, "fleet-admin")
            await page.goto(server.url + "/fleet")

            districts = page.locator("#map-districts path.district")
            await expect(districts).to_have_count(5)
            await expect(page.locator("#map-districts text")).to_have_text(DISTRICTS)
            kiosk = page.locator('#map-units rect[data-device="kiosk-map-01"]')
            await expect(kiosk).to_have_attribute("data-online", "true", timeout=15000)
            await expect(page.locator('#map-units circle[data-device="car-map-01"]')).to_be_visible(timeout=15000)
            # The kiosk stands in 官渡区: its mark lies inside that district's outline.
            inside = await page.evaluate(
                """() => {
                  const svg = document.getElementById("fleet-map");
                  const mark = document.querySelector('#map-units rect[data-device="kiosk-map-01"]');
                  const x = +mark.getAttribute("x") + 9, y = +mark.getAttribute("y") + 9;
                  const point = svg.createSVGPoint(); point.x = x; point.y = y;
                  const guandu = document.querySelector('#map-districts path[data-adcode="530111"]');
                  return guandu.isPointInFill(point);
                }"""
            )
            assert inside is True
            await expect(page.locator('#unplaced li[data-device="car-never-02"]')).to_contain_text("云A7Q311")
            await expect(page.locator("#unplaced li")).to_have_count(1)
            firmware = page.locator("#firmware-summary li")
            await expect(firmware.first.locator(".count")).to_have_text("2 台", timeout=15000)
            await expect(page.locator('#firmware-summary li[data-firmware="未知 unknown"] .count')).to_have_text("1 台")
            await page.screenshot(path=str(tmp_path / "fleet-map.png"), full_page=True)

            row = page.locator('tr[data-device="kiosk-map-01"]')
            await expect(row.locator(".selftest")).to_have_text("未自检 never run")
            await row.locator(".run-selftest").click()
            await expect(row.locator(".remote .remote-state")).to_have_text("远程自检中 running…")
            await expect(row.locator(".selftest .verdict")).to_be_visible(timeout=60000)
            await expect(row.locator(".remote .remote-state")).to_have_count(0)
            await row.locator(".selftest summary").click()
            checks = row.locator(".selftest li")
            await expect(row.locator(".selftest li.check-pass")).to_contain_text(["camera", "gnss"])
            await expect(checks.filter(has_text="button")).to_contain_text("on-site self-test only")
            await expect(checks.filter(has_text="broker")).to_contain_text("remote run")
            await page.screenshot(path=str(tmp_path / "fleet-selftest.png"), full_page=True)
            # The unit never left its work for it: still online, still idle.
            await expect(row.locator(".presence .badge")).to_have_text("在线 online")
            await expect(row.locator(".heartbeat .app-state")).to_contain_text("idle")
    finally:
        await admin.close()
        await server.stop()
