"""The kiosk's touch screen: what a walk-up party reads where a driver in a car has only the LED.

The screen follows the same signals as the LED (``Signal``), with the case number written out,
and shows two notices from the server for ``[screen] notice_s``: "clear the road" and, once an
officer has issued the determination, its case number and a QR code of the link the parties'
SMS also carries. The notice then gives way to the kiosk's resting screen: a kiosk stands in a
public place, and the link opens a document with the parties' names in it.

What is shown is a pure function of a ``View`` (``render_main``, ``render_page``: HTML with the QR
code as inline SVG), so the backends differ only in where the page goes: ``screen_browser`` serves
it to Chromium in kiosk mode on the unit's own display, ``screen_simulated`` writes it to files.
"""

from __future__ import annotations

import asyncio
import html
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import qrcode  # type: ignore[import-untyped]

from device.config import ScreenSection
from device.hal.indicators import Signal

log = logging.getLogger(__name__)

QR_BORDER = 4  # modules of quiet zone around the code, as the standard asks


class Shown(StrEnum):
    IDLE = "idle"
    OFFLINE = "offline"
    REPORTING = "reporting"
    RETRYING = "retrying"
    FAILED = "failed"
    CASE = "case"
    CLEAR_ROAD = "clear-road"
    DOCUMENT = "document"


@dataclass(frozen=True)
class View:
    shown: Shown
    case_no: str | None = None
    url: str | None = None  # DOCUMENT: the link in the QR code
    qr: str | None = field(default=None, repr=False)  # DOCUMENT: that QR code, as SVG


_SIGNAL_VIEW: dict[Signal, Shown] = {
    Signal.IDLE: Shown.IDLE,
    Signal.OFFLINE: Shown.OFFLINE,
    Signal.REPORTING: Shown.REPORTING,
    Signal.RETRYING: Shown.RETRYING,
    Signal.FAILED: Shown.FAILED,
    Signal.CONNECTED: Shown.CASE,
    Signal.CASE_OPEN: Shown.CASE,
    Signal.CLEAR_ROAD: Shown.CLEAR_ROAD,
}

# A new report takes the screen from a notice at once; a resting signal waits for the notice to end.
_TAKES_OVER = {Shown.REPORTING, Shown.RETRYING, Shown.FAILED}

# (heading, the line under it) of each screen.
_TEXT: dict[Shown, tuple[str, str]] = {
    Shown.IDLE: (
        "一键报警",
        # People to safety, vehicles left where they are: the dispatcher sees the scene on video
        # before telling the parties to clear the road.
        "发生轻微交通事故：请人员先撤到路边安全处，开启危险报警闪光灯，在车后方50至100米处放置警告标志"
        "（高速公路150米以外），再按住报警按钮。",
    ),
    Shown.OFFLINE: ("网络暂时中断", "仍可按住报警按钮：报警已保存，网络恢复后自动发出。紧急情况请拨打122。"),
    Shown.REPORTING: ("正在报警，请稍候", "请留在报警亭前，民警将通过视频与您联系。"),
    Shown.RETRYING: ("网络中断，正在重试", "报警已保存，网络恢复后自动发出。紧急情况请拨打122。"),
    Shown.FAILED: ("报警失败", "请拨打122报警。"),
    Shown.CASE: ("已接警", "请记下案件编号。民警将通过视频与您联系，请留在屏幕前。"),
    Shown.CLEAR_ROAD: ("请立即驶离现场", "证据已收集完毕。请将车辆驶离，避免拥堵和二次事故；认定结果将以短信通知。"),
    Shown.DOCUMENT: (
        "事故认定书已出具",
        "请用手机扫码查看、下载或打印。对认定有异议的，可自送达之日起三日内书面申请复核。",
    ),
}

_STYLE = """
html, body { margin: 0; height: 100%; background: #0b2545; color: #fff;
  font-family: "Noto Sans CJK SC", "Noto Sans SC", sans-serif; }
main { box-sizing: border-box; height: 100%; padding: 6vh 6vw; display: flex; flex-direction: column;
  justify-content: center; align-items: center; text-align: center; gap: 3vh; }
h1 { font-size: 8vh; margin: 0; }
.case-no { font-size: 6vh; font-family: "DejaVu Sans Mono", monospace; letter-spacing: 0.1em; }
.case-no span { font-size: 3vh; display: block; letter-spacing: 0; }
.qr { background: #fff; width: 40vh; height: 40vh; }
.qr svg { width: 100%; height: 100%; display: block; }
p { font-size: 3.5vh; max-width: 80vw; margin: 0; line-height: 1.5; }
main[data-shown="failed"], main[data-shown="clear-road"] { background: #8d0801; }
"""


