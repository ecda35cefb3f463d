"""The kiosk's touch screen: what a walk-up party reads where a driver in a car has only the LED.

The screen follows the same signals as the LED (``Signal``), with the case number written out
large and, where ``[screen] portal_url`` is set, as a QR code of the parties' page for the case
(``{portal_url}?case={case_no}``: a party logs in there with the code sent to their phone). While
a case is open it follows the call (connecting, waiting for a dispatcher, who is on the line and
how loud they are speaking, on hold, ended) and shows the dispatcher's latest instruction. Two
notices from the server stay for ``[screen] notice_s``: "clear the road" and, once an officer has
issued the determination, its case number and a QR code of the link the parties' SMS also
carries. The notice then gives way to the kiosk's resting screen: a kiosk stands in a public
place, and the link opens a document with the parties' names in it.

The page fits any screen from the Pi's 800x480 touch display to a 1080x1920 portrait panel: two
columns in landscape, one in portrait, every size in viewport units, and the case number sized
to the width it has (a container query), so the digits a party must note are never cut off.

What is shown is a pure function of a ``View`` (``render_main``, ``render_page``: HTML with the QR
code as inline SVG), so the backends differ only in where the page goes: ``screen_browser`` serves
it to Chromium in kiosk mode on the unit's own display, ``screen_simulated`` writes it to files.
"""

from __future__ import annotations

import asyncio
import html
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import qrcode  # type: ignore[import-untyped]

from device.config import ScreenSection
from device.hal.indicators import Signal

log = logging.getLogger(__name__)

QR_BORDER = 4  # modules of quiet zone around the code, as the standard asks
PICTURE = "dispatcher.jpg"  # the dispatcher's latest picture, beside the page


class Shown(StrEnum):
    IDLE = "idle"
    OFFLINE = "offline"
    REPORTING = "reporting"
    RETRYING = "retrying"
    FAILED = "failed"
    CASE = "case"
    CLEAR_ROAD = "clear-road"
    DOCUMENT = "document"


class CallPhase(StrEnum):
    CONNECTING = "connecting"  # the unit has offered; no media path yet
    RINGING = "ringing"  # connected; no dispatcher has picked up yet
    LIVE = "live"  # a dispatcher is on the line
    HOLD = "hold"  # every dispatcher left the line; the call stays up
    RECONNECTING = "reconnecting"  # the media path was lost; the unit offers again
    ENDED = "ended"


@dataclass(frozen=True)
class CallView:
    """The live call as the party sees it."""

    phase: CallPhase
    operators: tuple[str, ...] = ()  # LIVE: who is on the line
    voice: int = 0  # 0 (silent) to VOICE_STEPS: how loud the dispatcher's voice on the speaker is now
    video: bool = False  # the dispatcher shares a camera: their picture is on the screen


VOICE_STEPS = 4


@dataclass(frozen=True)
class View:
    shown: Shown
    case_no: str | None = None
    url: str | None = None  # CASE: the parties' page of the case; DOCUMENT: the determination's link
    qr: str | None = field(default=None, repr=False)  # that link as a QR code, in SVG
    call: CallView | None = None  # CASE, CLEAR_ROAD: the live call
    instruction: str | None = None  # CASE, CLEAR_ROAD: the dispatcher's latest instruction


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

# What the call panel says in each phase; LIVE names the dispatchers.
_CALL_TEXT: dict[CallPhase, str] = {
    CallPhase.CONNECTING: "正在接通视频，请稍候",
    CallPhase.RINGING: "正在呼叫接警员，请留在屏幕前",
    CallPhase.LIVE: "正在与您通话",
    CallPhase.HOLD: "通话保持中，接警员马上回来，请勿离开",
    CallPhase.RECONNECTING: "网络不稳，正在重新连接",
    CallPhase.ENDED: "视频通话已结束",
}

