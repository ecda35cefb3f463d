"""Cases pushed through the API from report to delivery: how long each step takes, and the PDF.

Starts the real stack: a private Mosquitto with the provisioned mutual-TLS configuration, one
server worker as its own process (``kuaichu server run``, SQLite), the demo-style registry loaded
through ``kuaichu registry import``'s code, and a local HTTP server playing the SMS provider
(``tests.sms_provider``; it reports each message delivered at once). For each case, one after the
other: a device reports it over MQTT; the dispatcher adds two parties, enters the facts, runs the
checks and hands it over; the officer issues the determination; the case is delivered when the
provider's receipts for both parties are in. Each step's time is the API call's round trip on
loopback (the server's own work plus a few hundred microseconds of HTTP), the report's from publish
to ack; ``pdf_ms`` is measured inside the server around rendering and signing the PDF (the
``render_ms`` the issue answer carries). The session's first document builds the font cache
first; the run warms it with one case that is not counted.

    .venv/bin/python -m bench.case_flow [--cases 200]

Last line: ``cases=200 pdf_ms=…`` (median). A case that fails (a refusal, a step that never comes)
is reported and ends the run; ``cases`` counts those that went through before it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.stack import kuaichu, load_line, percentile, server_config, wait_listening
from protocol.messages import Ack, encode
from protocol.topics import Channel, device_topic
from server.casework.registry_import import import_file
from server.config import load_server_config
from server.db.engine import make_engine, make_sessionmaker
from server.users import Role
from server.worker import open_state
from tests.casework_data import DRIVER_A, DRIVER_B, driver, registry_files
from tests.pki import session_pki
from tests.reports import WUHUA, in_car_report
from tests.services import free_port
from tests.sms_provider import RECEIPT_TOKEN, TOKEN, Provider, sms_provider
from tests.wire import raw_device

PASSWORD = "benchmark password"
DEVICE = "bench-car-01"
FACTS = {
    "injury": "none",
    "vehicles_movable": True,
    "suspected_impairment": False,
    "hazardous_goods": False,
    "hit_and_run": False,
    "facts_disputed": False,
    "place": "五华区翠湖南路",
    "weather": "晴",
}
STEPS = ("report", "party", "facts", "checks", "hand_over", "issue", "delivered")


async def prepare(root: Path, config: Path) -> None:
    cfg = load_server_config(config)
    async with contextlib.AsyncExitStack() as stack:
        state, _ = await open_state(cfg, stack)
        await state.users.add_user("dispatcher", PASSWORD, Role.DISPATCHER, ["530102"])
        await state.users.add_user("officer", PASSWORD, Role.OFFICER, ["530102"])
    engine = make_engine(cfg.database_url)
    try:
        for path in registry_files(root / "registry"):
            await import_file(make_sessionmaker(engine), path)
    finally:
        await engine.dispose()


async def login(url: str, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    assert (await client.post("/api/login", json={"username": name, "password": PASSWORD})).is_success
    return client


def decision(ids: list[int]) -> dict[str, object]:
    return {
        "situation": "rear_end",
        "liabilities": [{"party_id": ids[0], "liability": "全部"}, {"party_id": ids[1], "liability": "无"}],
        "facts": "甲驾驶小型轿车沿翠湖南路由东向西行驶，未与前车保持安全距离，追尾乙驾驶的小型轿车，两车受损。",
        "legal_basis": "《中华人民共和国道路交通安全法》第四十三条",
    }


async def one_case(
    mqtt: aiomqtt.Client, acks: asyncio.Queue[Ack], dispatcher: httpx.AsyncClient, officer: httpx.AsyncClient
) -> tuple[dict[str, float], float, asyncio.Task[float]]:
    times: dict[str, float] = {}
    started = time.perf_counter()
    await mqtt.publish(device_topic(DEVICE, Channel.REPORT), encode(in_car_report(DEVICE, WUHUA)), qos=1)
    ack = await asyncio.wait_for(acks.get(), 30)
    times["report"] = time.perf_counter() - started
    cases = (await dispatcher.get("/api/cases", params={"limit": 5})).json()
    cid = next(c["id"] for c in cases if c["case_no"] == ack.case_no)
    base = f"/api/cases/{cid}"

    async def timed(step: str, call: Awaitable[httpx.Response]) -> httpx.Response:
        t = time.perf_counter()
        response = await call
        times[step] = times.get(step, 0.0) + time.perf_counter() - t
        if not response.is_success:
            raise RuntimeError(f"{step}: {response.status_code} {response.text}")
        return response

    a = await timed("party", dispatcher.post(f"{base}/parties", json=driver(DRIVER_A, plate_read_source="report")))
    b = await timed("party", dispatcher.post(f"{base}/parties", json=driver(DRIVER_B)))
    times["party"] /= 2
    await timed("facts", dispatcher.put(f"{base}/facts", json=FACTS))
    await timed("checks", dispatcher.post(f"{base}/checks"))
    await timed("hand_over", dispatcher.post(f"{base}/hand-over"))
    issued = await timed(
        "issue", officer.post(f"{base}/determinations", json=decision([a.json()["id"], b.json()["id"]]))
    )
    issued_at = time.perf_counter()

    async def delivered() -> float:
        async with asyncio.timeout(120):  # a case never delivered is an error, not a hang
            while (await officer.get(f"{base}/work")).json()["case"]["status"] != "delivered":
                await asyncio.sleep(0.05)
        return time.perf_counter() - issued_at

    return times, float(issued.json()["render_ms"]), asyncio.create_task(delivered())


@dataclass
class CaseStack:
    """The running stack a case benchmark drives: the server's address, its SMS provider, a unit's
    MQTT connection and the acks it receives."""

    url: str
    provider: Provider
    mqtt: aiomqtt.Client
    acks: asyncio.Queue[Ack]


@contextlib.asynccontextmanager
async def case_stack(prefix: str, extra_config: str = "") -> AsyncIterator[CaseStack]:
    """Mosquitto with the provisioned mutual TLS, one worker as ``kuaichu server run`` (SQLite) with
    the dispatcher, the officer and the registry, a local SMS provider that reports every message
    delivered at once, and ``DEVICE`` connected; ``extra_config`` is appended to server.toml."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    with session_pki() as pki, pki.mosquitto(root / "mosquitto.log") as broker:
        pki.device_tls(DEVICE)
        http_port, provider_port = free_port(), free_port()
        config = server_config(root, pki, broker.port, http_port)
        (root / "sms-token").write_text(TOKEN)
        (root / "receipt-token").write_text(RECEIPT_TOKEN)
        with config.open("a") as f:
            f.write(
                f'\n[sms]\ngateway_url = "http://127.0.0.1:{provider_port}/send"\ntoken_file = "{root / "sms-token"}"\n'
                f'receipt_token_file = "{root / "receipt-token"}"\npoll_s = 0.05\n'
                "retry_base_s = 0.5\nretry_max_s = 5\n" + extra_config
            )
        await prepare(root, config)
        server = await kuaichu("server", "run", "--config", str(config))
        url = f"http://127.0.0.1:{http_port}"
        try:
            await wait_listening(http_port, server)
            async with (
                sms_provider(provider_port, url, receipt_delay_s=0.0) as provider,
                raw_device(broker.port, DEVICE) as (mqtt, acks),
            ):
                yield CaseStack(url, provider, mqtt, acks)
        finally:
            server.terminate()
            await server.wait()


