"""The console's pages driven in headless Chromium: signing in, filling in a party."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.conftest import PASSWORD


async def sign_in(page: Page, url: str, username: str) -> None:
    await page.goto(url + "/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-button")


async def login_live(page: Page, url: str, username: str) -> None:
    await sign_in(page, url, username)
    await expect(page.locator("#live-state")).to_have_attribute("data-state", "live")


async def login(page: Page, url: str, username: str) -> None:
    await sign_in(page, url, username)
    await expect(page).to_have_url(url + "/console")


async def login_admin(page: Page, url: str, username: str) -> None:
    """Signed in once the fleet link shows: the console shows it only to an administrator."""
    await sign_in(page, url, username)
    await expect(page.locator("#fleet-link")).to_be_visible()


async def fill_driver(page: Page, d: dict[str, str], *, use_read: bool = False) -> None:
    await page.select_option("#p-role", "driver")
    await page.fill("#p-name", d["name"])
    await page.fill("#p-id-number", d["id_number"])
    await page.fill("#p-phone", "13888000001")
    await page.fill("#p-licence", d["id_number"])
    if use_read:
        await page.check("#p-use-read")  # pre-fills the plate with the device's read
    else:
        await page.fill("#p-plate", d["plate"])
    await page.select_option("#p-type", "K33")
    await page.fill("#p-insurer", "中国人民财产保险股份有限公司昆明市分公司")
    await page.fill("#p-policy", d["policy"])
