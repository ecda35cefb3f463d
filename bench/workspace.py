"""The console's pages as people use them: how long the pages make them wait after each action.

Starts the stack as ``bench.case_flow`` does (a private mutual-TLS Mosquitto, ``kuaichu server run``
as its own process on SQLite, the registry imported) and drives it with headless Chromium
(Playwright) at 1920×1080: a unit reports over MQTT; the scripted dispatcher opens the case from
the queue in the workspace, saves two parties (甲 from the unit's own plate), the facts, runs the
checks, clears the road with its key (C) and hands the case over; the scripted officer opens it
from the queue, has the liabilities proposed and issues the determination. Each action's wait is
measured in the page, from the click (or key) to the frame that shows its result (the party's row,
the verdict, the status...); opening a page from the queue is measured from the click to the page
showing the case, across the navigation. Typing is not counted, nor is it a wait. The session's
first document builds the font cache; one case that is not counted warms it.

    .venv/bin/python bench/workspace.py [--cases 20]

Last line: ``cases=20 clicks_per_case=… ui_wait_p95_ms=…``; a case that fails (a refusal shown,
a result that never shows) is reported and ends the run, and ``cases`` counts those before it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import aiomqtt
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, ViewportSize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.case_flow import DEVICE, PASSWORD, prepare
from bench.stack import kuaichu, load_line, percentile, server_config, wait_listening
from protocol.messages import Ack, decode, encode
from protocol.topics import Channel, device_topic
from tests.browser import chromium
from tests.casework_data import DRIVER_A, DRIVER_B
from tests.pki import session_pki
from tests.reports import WUHUA, in_car_report
from tests.services import free_port
from tests.wire import mqtt_client

SCREEN: ViewportSize = {"width": 1920, "height": 1080}
FACTS_TEXT = "甲驾驶小型轿车沿翠湖南路由东向西行驶，未与前车保持安全距离，追尾乙驾驶的小型轿车，两车受损。"

# One action in the page: the click (or the key, as the dispatcher presses it with no field
# focused), then a frame at a time until the result shows; the milliseconds between. A result that
# is a change of something already on the page is told by comparing with what was there before.
ACT = """async ([selector, key, shown, watch]) => {
  // `shown` may compare with `before`: what `watch` read just before the click.
  const before = watch ? new Function(`return (${watch})`)() : null;
  const done = new Function("before", `return Boolean(${shown})`).bind(null, before);
  const start = performance.now();
  if (key) {
    document.activeElement && document.activeElement.blur();
    document.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
  } else {
    document.querySelector(selector).click();
  }
  while (!done()) {
    const refused = document.querySelector("#error:not([hidden])");
    if (refused) throw new Error(`refused: ${refused.textContent}`);
    // The first document of a server builds its font first: a minute or more on a busy machine.
    if (performance.now() - start > 180000) throw new Error(`not shown within 180 s: ${shown}`);
    await new Promise((frame) => requestAnimationFrame(frame));
  }
  return performance.now() - start;
}"""


def q(selector: str) -> str:
    """A result that shows as an element: the page expression that finds it."""
    return f"document.querySelector({json.dumps(selector)})"


class Person:
    """A scripted dispatcher or officer on one page: every click is counted, every wait timed."""

    def __init__(self, page: Page, waits: dict[str, list[float]]) -> None:
        self.page = page
        self.waits = waits
        self.clicks = 0

    async def act(self, step: str, selector: str, shown: str, *, key: str = "", watch: str = "") -> None:
        self.clicks += 1
        self.waits[step].append(float(await self.page.evaluate(ACT, [selector, key, shown, watch])))

    async def open(self, step: str, link: str, shown: str) -> None:
        """A link that loads another page: timed from the click to the new page showing ``shown``."""
        self.clicks += 1
        start = time.perf_counter()
        await self.page.click(link)
        await self.page.wait_for_function(f"() => Boolean({shown})", polling="raf")
        self.waits[step].append((time.perf_counter() - start) * 1000)

    async def choose(self, selector: str, value: str) -> None:
        self.clicks += 1
        await self.page.select_option(selector, value)

    async def tick(self, selector: str) -> None:
        self.clicks += 1
        await self.page.check(selector)


async def party(dispatcher: Person, d: dict[str, str], label: str, *, own_plate: bool) -> None:
    page = dispatcher.page
    await dispatcher.choose("#p-role", "driver")
    await page.fill("#p-name", d["name"])
    await page.fill("#p-id-number", d["id_number"])
    await page.fill("#p-phone", "13888000001")
    await page.fill("#p-licence", d["id_number"])
    if not own_plate:  # 甲's is the unit's own vehicle, already in the form
        await page.fill("#p-plate", d["plate"])
    await dispatcher.choose("#p-type", "K33")
    await page.fill("#p-insurer", "中国人民财产保险股份有限公司昆明市分公司")
    await page.fill("#p-policy", d["policy"])
    await dispatcher.act("save party", "#p-save", q(f'tr[data-party="{label}"]'))


async def one_case(
    url: str, mqtt: aiomqtt.Client, acks: asyncio.Queue[Ack], dispatcher: Person, officer: Person
) -> None:
    await mqtt.publish(device_topic(DEVICE, Channel.REPORT), encode(in_car_report(DEVICE, WUHUA)), qos=1)
    case_no = (await asyncio.wait_for(acks.get(), 30)).case_no
    d = dispatcher.page
    await d.wait_for_selector(f'tr[data-case="{case_no}"] .case-no a')
    await dispatcher.open(
        "open workspace",
        f'tr[data-case="{case_no}"] .case-no a',
        "document.querySelector('#case-status[data-state=\"new\"]') && document.getElementById('p-plate').value",
    )
    await party(dispatcher, DRIVER_A, "甲", own_plate=True)
    await party(dispatcher, DRIVER_B, "乙", own_plate=False)
    await d.fill("#f-place", "五华区翠湖南路")
    reason = "document.getElementById('eligibility-reason').textContent"
    await dispatcher.act("save facts", "#f-save", f"{reason} !== before", watch=reason)
    await dispatcher.act("run checks", "#run-checks", q('#eligibility[data-verdict="eligible"]'))
    await dispatcher.act("clear the road (C)", "", q('#clear-state[data-state="sent"]'), key="c")
    await dispatcher.act("hand over", "#hand-over", q('#case-status[data-state="handed_over"]'))
    await d.goto(url + "/console")  # back to the queue for the next report

    o = officer.page
    await o.goto(url + "/console")
    await o.wait_for_selector(f'tr[data-case="{case_no}"] .case-no a')
    await officer.open(
        "open determination",
        f'tr[data-case="{case_no}"] .case-no a',
        "document.querySelector('#review:not([hidden])') && document.querySelectorAll('#parties tr').length === 2",
    )
    await officer.choose("#situation", "rear_end")
    await officer.choose("#at-fault", "0")
    await officer.act("propose", "#propose", "document.getElementById('legal-basis').value")
    await o.fill("#facts", FACTS_TEXT)
    await officer.act("issue", "#issue", q('#versions tr[data-version="1"]'))


async def run(count: int) -> None:
    print(load_line(), flush=True)
    root = Path(tempfile.mkdtemp(prefix="kc-bench-workspace-"))
    with session_pki() as pki, pki.mosquitto(root / "mosquitto.log") as broker:
        pki.device_tls(DEVICE)
        http_port = free_port()
        config = server_config(root, pki, broker.port, http_port)
        await prepare(root, config)
        server = await kuaichu("server", "run", "--config", str(config))
        url = f"http://127.0.0.1:{http_port}"
        try:
            await wait_listening(http_port, server)
            async with mqtt_client(broker.port, DEVICE, pki.device_tls(DEVICE)) as mqtt, chromium() as browser:
                acks: asyncio.Queue[Ack] = asyncio.Queue()
                await mqtt.subscribe(device_topic(DEVICE, Channel.ACK), qos=1)

                async def collect() -> None:
                    async for message in mqtt.messages:
                        assert isinstance(message.payload, bytes)
                        acks.put_nowait(decode(Ack, message.payload))

                reader = asyncio.create_task(collect())
                try:
                    people = []
                    for name in ("dispatcher", "officer"):
                        page = await (await browser.new_context(viewport=SCREEN)).new_page()
                        await page.goto(url + "/login")
                        await page.fill("#username", name)
                        await page.fill("#password", PASSWORD)
                        await page.click("#login-button")
                        await page.wait_for_selector('#live-state[data-state="live"]')
                        people.append(page)
                    warm = defaultdict[str, list[float]](list)
                    await one_case(url, mqtt, acks, Person(people[0], warm), Person(people[1], warm))  # the font cache
                    waits = defaultdict[str, list[float]](list)
                    dispatcher, officer = Person(people[0], waits), Person(people[1], waits)
                    wall = time.perf_counter()
                    done = clicks_done = 0
                    try:
                        for _ in range(count):
                            await one_case(url, mqtt, acks, dispatcher, officer)
                            done, clicks_done = done + 1, dispatcher.clicks + officer.clicks
                    except (PlaywrightError, TimeoutError) as exc:
                        # A case that breaks is a finding too: the waits of the cases before it stand.
                        print(f"case {done + 1} of {count}: failed ({type(exc).__name__}: {exc})", flush=True)
                    wall = time.perf_counter() - wall
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                        await reader
        finally:
            server.terminate()
            await server.wait()
    machine = f"{platform.node()} {platform.machine()}"
    print(f"machine: {machine}, {done} cases in {wall:.1f} s, headless Chromium at 1920x1080")
    if not done:
        print("cases=0 clicks_per_case=nan ui_wait_p95_ms=nan")
        return
    for step, ms in waits.items():
        ordered = sorted(ms)
        print(
            f"  {step:20s} n={len(ordered):3d} median {statistics.median(ordered):7.1f} ms"
            f"  p95 {percentile(ordered, 0.95):7.1f} ms  max {ordered[-1]:7.1f} ms"
        )
    every = sorted(ms for step in waits.values() for ms in step)
    clicks = clicks_done / done
    print(f"cases={done} clicks_per_case={clicks:.0f} ui_wait_p95_ms={percentile(every, 0.95):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.cases))


if __name__ == "__main__":
    main()