async def run(count: int) -> None:
    print(load_line(), flush=True)
    async with case_stack("kc-bench-cases-") as stack:
        dispatcher, officer = await login(stack.url, "dispatcher"), await login(stack.url, "officer")
        warm = await one_case(stack.mqtt, stack.acks, dispatcher, officer)  # builds the font cache
        await warm[2]
        steps: dict[str, list[float]] = {step: [] for step in STEPS}
        pdf_ms: list[float] = []
        deliveries = []
        wall = time.perf_counter()
        try:
            for _ in range(count):
                times, render_ms, delivery = await one_case(stack.mqtt, stack.acks, dispatcher, officer)
                for step, seconds in times.items():
                    steps[step].append(seconds * 1000)
                pdf_ms.append(render_ms)
                deliveries.append(delivery)
        except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
            # A case that breaks is a finding too: the cases before it still stand.
            print(f"case {len(pdf_ms) + 1} of {count}: failed ({type(exc).__name__}: {exc})", flush=True)
        outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
        steps["delivered"] = [seconds * 1000 for seconds in outcomes if isinstance(seconds, float)]
        if lost := len(outcomes) - len(steps["delivered"]):
            print(f"{lost} of {len(outcomes)} issued cases not delivered within 120 s", flush=True)
        wall = time.perf_counter() - wall
        for client in (dispatcher, officer):
            await client.aclose()
    print(f"machine: {platform.node()} {platform.machine()}, {len(pdf_ms)} cases in {wall:.1f} s")
    for step in STEPS:
        ordered = sorted(steps[step])
        if ordered:
            print(
                f"  {step:10s} median {statistics.median(ordered):7.1f} ms  p90 {percentile(ordered, 0.9):7.1f} ms"
                f"  max {ordered[-1]:7.1f} ms"
            )
    ordered = sorted(pdf_ms)
    if not ordered:
        print("cases=0 pdf_ms=nan")
        return
    median, p90 = statistics.median(ordered), percentile(ordered, 0.9)
    print(f"  pdf (server: render + sign) median {median:.1f} ms  p90 {p90:.1f} ms")
    print(f"cases={len(ordered)} pdf_ms={median:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.cases))


if __name__ == "__main__":
    main()
