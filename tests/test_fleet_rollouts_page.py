"""The fleet page's rollouts in a real headless Chromium: a rollout the server paused by itself says
so and why, with each unit's step and the reason of its rollback or refusal in Beijing time; the
admin resumes it from the page, and starts another from the page's form, firmware or plate models;
a unit that said nothing for a day shows as no answer."""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path

import pytest
from playwright.async_api import expect

from protocol.messages import UpdateStep
from server import rollouts
from server.users import Role
from tests.browser import chromium
from tests.cases import logged_in
from tests.conftest import add_user, make_server_config, start_server
from tests.console_pages import login_admin
from tests.services import Mosquitto
from tests.update_units import signed_firmware, told_long_ago, units
from tests.waiting import wait_for

BEIJING = timezone(timedelta(hours=8))
CARS = ["car-ui-a", "car-ui-b", "car-ui-c"]
ROLLED_BACK = "自检未通过 (self-test failed): camera: no frame in 5 s"
REFUSED = "更新元数据已过期（冻结攻击，或发布未续签），已拒绝；请在发布站运行 kuaichu release publish"


async def test_the_fleet_page_shows_a_paused_rollout_per_unit_and_resumes_it(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollouts, "SWEEP_S", 1.0)  # the silent unit below is seen at once
    cfg = make_server_config(tmp_path / "server", broker.port)
    served = signed_firmware(tmp_path, "0.3.0", models="2026.12.2")
    cfg = cfg.model_copy(update={"updates": cfg.updates.model_copy(update={"repository": served})})
    server = await start_server(cfg)
    await add_user(cfg, "fleet-admin", Role.ADMIN, [])
    admin = await logged_in(server, "fleet-admin")
    try:
        async with units(broker.port, CARS) as fleet:
            for unit in fleet.values():
                await unit.beat()

            async def known() -> bool:
                return set(CARS) <= {d["id"] for d in (await admin.http.get("/api/devices")).json()["devices"]}

            await wait_for("the server to know the units", known)
            body = {"release": "0.3.0", "devices": CARS, "batch": 3, "max_rollback_pct": 20}
            rid = (await admin.http.post("/api/updates/rollouts", json=body)).json()["id"]
            await fleet["car-ui-a"].step(rid, UpdateStep.HEALTHY)
            await fleet["car-ui-b"].step(rid, UpdateStep.ROLLED_BACK, reason=ROLLED_BACK)
            await fleet["car-ui-c"].step(rid, UpdateStep.REFUSED, code="expired", reason=REFUSED)
            back_at = fleet["car-ui-b"].status.at if fleet["car-ui-b"].status else None
            assert back_at is not None

            async with chromium() as browser:
                page = await browser.new_page()
                await login_admin(page, server.url, "fleet-admin")
                await page.goto(server.url + "/fleet")

                rollout = page.locator(f'.rollout[data-rollout="{rid}"]')
                await expect(rollout).to_have_attribute("data-state", "paused", timeout=20000)
                await expect(rollout.locator(".rollout-state")).to_have_text("已暂停 paused")
                await expect(rollout.locator(".paused-reason")).to_contain_text("台中 1 台回退或安装失败，超过上限 20%")
                await expect(rollout.locator('[data-count="healthy"]')).to_have_text("正常 healthy 1")
                await expect(rollout.locator('[data-count="rolled_back"]')).to_have_text("已回退 rolled back 1")
                b = rollout.locator('tr[data-device="car-ui-b"]')
                await expect(b.locator(".step")).to_have_text("已回退 rolled back")
                await expect(b.locator(".why")).to_have_text(ROLLED_BACK)
                # Beijing time, whatever the browser's own zone (the test's Chromium runs in UTC).
                await expect(b.locator("td").nth(2)).to_contain_text(back_at.astimezone(BEIJING).strftime("%H:%M:%S"))
                c = rollout.locator('tr[data-device="car-ui-c"]')
                await expect(c.locator(".why")).to_have_text(REFUSED)  # the code only as a tooltip
                await expect(c.locator(".why")).to_have_attribute("title", "expired")

                # Resumed from the page: nobody is left to tell, so the rollout ends.
                await rollout.locator(".rollout-resume").click()
                await expect(rollout).to_have_attribute("data-state", "done", timeout=20000)
                await expect(rollout.locator(".rollout-resume")).to_have_count(0)

                # Another rollout from the form, to one listed unit: it is told at once.
                await page.fill("#rollout-form [name=release]", "0.3.0")
                await page.select_option("#rollout-form [name=group]", "devices")
                await page.fill("#rollout-form [name=value]", "car-ui-b")
                await page.click("#rollout-form button[type=submit]")
                second = page.locator(f'.rollout[data-rollout="{rid + 1}"]')
                await expect(second).to_have_attribute("data-state", "active", timeout=20000)
                await expect(second.locator('tr[data-device="car-ui-b"] .step')).to_have_text("已通知 told")
                await page.screenshot(path=str(tmp_path / "fleet-rollouts.png"), full_page=True)

                # A release that is not published is refused with what to do.
                await page.fill("#rollout-form [name=release]", "0.9.0")
                await page.select_option("#rollout-form [name=group]", "devices")
                await page.fill("#rollout-form [name=value]", "car-ui-a")
                await page.click("#rollout-form button[type=submit]")
                await expect(page.locator("#rollout-error")).to_contain_text("发布库中没有已签名的固件 0.9.0")

                # Plate models from the form: the rollout says what it offers.
                await page.select_option("#rollout-form [name=kind]", "models")
                await page.fill("#rollout-form [name=release]", "2026.12.2")
                await page.click("#rollout-form button[type=submit]")
                third = page.locator(f'.rollout[data-rollout="{rid + 2}"]')
                await expect(third.locator("h3")).to_contain_text("车牌模型 plate models 2026.12.2")
                await expect(third.locator('tr[data-device="car-ui-a"] .step')).to_have_text("已通知 told")

                # car-ui-b, told by the second rollout, said nothing for a day: no answer, and the
                # rollout, with nobody else to tell, is over.
                await told_long_ago(cfg, rid + 1, "car-ui-b")
                await expect(second).to_have_attribute("data-state", "done", timeout=20000)
                silent = second.locator('tr[data-device="car-ui-b"]')
                await expect(silent.locator(".step")).to_have_text("无应答 no answer")
                await expect(silent.locator(".why")).to_contain_text("24 小时没有进展")
            heard = []

            async def both_offers() -> bool:
                while not fleet["car-ui-b"].commands.empty():
                    heard.append(fleet["car-ui-b"].commands.get_nowait())
                return len(heard) >= 2

            await wait_for("car-ui-b's two offers", both_offers)
            assert [(c.type, c.release, c.rollout) for c in heard] == [
                ("update.check", "0.3.0", rid),
                ("update.check", "0.3.0", rid + 1),
            ]
    finally:
        await admin.close()
        await server.stop()
