"""The kiosk's screen at the sizes kiosks are built with: the Pi's 7" touch display (800x480), a
10" panel (1280x800) and a portrait totem (1080x1920). Every screen a party can meet, with the
longest text each can hold, is opened in headless Chromium: no element's text overflows its box,
nothing lies outside the viewport, and the case number and the QR code are whole. Screenshots
stay in the test's folder for a person to look at.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image
from playwright.async_api import Page
from pyzbar import pyzbar  # type: ignore[import-untyped]

from device.hal.screen import VOICE_STEPS, CallPhase, CallView, Shown, View, qr_svg, render_page
from tests.browser import chromium

SIZES = [(800, 480), (1280, 800), (1080, 1920)]
CASE_NO = "530102202512060012"  # 18 digits: unit, date, sequence
CASE_URL = f"https://kuaichu.example.cn/p?case={CASE_NO}"
DOCUMENT_URL = f"https://kuaichu.example.cn/p?case={CASE_NO}"
LONGEST = "请两位驾驶人把车辆靠右移到应急车道以外的安全地点，开启危险报警闪光灯，" * 4  # 148 characters
NAMES = ("张晓明", "李卫国")


def _picture_data_url() -> str:
    out = io.BytesIO()
    Image.new("RGB", (640, 360), (40, 120, 60)).save(out, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


PICTURE_DATA_URL = _picture_data_url()

# Every element whose text could overflow, and whether it (or anything) leaves the viewport.
OVERFLOWS = """() => {
  const w = window.innerWidth, h = window.innerHeight, found = [];
  for (const e of document.querySelectorAll("main, main *")) {
    const box = e.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    const name = e.tagName.toLowerCase() + (e.className && typeof e.className === "string" ? "." + e.className : "");
    if (box.left < -0.5 || box.top < -0.5 || box.right > w + 0.5 || box.bottom > h + 0.5)
      found.push(`${name} outside the viewport: ${JSON.stringify(box)}`);
    if (e.clientWidth > 0 && (e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1))
      found.push(`${name} overflows: ${e.scrollWidth}x${e.scrollHeight} in ${e.clientWidth}x${e.clientHeight}`);
  }
  return found;
}"""


def screens() -> dict[str, View]:
    case_qr = qr_svg(CASE_URL)
    live = CallView(CallPhase.LIVE, NAMES, VOICE_STEPS)
    seen = CallView(CallPhase.LIVE, NAMES, VOICE_STEPS, video=True)  # the dispatcher shares a camera
    return {
        "idle": View(Shown.IDLE),
        "offline": View(Shown.OFFLINE),
        "reporting": View(Shown.REPORTING),
        "failed": View(Shown.FAILED),
        "case-connecting": View(Shown.CASE, CASE_NO, CASE_URL, case_qr, CallView(CallPhase.CONNECTING)),
        "case-ringing": View(Shown.CASE, CASE_NO, CASE_URL, case_qr, CallView(CallPhase.RINGING)),
        "case-live": View(Shown.CASE, CASE_NO, CASE_URL, case_qr, live),
        "case-hold": View(Shown.CASE, CASE_NO, CASE_URL, case_qr, CallView(CallPhase.HOLD)),
        "case-instruction": View(Shown.CASE, CASE_NO, CASE_URL, case_qr, live, LONGEST),
        "case-video": View(Shown.CASE, CASE_NO, CASE_URL, case_qr, seen),
        "case-video-instruction": View(Shown.CASE, CASE_NO, CASE_URL, case_qr, seen, LONGEST),
        "case-no-portal": View(Shown.CASE, CASE_NO, call=CallView(CallPhase.ENDED), instruction="请把车辆移到路边。"),
        "clear-road": View(Shown.CLEAR_ROAD, CASE_NO, call=live, instruction=LONGEST),
        "document": View(Shown.DOCUMENT, CASE_NO, DOCUMENT_URL, qr_svg(DOCUMENT_URL)),
    }


async def show(page: Page, view: View) -> list[Any]:
    await page.set_content(render_page(view))
    # The dispatcher's picture, as a kiosk's camera-less console sends it: 640x360.
    await page.evaluate(
        """async (src) => {
          const picture = document.querySelector("img.dispatcher");
          if (!picture) return;
          picture.src = src;
          await picture.decode();
        }""",
        PICTURE_DATA_URL,
    )
    await page.evaluate("document.fonts.ready")
    found: list[Any] = await page.evaluate(OVERFLOWS)
    return found


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_every_screen_fits_with_nothing_cut_off(width: int, height: int, tmp_path: Path) -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": width, "height": height})
        problems = {}
        for name, view in screens().items():
            found = await show(page, view)
            await page.screenshot(path=str(tmp_path / f"{name}-{width}x{height}.png"))
            if found:
                problems[name] = found
            if view.case_no is not None:
                digits = page.locator(".digits")
                assert (await digits.inner_text()).replace(" ", "") == CASE_NO
            if view.qr is not None:
                shot = await page.locator(".qr svg").screenshot()
                codes = pyzbar.decode(Image.open(io.BytesIO(shot)))
                assert [c.data.decode() for c in codes] == [view.url], name
        assert not problems, "\n".join(f"{name}: {found}" for name, found in problems.items())


async def test_the_case_number_is_large_and_the_call_says_who_speaks(tmp_path: Path) -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        await show(page, screens()["case-live"])
        # Large enough to copy from an arm's length on the smallest display: over 30 px a digit.
        size = await page.locator(".digits").evaluate("(e) => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= 30
        call = page.locator(".call")
        assert await call.get_attribute("data-phase") == "live"
        assert "接警员 张晓明、李卫国" in await call.inner_text()
        assert "正在讲话" in await call.inner_text()
        assert await page.locator(".meter i.on").count() == VOICE_STEPS
        await show(page, screens()["case-hold"])
        assert "通话保持中" in await page.locator(".call").inner_text()
        await show(page, screens()["case-instruction"])
        assert LONGEST in await page.locator(".instruction").inner_text()


def test_the_call_panel_follows_the_call_from_connecting_to_hold_and_the_end() -> None:
    from device.call.line import Line

    seen: list[CallView | None] = []
    line = Line(seen.append)
    line.connected(True)
    line.operators(["张晓明"])
    loud = av.AudioFrame.from_ndarray(
        (np.sin(np.arange(960) / 3) * 20000).astype("<i2").reshape(1, -1), format="s16", layout="mono"
    )
    line.voice(loud)
    line.operators([])
    line.connected(False)
    line.connected(True)
    line.ended()
    assert seen == [
        CallView(CallPhase.CONNECTING),
        CallView(CallPhase.RINGING),
        CallView(CallPhase.LIVE, ("张晓明",)),
        CallView(CallPhase.LIVE, ("张晓明",), VOICE_STEPS),
        CallView(CallPhase.HOLD),
        CallView(CallPhase.RECONNECTING),
        CallView(CallPhase.HOLD),
        CallView(CallPhase.ENDED),
    ]
