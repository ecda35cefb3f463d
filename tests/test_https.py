"""The console and the parties' pages served over HTTPS by the worker itself, with a certificate from
a CA that Chromium trusts the way a machine's administrator would make it trust one.

The server is reached by a name, not 127.0.0.1: Chromium counts a loopback address as a secure
context even over plain HTTP, so only a name shows that the camera opens because of HTTPS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.api.deps import SESSION_COOKIE
from server.users import Role
from tests.browser import chromium
from tests.configs import WebCert, https, web_cert
from tests.conftest import RunningServer, add_user, make_server_config, start_server
from tests.console_pages import login_live
from tests.services import Mosquitto, free_port

HOST = "kuaichu.test"


@dataclass
class HttpsServer:
    running: RunningServer
    cert: WebCert

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.running.cfg.http.port}"

    @property
    def plain_url(self) -> str:
        return f"http://{HOST}:{self.running.cfg.http.redirect_port}"


@pytest.fixture
async def served(tmp_path: Path, broker: Mosquitto) -> AsyncIterator[HttpsServer]:
    cert = web_cert(tmp_path / "web", HOST)
    cfg = make_server_config(tmp_path / "server", broker.port)
    cfg = https(cfg, cert, redirect_port=free_port(), public_url=f"https://{HOST}:{cfg.http.port}")
    running = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    yield HttpsServer(running, cert)
    await running.stop()


async def test_plain_http_is_sent_to_the_https_address(served: HttpsServer) -> None:
    """The target comes from the configured address: a forged Host header changes nothing."""
    port = served.running.cfg.http.redirect_port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"Host": "evil.example"}) as plain:
        page = await plain.get("/p/abc?x=1")
        form = await plain.post("/api/login", json={})
    assert (page.status_code, page.headers["location"]) == (301, served.url + "/p/abc?x=1")
    assert "请使用 HTTPS" in page.text
    assert (form.status_code, form.headers["location"]) == (308, served.url + "/api/login")


async def test_console_and_party_page_over_https_in_chromium(served: HttpsServer) -> None:
    async with chromium(trusting=served.cert.ca, hosts={HOST: "127.0.0.1"}) as browser:
        page = await browser.new_page()
        first = await page.goto(served.plain_url + "/login")
        assert page.url == served.url + "/login"
        assert first is not None and first.headers["strict-transport-security"] == "max-age=31536000"
        # The live feed arrives over wss:// on the same port; login_live waits until it says hello.
        await login_live(page, served.url, "wuhua")
        (session,) = [c for c in await page.context.cookies() if c.get("name") == SESSION_COOKIE]
        assert session.get("secure") is True and session.get("httpOnly") is True

        party = await browser.new_page()
        await party.goto(served.url + "/p")
        assert await party.evaluate("window.isSecureContext") is True
        kinds = await party.evaluate(
            """navigator.mediaDevices.getUserMedia({ audio: true, video: true })
                 .then((media) => media.getTracks().map((track) => track.kind).sort())"""
        )
        assert kinds == ["audio", "video"]


async def test_a_page_over_plain_http_on_the_same_name_has_no_camera(tmp_path: Path, broker: Mosquitto) -> None:
    """The control for the test above: the same page, name and browser without TLS is no secure
    context, and the phone's call button could not open the camera."""
    cfg = make_server_config(tmp_path / "server", broker.port)
    running = await start_server(cfg)
    try:
        async with chromium(hosts={HOST: "127.0.0.1"}) as browser:
            page = await browser.new_page()
            await page.goto(f"http://{HOST}:{cfg.http.port}/p")
            assert await page.evaluate("[window.isSecureContext, 'mediaDevices' in navigator]") == [False, False]
    finally:
        await running.stop()
