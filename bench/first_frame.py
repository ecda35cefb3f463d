"""Press -> the first frame of the unit's video decoded in the dispatcher's console.

Starts the real stack: a private Mosquitto running a freshly provisioned fleet's mutual-TLS
configuration (``tests.pki``), one server worker as its own process (SQLite), one simulated in-car
unit as its own process (``kuaichu device run``: the real firmware over MockFactory pins, a pty
GNSS receiver, the rendered camera at the default 640x480, 15 fps, simulated audio), and a
dispatcher (admin) logged in to the queue page in headless Chromium (``tests.browser``).

Each round drives the unit's button pin through its control socket, as ``kuaichu demo press``
does. The queue page answers by itself: a script in it clicks the case's Answer button the moment
it appears (a dispatcher's reaction time is not the system's), which opens the case's workspace,
and the workspace answers the call as it loads. The first frame is the first
``requestVideoFrameCallback`` on the workspace's ``#call-video``, a frame decoded and handed to the
compositor, so the page load is part of the figure, as it is of a dispatcher's wait. The pages'
times are ``performance.timeOrigin + now``, the wall clock this process reads with ``time.time()``
for the press (one machine, one clock); the queue's marks are kept in ``sessionStorage`` across the
navigation. The long-press hold is 0, as in
``bench/report_latency.py``: it is a deliberate delay for the driver, not the system's response.

Between rounds the workspace ends the call (its End button), the page goes back to the queue, and
the unit is left to return to idle: its
case hold (``[report] case_hold_s``, 1 s here) must expire before a press opens a new case, and
the round after waits for a heartbeat saying so. A warm-up round is run and not counted.

    .venv/bin/python -m bench.first_frame [--rounds 20]

Per round: press -> case in the queue, -> Answer button (the unit's offer reached the server),
-> first frame. Last line: ``p50_ms=… p95_ms=… max_ms=… case_p50_ms=… offer_p50_ms=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.call_stack import running_server, start_unit, stop, wait_fix
from bench.report_latency import PASSWORD
from bench.stack import ForeignLoad, load_line, percentile
from device.sim.control import send_control
from runtime import runner
from tests.browser import chromium
from tests.pki import session_pki

DEVICE_ID = "ff-001"
CASE_HOLD_S = 1.0
IDLE_MARGIN_S = 0.5
ROUND_TIMEOUT_S = 30.0

# Armed once per round on the queue: an observer that notes when the case and its Answer button
# appear, keeps the marks across the navigation, and clicks the button.
ARM_ROUND = """() => {
  const known = new Set([...document.querySelectorAll("tr[data-case]")].map((r) => r.dataset.case));
  const round = { armed: Date.now() };
  window.kcRound = round;
  const wall = (now) => performance.timeOrigin + now;
  const look = () => {
    if (round.caseAt === undefined) {
      const rows = [...document.querySelectorAll("tr[data-case]")].filter((r) => !known.has(r.dataset.case));
      if (rows.length) {
        round.caseAt = wall(performance.now());
        round.caseNo = rows[0].dataset.case;
      }
    }
    if (round.offerAt === undefined && round.caseNo !== undefined) {
      const button = document.querySelector(`tr[data-case="${round.caseNo}"] button.answer`);
      if (button) {
        round.offerAt = wall(performance.now());
        observer.disconnect();
        sessionStorage.setItem("kcRound", JSON.stringify(round));
        button.click();
      }
    }
  };
  const observer = new MutationObserver(look);
  observer.observe(document.body, { childList: true, subtree: true, attributeFilter: ["data-state"] });
  look();
}"""


# On every workspace load: the queue's marks back, when the call went live, and the first frame.
ON_WORKSPACE = """(() => {
  if (!location.pathname.startsWith("/workspace")) return;
  const round = JSON.parse(sessionStorage.getItem("kcRound") || "{}");
  window.kcRound = round;
  const wall = (now) => performance.timeOrigin + now;
  document.addEventListener("DOMContentLoaded", () => {
    const video = document.getElementById("call-video");
    video.requestVideoFrameCallback((now, meta) => {
      round.frame = wall(now);
      round.width = meta.width;
    });
    const state = document.getElementById("call-state");
    new MutationObserver(() => {
      if (round.liveAt === undefined && state.dataset.state === "live") round.liveAt = wall(performance.now());
    }).observe(state, { attributeFilter: ["data-state"] });
  });
})();"""


async def login(page: Page, url: str) -> None:
    await page.goto(url + "/login")
    await page.fill("#username", "bench")
    await page.fill("#password", PASSWORD)
    await page.click("#login-button")
    await page.wait_for_selector('#live-state[data-state="live"]')


async def wait_idle(http: httpx.AsyncClient, case_seen: float, timeout: float = ROUND_TIMEOUT_S) -> None:
    """Until no call of this worker is running and the unit's case hold has expired: a press now
    opens a new case and a new call. The hold began when the unit heard its report accepted, which
    is about when the case reached the page (``case_seen``); a heartbeat cannot tell, as the server
    gathers them for a while before storing them."""
    async with asyncio.timeout(timeout):
        while (await http.get("/api/calls")).json()["calls"]:
            await asyncio.sleep(0.1)
        await asyncio.sleep(max(0.0, case_seen + CASE_HOLD_S + IDLE_MARGIN_S - time.time()))


async def one_round(page: Page, control: Path, url: str) -> dict[str, float]:
    await page.evaluate(ARM_ROUND)
    pressed = time.time()
    answer = await send_control(control, {"cmd": "press", "hold_s": 0.2})
    if not answer.get("ok"):
        raise RuntimeError(f"the unit refused the press: {answer}")
    try:
        await page.wait_for_url("**/workspace**", timeout=ROUND_TIMEOUT_S * 1000)
        await page.wait_for_function(
            "() => window.kcRound && window.kcRound.frame !== undefined", timeout=ROUND_TIMEOUT_S * 1000
        )
    except PlaywrightTimeout:
        noted = await page.evaluate("() => window.kcRound")
        state = await page.text_content("#call-state") if "/workspace" in page.url else None
        raise RuntimeError(
            f"no frame within {ROUND_TIMEOUT_S:.0f} s: the pages saw {noted} at {page.url}, call {state!r}"
        ) from None
    seen: dict[str, Any] = await page.evaluate("() => window.kcRound")
    await page.click("#call-end")
    await page.goto(url + "/console")
    await page.wait_for_selector('#live-state[data-state="live"]')
    return {
        "case_at": seen["caseAt"] / 1000,
        "case_ms": seen["caseAt"] - pressed * 1000,
        "offer_ms": seen["offerAt"] - pressed * 1000,
        "live_ms": seen.get("liveAt", float("nan")) - pressed * 1000,
        "frame_ms": seen["frame"] - pressed * 1000,
        "width": seen["width"],
    }


async def run(rounds: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="kc-bench-ff-"))
    print(load_line())
    others = ForeignLoad()
    with session_pki() as pki, pki.mosquitto(root / "mosquitto.log") as broker:
        async with running_server(root, pki, broker.port) as server:
            unit, control = await start_unit(
                root / "unit", broker.port, DEVICE_ID, report={"case_hold_s": CASE_HOLD_S, "heartbeat_s": 1.0}
            )
            try:
                async with chromium() as browser:
                    page = await browser.new_page()
                    said: list[str] = []  # the pages' console, for a round that fails
                    page.on("console", lambda message: said.append(f"{message.type}: {message.text}"))
                    page.on("pageerror", lambda error: said.append(f"error: {error}"))
                    await page.add_init_script(ON_WORKSPACE)
                    await login(page, server.url)
                    await wait_fix(server.http, DEVICE_ID)
                    figures: list[dict[str, float]] = []
                    for round_no in range(rounds + 1):
                        try:
                            result = await one_round(page, control, server.url)
                        except RuntimeError as exc:
                            raise RuntimeError(f"{exc}; the pages said: {said[-10:]}") from None
                        label = "warm-up" if round_no == 0 else f"round {round_no}"
                        print(
                            f"{label}: case {result['case_ms']:.0f} ms, offer {result['offer_ms']:.0f} ms, "
                            f"connected {result['live_ms']:.0f} ms, first frame {result['frame_ms']:.0f} ms "
                            f"({result['width']:.0f} px wide)",
                            flush=True,
                        )
                        if round_no > 0:
                            figures.append(result)
                        await wait_idle(server.http, result["case_at"])
                    # Read while the processes are alive: Chromium's are not all waited for when it closes.
                    print(f"other processes on this machine used {others.pct():.0f} % of its CPU during the run")
            finally:
                await stop(unit)
    frames = sorted(r["frame_ms"] for r in figures)
    return {
        "p50_ms": statistics.median(frames),
        "p95_ms": percentile(frames, 0.95),
        "max_ms": frames[-1],
        "case_p50_ms": statistics.median(r["case_ms"] for r in figures),
        "offer_p50_ms": statistics.median(r["offer_ms"] for r in figures),
        "connected_p50_ms": statistics.median(r["live_ms"] for r in figures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="calls timed, after one warm-up call")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {psutil.cpu_count()} CPUs, Python {platform.python_version()}")
    figures = runner.run(run(args.rounds))
    print(" ".join(f"{k}={v:.0f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
