"""A kiosk screen for the demo and the tests: each screen is written out as the page Chromium would show.

``screen.html`` in the output folder is always the current screen (replaced whole, so a reader
never sees half of one), ``dispatcher.jpg`` beside it the dispatcher's latest picture; ``shown``
keeps every view since start-up for the tests to follow. Writing is handed to a thread and done in
order, so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from device.config import ScreenSection
from device.hal.screen import PICTURE, Screen, View, render_page

log = logging.getLogger(__name__)

PAGE = "screen.html"


class SimulatedScreen(Screen):
    def __init__(self, cfg: ScreenSection, output_dir: Path) -> None:
        super().__init__(cfg)
        self.output_dir = output_dir
        self.shown_views: list[View] = []
        self._writes: asyncio.Queue[str | bytes] = asyncio.Queue()  # a page, or the dispatcher's picture
        self._writer: asyncio.Task[None] | None = None
        self._failure = ""
        self.pictures = 0  # the dispatcher's pictures shown

    @property
    def page(self) -> Path:
        return self.output_dir / PAGE

    @property
    def note(self) -> str:
        return self._failure

    async def start(self) -> None:
        await asyncio.to_thread(self.output_dir.mkdir, parents=True, exist_ok=True)
        self._writer = asyncio.create_task(self._write_pages(), name="screen")
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._writer is not None:
            if not self._writer.done():
                await self._writes.join()  # every screen shown is on disk
            self._writer.cancel()

    def _present(self, view: View) -> None:
        self.shown_views.append(view)
        self._writes.put_nowait(render_page(view))

    def _picture(self, jpeg: bytes) -> None:
        self.pictures += 1
        self._writes.put_nowait(jpeg)

    async def _write_pages(self) -> None:
        while True:
            item = await self._writes.get()
            target = self.output_dir / PICTURE if isinstance(item, bytes) else self.page
            try:
                await asyncio.to_thread(_replace, target, item)
                self._failure = ""
            except OSError as exc:
                self._failure = f"cannot write {target}: {exc.strerror}"
                log.error("screen: %s", self._failure)
            finally:
                self._writes.task_done()


def _replace(path: Path, content: str | bytes) -> None:
    partial = path.with_suffix(".part")
    partial.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    os.replace(partial, path)
