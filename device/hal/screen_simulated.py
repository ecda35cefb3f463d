"""A kiosk screen for the demo and the tests: each screen is written out as the page Chromium would show.

``screen.html`` in the output folder is always the current screen (replaced whole, so a reader
never sees half of one); ``shown`` keeps every view since start-up for the tests to follow.
Writing is handed to a thread and done in order, so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from device.config import ScreenSection
from device.hal.screen import Screen, View, render_page

log = logging.getLogger(__name__)

PAGE = "screen.html"


class SimulatedScreen(Screen):
    def __init__(self, cfg: ScreenSection, output_dir: Path) -> None:
        super().__init__(cfg)
        self.output_dir = output_dir
        self.shown_views: list[View] = []
        self._writes: asyncio.Queue[str] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._failure = ""

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

    async def _write_pages(self) -> None:
        while True:
            text = await self._writes.get()
            try:
                await asyncio.to_thread(_replace, self.page, text)
                self._failure = ""
            except OSError as exc:
                self._failure = f"cannot write {self.page}: {exc.strerror}"
                log.error("screen: %s", self._failure)
            finally:
                self._writes.task_done()


def _replace(path: Path, text: str) -> None:
    partial = path.with_suffix(".part")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