def qr_svg(url: str) -> str:
    """``url`` as a QR code in SVG, one unit per module, so it stays sharp at any screen size."""
    code = qrcode.QRCode(border=QR_BORDER, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(url)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()  # the quiet zone included
    size = len(matrix)
    modules = "".join(f"M{x} {y}h1v1h-1z" for y, row in enumerate(matrix) for x, dark in enumerate(row) if dark)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path d="{modules}" fill="#000"/></svg>'
    )


def render_main(view: View) -> str:
    """The ``<main>`` element of the page for ``view``: everything that changes from screen to screen."""
    heading, line = _TEXT[view.shown]
    parts = [f'<main data-shown="{view.shown.value}">', f"<h1>{heading}</h1>"]
    if view.case_no is not None and view.shown in (Shown.CASE, Shown.CLEAR_ROAD, Shown.DOCUMENT):
        parts.append(f'<div class="case-no"><span>案件编号</span>{html.escape(view.case_no)}</div>')
    if view.shown is Shown.DOCUMENT and view.url is not None and view.qr is not None:
        parts.append(f'<div class="qr" data-url="{html.escape(view.url)}">{view.qr}</div>')
    parts.append(f"<p>{line}</p></main>")
    return "".join(parts)


def render_page(view: View, script: str = "") -> str:
    """A whole page for ``view``; ``script`` is what keeps it current where a backend serves it live."""
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>快处</title><style>{_STYLE}</style></head><body>{render_main(view)}"
        + (f"<script>{script}</script>" if script else "")
        + "</body></html>"
    )


class Screen(ABC):
    """Base of the screen backends: decides what is on screen; a backend implements ``_present``
    (called on the event loop whenever that changes, must not block) and may override ``start``,
    ``stop`` and ``note``."""

    def __init__(self, cfg: ScreenSection) -> None:
        self.cfg = cfg
        self._resting = View(Shown.IDLE)
        self._notice: View | None = None
        self._notice_ends: asyncio.TimerHandle | None = None
        self._presented: View | None = None

    @property
    def shown(self) -> View:
        return self._notice or self._resting

    @property
    def note(self) -> str:
        """Why the screen is not working, for the unit's health; empty when it is."""
        return ""

    async def start(self) -> None:
        self._refresh()

    async def stop(self) -> None:
        if self._notice_ends is not None:
            self._notice_ends.cancel()

    def signal(self, signal: Signal, case_no: str | None) -> None:
        """Follow the LED: ``signal`` with the open case's number, if there is one."""
        self._resting = View(_SIGNAL_VIEW[signal], case_no)
        if self._resting.shown in _TAKES_OVER:
            self._end_notice()
        self._refresh()

    def clear_road(self, case_no: str) -> None:
        self._show_notice(View(Shown.CLEAR_ROAD, case_no))

    async def document(self, case_no: str, url: str) -> None:
        # Tens of milliseconds of pure Python for a long link on a PC, ten times that on a Pi.
        self._show_notice(View(Shown.DOCUMENT, case_no, url, await asyncio.to_thread(qr_svg, url)))

    def _show_notice(self, view: View) -> None:
        if self._notice_ends is not None:
            self._notice_ends.cancel()
        self._notice = view
        self._notice_ends = asyncio.get_running_loop().call_later(self.cfg.notice_s, self._notice_over)
        self._refresh()

    def _notice_over(self) -> None:
        self._end_notice()
        self._refresh()

    def _end_notice(self) -> None:
        if self._notice_ends is not None:
            self._notice_ends.cancel()
        self._notice = self._notice_ends = None

    def _refresh(self) -> None:
        view = self.shown
        if view != self._presented:
            log.debug("screen: %s", view.shown.value)
            self._presented = view
            self._present(view)

    @abstractmethod
    def _present(self, view: View) -> None:
        """Put ``view`` on the screen."""


def make_screen(cfg: ScreenSection, data_dir: Path) -> Screen | None:
    """The backend ``cfg.backend`` names, or None for a unit without a screen."""
    if cfg.backend == "browser":
        from device.hal.screen_browser import BrowserScreen

        return BrowserScreen(cfg)
    if cfg.backend == "simulated":
        from device.hal.screen_simulated import SimulatedScreen

        return SimulatedScreen(cfg, cfg.output_dir or data_dir / "screen")
    return None
