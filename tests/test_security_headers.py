"""Every console and party page in a real headless Chromium under the security headers: the headers
are there, the browser reports no Content-Security-Policy violation while the page loads and runs
its scripts (the live socket included), and no other site can frame a page."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import ConsoleMessage, Page, expect

from protocol.messages import encode
from server.api.headers import CONTENT_SECURITY_POLICY
from server.users import Role
from tests.browser import chromium
from tests.conftest import PASSWORD, RunningServer, add_user
from tests.reports import WUHUA, in_car_report
from tests.services import Mosquitto
from tests.wire import publish_report, raw_device

# Reported by the page itself (an inline script that did not run, a style refused) and by Chromium.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def console_of(page: Page) -> list[str]:
    """What the page writes to its console from now on; Chromium reports a refused resource there."""
    lines: list[str] = []

    def record(message: ConsoleMessage) -> None:
        lines.append(message.text)

    page.on("console", record)
    return lines


async def violations(page: Page, console: list[str]) -> list[Any]:
    reported: list[Any] = await page.evaluate("window.__violations")
    return reported + [line for line in console if "Content Security Policy" in line]


async def test_every_page_runs_under_the_policy_and_cannot_be_framed(server: RunningServer, broker: Mosquitto) -> None:
    await add_user(server.cfg, "boss", Role.ADMIN, [])
    await add_user(server.cfg, "officer", Role.OFFICER, ["530102"])
    async with raw_device(broker.port, "car-0900") as (client, acks):
        await publish_report(client, "car-0900", encode(in_car_report("car-0900", WUHUA)))
        await asyncio.wait_for(acks.get(), 10)
    base = server.url

    async with chromium() as browser:
        for user, pages in {
            None: ["/login", "/verify/not-a-code", "/p", "/p/print/1"],
            "boss": ["/console", "/workspace?id=1", "/dashboard", "/insurers", "/fleet"],
            "officer": ["/determine?id=1", "/reviews"],
        }.items():
            context = await browser.new_context()
            if user is not None:
                login = await context.request.post(f"{base}/api/login", data={"username": user, "password": PASSWORD})
                assert login.ok, await login.text()
            for path in pages:
                page = await context.new_page()
                await page.add_init_script(WATCH_VIOLATIONS)
                console = console_of(page)
                response = await page.goto(base + path)
                assert response is not None and response.ok, path
                headers = await response.all_headers()
                assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
                assert "frame-ancestors 'none'" in headers["content-security-policy"]
                assert "'unsafe-inline'" not in headers["content-security-policy"]
                assert headers["x-content-type-options"] == "nosniff", path
                assert headers["referrer-policy"] == "no-referrer", path
                await page_works(page, path)
                assert await violations(page, console) == [], path
                await page.close()
            await context.close()

        # The policy at work: a script put into a page inline does not run, and is reported.
        context = await browser.new_context()
        page = await context.new_page()
        await page.add_init_script(WATCH_VIOLATIONS)
        await page.goto(base + "/login")
        ran = await page.evaluate(
            """() => { const s = document.createElement("script"); s.textContent = "window.__ran = true";
                       document.body.append(s); return window.__ran === true; }"""
        )
        assert ran is False
        await page.wait_for_function("window.__violations.length > 0")
        assert (await page.evaluate("window.__violations"))[0].startswith("script-src")

        # A page of another site framing the console: Chromium shows its error page instead.
        await page.goto("about:blank")
        await page.set_content(f'<iframe src="{base}/login" onload="document.body.dataset.loaded = 1"></iframe>')
        await page.wait_for_function("document.body.dataset.loaded === '1'")
        [framed] = page.main_frame.child_frames
        assert await framed.locator("#login-form").count() == 0, framed.url
        await context.close()


async def page_works(page: Page, path: str) -> None:
    """Each page's own sign that its scripts ran (and its styles, where they moved to a file)."""
    if path == "/login":
        await page.fill("#username", "nobody")
        await page.fill("#password", "wrong password")
        await page.click("#login-button")
        await expect(page.locator("#login-error")).to_be_visible()
    elif path.startswith("/verify/"):
        await expect(page.locator("#record")).to_contain_text("无此认定书")
    elif path == "/p":
        await expect(page.locator("#login")).to_be_visible()
    elif path.startswith("/p/print/"):
        await expect(page.locator("#notice")).not_to_be_empty()
    elif path == "/console":
        await expect(page.locator("#live-state")).to_have_attribute("data-state", "live")  # the socket: connect-src
    else:
        await expect(page.locator("#operator")).not_to_be_empty()
    if path == "/insurers":
        collapse = await page.locator("table#insurers").evaluate("(t) => getComputedStyle(t).borderCollapse")
        assert collapse == "collapse"  # its style block, now in console.css
