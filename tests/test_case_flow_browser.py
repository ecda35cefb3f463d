"""A whole case in headless Chromium: a simulated in-car unit's button press, the dispatcher's
evidence and hand-over, the officer's determination from the officers' queue, delivery by SMS
through a local provider, and the PDF checked on the public verification page (genuine, then
altered)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from playwright.async_api import expect

from server.cases import now_utc
from server.db.engine import make_engine
from server.db.models import Evidence
from server.users import Role
from tests.browser import chromium
from tests.casework_data import DRIVER_A, DRIVER_B, seed_registry
from tests.configs import sms_config
from tests.conftest import add_user, make_server_config, start_server
from tests.console_pages import fill_driver, login
from tests.devices import device_config, running_device
from tests.services import Mosquitto, free_port
from tests.sms_provider import sms_provider

FACTS_TEXT = "甲驾驶小型轿车沿翠湖南路由东向西行驶，未与前车保持安全距离，追尾乙驾驶的小型轿车，两车受损。"


async def add_still(url: str, evidence_dir: Path, case_id: int, case_no: str) -> None:
    """A still of the scene as the call code stores one: the file and its SHA-256."""
    still = evidence_dir / case_no / "still-1.jpg"
    still.parent.mkdir(parents=True, exist_ok=True)
    still.write_bytes((Path(__file__).parent.parent / "server" / "console" / "console.css").read_bytes())
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                Evidence.__table__.insert().values(  # type: ignore[attr-defined]
                    case_id=case_id,
                    kind="still",
                    path=f"{case_no}/still-1.jpg",
                    sha256=hashlib.sha256(still.read_bytes()).hexdigest(),
                    size_bytes=still.stat().st_size,
                    created_at=now_utc(),
                    media_start=now_utc(),
                )
            )
    finally:
        await engine.dispose()


async def test_a_case_from_a_press_to_a_delivered_verifiable_determination(
    broker: Mosquitto, tmp_path: Path, font_cache: Path
) -> None:
    provider_port = free_port()
    cfg = sms_config(make_server_config(tmp_path / "server", broker.port), tmp_path / "sms", font_cache, provider_port)
    server = await start_server(cfg)
    try:
        await seed_registry(server.cfg.database_url, tmp_path / "registry")
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        await add_user(server.cfg, "officer", Role.OFFICER, ["530102"])
        async with (
            running_device(device_config(tmp_path / "car", broker.port, "car-0800")) as device,
            sms_provider(provider_port, server.url) as provider,
            chromium() as browser,
        ):
            await device.wait_fix()
            await device.press()
            case_no = await device.case_number()
            dispatcher = await (await browser.new_context()).new_page()
            await login(dispatcher, server.url, "wuhua")
            await dispatcher.click(f'tr[data-case="{case_no}"] .case-no a')
            case_id = int(dispatcher.url.split("id=")[1])
            await add_still(server.cfg.database_url, server.cfg.evidence_dir, case_id, case_no)
            await fill_driver(dispatcher, DRIVER_A, use_read=True)
            await dispatcher.click("#p-save")
            await expect(dispatcher.locator('tr[data-party="甲"]')).to_be_visible()
            await fill_driver(dispatcher, DRIVER_B)
            await dispatcher.click("#p-save")
            await expect(dispatcher.locator('tr[data-party="乙"]')).to_be_visible()
            await dispatcher.fill("#f-place", "五华区翠湖南路")
            await dispatcher.click("#f-save")
            await dispatcher.click("#run-checks")
            await expect(dispatcher.locator("#eligibility")).to_have_attribute("data-verdict", "eligible")
            await dispatcher.click("#hand-over")
            await expect(dispatcher.locator("#case-status")).to_have_attribute("data-state", "handed_over")
            await expect(dispatcher.locator("#determine-link")).to_be_hidden()
            await dispatcher.goto(f"{server.url}/determine?id={case_id}")
            await expect(dispatcher.locator("#forbidden")).to_be_visible()  # a dispatcher does not decide

            officer = await (await browser.new_context(accept_downloads=True)).new_page()
            await login(officer, server.url, "officer")
            await officer.click(f'tr[data-case="{case_no}"] .case-no a')  # the queue opens the officer's page
            await expect(officer.locator("#case-no")).to_have_text(case_no)
            await expect(officer.locator('#evidence figure[data-kind="still"] img')).to_be_visible()
            await expect(officer.locator('#parties tr[data-party="乙"] .check-pass')).to_have_count(3)
            await expect(officer.locator("#chain")).to_contain_text("chain intact")
            await officer.select_option("#situation", "rear_end")
            await officer.select_option("#at-fault", "0")
            await officer.click("#propose")
            await expect(officer.locator('#liabilities select[data-label="甲"]')).to_have_value("全部")
            await expect(officer.locator('#liabilities select[data-label="乙"]')).to_have_value("无")
            await expect(officer.locator("#legal-basis")).to_have_value(re.compile("第四十三条"))
            await officer.select_option('#liabilities select[data-label="乙"]', "次要")
            await officer.fill("#facts", FACTS_TEXT)
            await officer.click("#issue")
            await expect(officer.locator("#error")).to_contain_text("inconsistent liabilities 全部/次要")
            await officer.click("#propose")
            await expect(officer.locator('#liabilities select[data-label="乙"]')).to_have_value("无")
            provider.receipts.clear()  # the phones have not answered yet
            await officer.click("#issue")
            version = officer.locator('#versions tr[data-version="1"]')
            # The session's first document builds the font first (about 10 s of a core).
            await expect(version).to_contain_text("current", timeout=60_000)
            for label in ("甲", "乙"):
                await expect(officer.locator(f'#deliveries tr[data-party^="{label}"]')).to_have_attribute(
                    "data-state", "sent"
                )
            await expect(officer.locator("#case-status")).to_have_attribute("data-state", "determined")
            # The provider's receipts make the case delivered, and the officer's page shows it as it
            # happens, without a reload.
            provider.receipts.set()
            await expect(officer.locator("#case-status")).to_have_attribute("data-state", "delivered", timeout=20_000)
            for label in ("甲", "乙"):
                await expect(officer.locator(f'#deliveries tr[data-party^="{label}"]')).to_have_attribute(
                    "data-state", "reached"
                )
            await expect(officer.locator('#milestones li[data-milestone="delivered"]')).to_have_attribute(
                "data-done", "true"
            )
            # Each party had their link when the dispatcher saved them; then one determination SMS each.
            determined = [m for m in provider.received if "认定书已出具" in m["text"]]
            assert len(determined) == 2 and all(case_no in m["text"] for m in determined)
            assert len(provider.received) == 4 and all(case_no in m["text"] for m in provider.received)

            pdf_url = server.url + (await version.locator("a.pdf").get_attribute("href") or "")
            pdf = await (await officer.request.get(pdf_url)).body()
            assert pdf.startswith(b"%PDF")
            (tmp_path / "doc.pdf").write_bytes(pdf)
            i = pdf.find(b"/Author")
            (tmp_path / "altered.pdf").write_bytes(pdf[: i + 10] + bytes([pdf[i + 10] ^ 1]) + pdf[i + 11 :])

            public = await (await browser.new_context()).new_page()  # no login: a party with the QR code
            await public.goto(server.url + (await version.locator("a.verify").get_attribute("href") or ""))
            await expect(public.locator("#record")).to_contain_text(f"案件 {case_no}")
            await expect(public.locator("#record")).to_contain_text("current")
            await public.set_input_files("#file", str(tmp_path / "doc.pdf"))
            await expect(public.locator("#result")).to_have_attribute("data-genuine", "true")
            await public.set_input_files("#file", str(tmp_path / "altered.pdf"))
            await expect(public.locator("#result")).to_have_attribute("data-genuine", "false")
            await expect(public.locator("#result")).to_contain_text("altered")
            await officer.screenshot(path=str(tmp_path / "determine.png"), full_page=True)
    finally:
        await server.stop()
