"""The kiosk screen as a page on the unit's own display: Chromium in kiosk mode shows what this serves.

This is what kiosk makers on a Raspberry Pi run: the official touch display, the desktop's
Chromium started full-screen with ``--kiosk http://127.0.0.1:8088/``, and the application serving
the page. Chinese text, layout for any screen size and touch come with the browser, and the
firmware only writes HTML. (A framebuffer renderer would need its own fonts, text shaping and
layout, and the Pi's KMS display stack no longer offers a plain framebuffer to draw on.)

The page asks ``/view?v=N`` and the answer comes when the screen differs from version N (or after
``POLL_S``, unchanged), so a change shows at once and a browser restarted by its watchdog just
loads ``/`` again. The server speaks just enough HTTP/1.1 for that, one request per connection,
on the loopback address by default: nothing else on the network reaches the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from device.config import ScreenSection
from device.hal.screen import PICTURE, Screen, View, render_main, render_page

log = logging.getLogger(__name__)

POLL_S = 25.0  # below the browser's and any proxy's idle timeouts
REQUEST_LIMIT = 8192  # bytes of request line and headers; the page sends a few hundred
READ_TIMEOUT_S = 10.0

# Asks for the next screen, swaps the <main> element in place, and keeps asking; on an error
# (the firmware restarting) it waits a little and asks again.
SCRIPT = """
let version = %d;
async function follow() {
  for (;;) {
    try {
      const answer = await fetch("/view?v=" + version, {cache: "no-store"});
      if (!answer.ok) throw new Error(answer.status);
      const screen = await answer.json();
      if (screen.v !== version) {
        version = screen.v;
        document.querySelector("main").outerHTML = screen.main;
      }
    } catch (e) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}
follow();
// The dispatcher's picture, while it is on the page: the next as soon as the last has loaded.
setInterval(() => {
  const picture = document.querySelector("img.dispatcher");
  if (picture && picture.complete) picture.src = "/dispatcher.jpg?t=" + Date.now();
}, 120);
"""


class BrowserScreen(Screen):
    def __init__(self, cfg: ScreenSection) -> None:
        super().__init__(cfg)
        self._version = 0
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._answering: set[asyncio.Task[Any]] = set()  # a long poll outlives its browser; stop ends it
        self._failure = "not started"
        self._latest_picture = b""

    @property
    def note(self) -> str:
        return self._failure

    @property
    def address(self) -> str:
        return f"http://{self.cfg.host}:{self.cfg.port}/"

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self.cfg.host, self.cfg.port, limit=REQUEST_LIMIT)
        except OSError as exc:
            # The unit still reports without its screen; the heartbeat tells the technician why.
            self._failure = f"cannot serve {self.address}: {exc.strerror}"
            log.error("screen: %s", self._failure)
        else:
            self._failure = ""
            log.info("screen: serving %s", self.address)
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._server is not None:
            self._server.close()
            for answering in list(self._answering):
                answering.cancel()
            await asyncio.gather(*self._answering, return_exceptions=True)
            await self._server.wait_closed()

    def _present(self, view: View) -> None:
        """A new version (the page asks for ``shown``) wakes every poll waiting for one."""
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def _picture(self, jpeg: bytes) -> None:
        self._latest_picture = jpeg

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)
        try:
            status, kind, body = await self._answer(reader)
            head = (
                f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("ascii") + body)
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the browser went away; it asks again
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[HTTPStatus, str, bytes]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
        except asyncio.LimitOverrunError:
            return _text(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
        request = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(request) != 3 or not request[2].startswith("HTTP/1."):
            return _text(HTTPStatus.BAD_REQUEST, "not an HTTP/1.x request line")
        method, target, _ = request
        if method != "GET":
            return _text(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} not allowed: the screen is only read")
        url = urlsplit(target)
        if url.path == "/":
            page = render_page(self.shown, SCRIPT % self._version)
            return HTTPStatus.OK, "text/html; charset=utf-8", page.encode("utf-8")
        if url.path == "/view":
            seen = parse_qs(url.query).get("v", [""])[0]
            if not seen.isdigit():
                return _text(HTTPStatus.BAD_REQUEST, "v must be the version the page shows")
            if int(seen) == self._version:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), POLL_S)
            screen = {"v": self._version, "main": render_main(self.shown)}
            return HTTPStatus.OK, "application/json", json.dumps(screen, ensure_ascii=False).encode("utf-8")
        if url.path == "/" + PICTURE and self._latest_picture:
            return HTTPStatus.OK, "image/jpeg", self._latest_picture
        return _text(HTTPStatus.NOT_FOUND, f"no {url.path} here")


def _text(status: HTTPStatus, message: str) -> tuple[HTTPStatus, str, bytes]:
    return status, "text/plain; charset=utf-8", (message + "\n").encode("utf-8")