# --u is the page's unit: a hundredth of the height in landscape, narrower in portrait, so text
# keeps its proportions from 800x480 to 1080x1920. Landscape puts the QR code beside the text,
# portrait under it; the case number's digits take the width their column has (cqi).
_STYLE = """
html, body { margin: 0; height: 100%; overflow: hidden; background: #0b2545; color: #fff;
  font-family: "Noto Sans CJK SC", "Noto Sans SC", sans-serif; }
main { --u: min(1vh, 1.25vw); box-sizing: border-box; height: 100%; padding: calc(var(--u) * 4) 5vw;
  display: grid; grid-template-columns: minmax(0, 1fr) auto; align-items: center; column-gap: 4vw; }
main[data-shown="failed"], main[data-shown="clear-road"] { background: #8d0801; }
.text { display: flex; flex-direction: column; align-items: center; text-align: center;
  gap: calc(var(--u) * 2.2); min-width: 0; }
h1 { font-size: calc(var(--u) * 8); line-height: normal; margin: 0; }
p { font-size: calc(var(--u) * 3.6); line-height: 1.45; margin: 0; max-width: 100%; overflow-wrap: anywhere; }
.case-no { container-type: inline-size; width: 100%; }
.case-no .label, .qr .label, .instruction .label { display: block; font-size: calc(var(--u) * 3); opacity: 0.85; }
.digits { display: block; white-space: nowrap; font-weight: 700; line-height: 1.2;
  font-family: "DejaVu Sans Mono", monospace; font-size: min(calc(var(--u) * 10), calc(100cqi / 12.8)); }
.digits span + span { margin-left: 0.35em; }
.call { display: flex; flex-wrap: wrap; justify-content: center; align-items: center;
  gap: calc(var(--u) * 1.5); font-size: calc(var(--u) * 3.6); line-height: normal;
  padding: calc(var(--u) * 1) calc(var(--u) * 2.5); border-radius: calc(var(--u) * 4); background: #13315c;
  max-width: 100%; box-sizing: border-box; }
.call .who { font-weight: 700; overflow-wrap: anywhere; }
.meter { display: inline-flex; align-items: flex-end; gap: calc(var(--u) * 0.5); height: calc(var(--u) * 3.6); }
.meter i { display: block; width: calc(var(--u) * 0.9); background: #4a6a8f; border-radius: 2px; }
.meter i:nth-child(1) { height: 25%; } .meter i:nth-child(2) { height: 50%; }
.meter i:nth-child(3) { height: 75%; } .meter i:nth-child(4) { height: 100%; }
.meter i.on { background: #7bd389; }
.speaking { color: #7bd389; font-weight: 700; }
.dispatcher { display: block; max-width: 100%; height: calc(var(--u) * 30); object-fit: contain;
  background: #000; border-radius: calc(var(--u) * 1.5); }
.text:has(.instruction) .dispatcher { height: calc(var(--u) * 16); }  /* the instruction comes first */
.call[data-phase="hold"], .call[data-phase="reconnecting"] { background: #8a5a00; }
.instruction { background: #fff3c4; color: #3b2a00; border-radius: calc(var(--u) * 1.5);
  padding: calc(var(--u) * 1.2) calc(var(--u) * 2.5); width: 100%; box-sizing: border-box; }
.instruction p { font-size: calc(var(--u) * 3.8); font-weight: 700; }
.instruction[data-long] p { font-size: calc(var(--u) * 3); }
.qr { display: flex; flex-direction: column; align-items: center; gap: calc(var(--u) * 1); text-align: center; }
.qr svg { width: min(56vh, 36vw); height: min(56vh, 36vw); display: block; background: #fff; }
main[data-shown="document"] .qr svg { width: min(70vh, 40vw); height: min(70vh, 40vw); }
@media (max-aspect-ratio: 1/1) {
  main { --u: min(0.7vh, 1.25vw); grid-template-columns: minmax(0, 1fr); align-content: center;
    row-gap: calc(var(--u) * 5); }
  .qr svg, main[data-shown="document"] .qr svg { width: min(60vw, 34vh); height: min(60vw, 34vh); }
  .text:has(.instruction) .dispatcher { height: calc(var(--u) * 16); }
  main:has(.dispatcher) .qr svg { width: min(50vw, 26vh); height: min(50vw, 26vh); }
}
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
    parts = [f'<main data-shown="{view.shown.value}"><div class="text">', f"<h1>{heading}</h1>"]
    if view.case_no is not None and view.shown in (Shown.CASE, Shown.CLEAR_ROAD, Shown.DOCUMENT):
        parts.append(f'<div class="case-no"><span class="label">案件编号</span>{_digits(view.case_no)}</div>')
    if view.call is not None and view.call.video:
        parts.append(f'<img class="dispatcher" src="{PICTURE}" alt="接警员视频">')
    if view.call is not None:
        parts.append(_call_panel(view.call))
    if view.instruction is not None:
        long = " data-long" if len(view.instruction) > 60 else ""
        parts.append(
            f'<div class="instruction"{long}><span class="label">接警员提示</span>'
            f"<p>{html.escape(view.instruction)}</p></div>"
        )
    if not (view.shown is Shown.CASE and view.instruction is not None):  # the instruction says what to do now
        parts.append(f'<p class="line">{line}</p>')
    parts.append("</div>")
    if view.url is not None and view.qr is not None:
        label = "扫码查看、下载认定书" if view.shown is Shown.DOCUMENT else "扫码查看案件进度"
        parts.append(
            f'<div class="qr" data-url="{html.escape(view.url)}">{view.qr}<span class="label">{label}</span></div>'
        )
    parts.append("</main>")
    return "".join(parts)


def _digits(case_no: str) -> str:
    """A case number as the party copies it: unit, date and sequence set apart (530102 20251206 0012)
    by spacing alone, so the text is the number as it stands."""
    groups = [case_no[:6], case_no[6:14], case_no[14:]] if case_no.isdigit() and len(case_no) > 14 else [case_no]
    return '<span class="digits">' + "".join(f"<span>{html.escape(g)}</span>" for g in groups) + "</span>"


def _call_panel(call: CallView) -> str:
    parts = [f'<div class="call" data-phase="{call.phase.value}" data-voice="{call.voice}">']
    if call.phase is CallPhase.LIVE:
        names = "、".join(html.escape(name) for name in call.operators)
        bars = "".join('<i class="on"></i>' if step < call.voice else "<i></i>" for step in range(VOICE_STEPS))
        parts.append(f'<span class="who">接警员 {names}</span><span class="meter" aria-hidden="true">{bars}</span>')
        parts.append(
            '<span class="speaking">正在讲话</span>' if call.voice > 0 else f"<span>{_CALL_TEXT[call.phase]}</span>"
        )
    else:
        parts.append(f"<span>{_CALL_TEXT[call.phase]}</span>")
    parts.append("</div>")
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
        self._call: CallView | None = None
        self._instruction: tuple[str, str] | None = None  # (case number, text)
        self._case_page: tuple[str, str, str] | None = None  # (case number, its page's URL, QR code)
        self._drawing: asyncio.Task[None] | None = None  # the QR code of the case's page

    @property
    def shown(self) -> View:
        view = self._notice or self._resting
        if view.shown not in (Shown.CASE, Shown.CLEAR_ROAD):
            return view
        said = self._instruction[1] if self._instruction and self._instruction[0] == view.case_no else None
        view = replace(view, call=self._call, instruction=said)
        page = self._case_page
        if view.shown is Shown.CASE and page is not None and page[0] == view.case_no:
            view = replace(view, url=page[1], qr=page[2])
        return view

    @property
    def note(self) -> str:
        """Why the screen is not working, for the unit's health; empty when it is."""
        return ""

    async def start(self) -> None:
        self._refresh()

    async def stop(self) -> None:
        if self._notice_ends is not None:
            self._notice_ends.cancel()
        if self._drawing is not None:
            self._drawing.cancel()

    def signal(self, signal: Signal, case_no: str | None) -> None:
        """Follow the LED: ``signal`` with the open case's number, if there is one."""
        self._resting = View(_SIGNAL_VIEW[signal], case_no)
        if self._resting.shown in _TAKES_OVER:
            self._end_notice()
        if self._resting.shown not in (Shown.CASE, Shown.CLEAR_ROAD):
            self._call = self._instruction = None  # the next case starts with neither
        if case_no is not None and self.cfg.portal_url is not None and (self._case_page or ("",))[0] != case_no:
            if self._drawing is not None:
                self._drawing.cancel()
            self._drawing = asyncio.get_running_loop().create_task(self._draw_case_page(case_no))
        self._refresh()

    def call(self, view: CallView | None) -> None:
        """The live call's state; None once no call runs."""
        self._call = view
        self._refresh()

    def picture(self, jpeg: bytes) -> None:
        """The dispatcher's latest picture (a JPEG), while the call's view says their camera is on."""
        self._picture(jpeg)

    @abstractmethod
    def _picture(self, jpeg: bytes) -> None:
        """Put ``jpeg`` where the page's ``PICTURE`` finds it; on the event loop, must not block."""

    def instruct(self, case_no: str, text: str) -> None:
        """The dispatcher's instruction for ``case_no``: shown while that case is on screen, until the next."""
        self._instruction = (case_no, text)
        self._refresh()

    async def _draw_case_page(self, case_no: str) -> None:
        url = f"{self.cfg.portal_url}?case={case_no}"
        self._case_page = (case_no, url, await asyncio.to_thread(qr_svg, url))
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
