"""The case page's plate reads in headless Chromium, from a simulated unit's real reads: the reads
taken at the press appear with their crops and pre-fill a new party's plate, "read plates" asks the
unit again, and the dispatcher's correction of a read is shown and kept."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from server.users import Role
from tests.browser import chromium, loaded_width
from tests.casework_data import DRIVER_A, DRIVER_B, seed_registry
from tests.conftest import RunningServer, add_user
from tests.console_pages import fill_driver, login
from tests.devices import plate_car, running_device
from tests.services import Mosquitto
from tests.stored import cases_in, plate_rows


async def test_the_dispatcher_sees_the_units_reads_takes_a_plate_from_them_and_corrects_one(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    await seed_registry(server.cfg.database_url, tmp_path / "registry")
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    car = plate_car(tmp_path / "car", broker, "car-plates-10")
    async with running_device(car) as device, chromium() as browser:
        await device.wait_fix()
        await device.press()
        case_no = await device.case_number()
        [case] = [c for c in await cases_in(server.cfg.database_url) if c.case_no == case_no]

        page = await browser.new_page()
        await login(page, server.url, "wuhua")
        await page.goto(f"{server.url}/case?id={case.id}")
        await expect(page.locator("#case-no")).to_have_text(case_no)

        # The reads taken at the press arrive by themselves, each with the crop it was read from.
        reads = page.locator("#plate-reads li[data-read]")
        await expect(reads.first).to_be_visible(timeout=60_000)
        read_id = await reads.first.get_attribute("data-read")
        first = page.locator(f'#plate-reads li[data-read="{read_id}"]')
        assert await loaded_width(first.locator("img.plate-crop")) == 128
        best = (await first.locator(".read-text").text_content() or "").strip()
        assert best

        # Party 甲's plate starts as the unit's own; once 甲 has it, the next party's starts as the best read.
        await expect(page.locator("#p-plate")).to_have_value("云A5H821")
        await expect(page.locator("#p-use-read")).to_be_checked()
        await fill_driver(page, DRIVER_A, use_read=True)
        await page.click("#p-save")
        await expect(page.locator('tr[data-party="甲"] .plate')).to_contain_text("识别 read 云A5H821")
        await expect(page.locator("#p-plate")).to_have_value(best)
        await expect(page.locator("#p-use-read")).to_be_checked()
        assert await page.locator("#p-read").input_value() == f"reader:{read_id}"
        # Typing another vehicle's plate over it lets the read go; choosing the read again brings it back.
        await page.fill("#p-plate", DRIVER_B["plate"])
        await expect(page.locator("#p-use-read")).not_to_be_checked()
        await page.fill("#p-plate", "")
        await page.check("#p-use-read")
        await expect(page.locator("#p-plate")).to_have_value(best)

        # "Read plates": the unit reads a full-resolution still now; its reads join the list.
        before = await reads.count()
        await page.click("#plates-read")
        await expect(page.locator("#plates-state")).to_have_attribute("data-state", "done", timeout=15_000)
        await expect(page.locator("#plates-state")).to_contain_text("plate(s) read")
        assert await reads.count() > before

        # The dispatcher corrects the first read; the page shows it, the server keeps it with the read.
        correction = "云AD12345" if best != "云AD12345" else "云A6A72G"
        await first.locator(".read-confirm").fill(correction)
        await first.locator(".read-save").click()
        state = first.locator(".read-state")
        await expect(state).to_have_attribute("data-state", "corrected")
        await expect(state).to_contain_text(f"已更正 corrected → {correction}")
        stored = {read.id: read for _, reads_of in await plate_rows(server) for read in reads_of}
        assert (stored[int(read_id or 0)].text, stored[int(read_id or 0)].confirmed_text) == (best, correction)

        # A driver saved with the pre-filled plate keeps the read beside it.
        await page.reload()
        await expect(reads.first).to_be_visible()
        await expect(page.locator("#p-plate")).not_to_have_value("")
        texts = [t.strip() for t in await page.locator("#plate-reads .read-text").all_text_contents()]
        prefilled = await page.locator("#p-plate").input_value()
        assert prefilled in texts
        await fill_driver(page, DRIVER_B | {"plate": prefilled}, use_read=True)
        await page.click("#p-save")
        await expect(page.locator('tr[data-party="乙"] .plate')).to_contain_text(f"识别 read {prefilled}")
        await expect(page.locator("#error")).to_be_hidden()
        await page.screenshot(path=str(tmp_path / "plates.png"), full_page=True)
