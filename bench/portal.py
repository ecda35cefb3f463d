"""Parties following their cases live while the staff work: how soon a step shows on a party's phone.

Starts the real stack as ``bench.case_flow`` does (a provisioned mutual-TLS Mosquitto, one server
worker as its own process with SQLite, a local SMS provider). Opens ``--cases`` cases from a
device's reports, the dispatcher saves two parties with their own phone numbers in each (each gets
their link by SMS), and every party logs in with the code the provider received and keeps the
party page's live WebSocket open, as ``/p`` does. Then ``--progress`` of the cases are worked
through (checks, hand-over, determination) one action after another. For every action, each party
of that case fetches its view when nudged, as the page does; ``update`` is the time from the start
of the staff action to that party holding a view with the action's step done. ``page`` is every
view fetch's round trip (``GET /api/portal/case``) while this goes on.

    .venv/bin/python -m bench.portal [--cases 250] [--progress 50]

Last line: ``parties=500 update_p95_ms=… page_p95_ms=…``. A run that hits a limit says the last
step that held and prints the figures it has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import aiomqtt
import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.case_flow import DEVICE, FACTS, case_stack, decision, login
from bench.stack import load_line, percentile
from protocol.messages import Ack, encode
from protocol.topics import Channel, device_topic
from tests.casework_data import DRIVER_A, DRIVER_B, driver
from tests.reports import WUHUA, in_car_report
from tests.sms_provider import Provider

CODE = re.compile(r"验证码(\d{6})")
LINK = re.compile(r"/p/([A-Za-z0-9_-]+)")
ACTIONS = (("checks", "evidence"), ("hand-over", "handed_over"), ("determinations", "determined"))


class Party:
    """One phone: its session, its live socket, and the steps it has seen done."""

    def __init__(self, url: str, phone: str, case_id: int) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=30)
        self.phone = phone
        self.case_id = case_id
        self.done: set[str] = set()
        self.seen: dict[str, float] = {}  # step -> when this phone first held it done
        self.page_ms: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def view(self) -> None:
        started = time.perf_counter()
        response = await self.http.get("/api/portal/case")
        self.page_ms.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        now = time.perf_counter()
        for step in response.json()["steps"]:
            if step["done"] and step["key"] not in self.done:
                self.done.add(step["key"])
                self.seen[step["key"]] = now

    async def follow(self, ws_url: str, opened: asyncio.Event) -> None:
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        async with websockets.connect(ws_url, additional_headers={"Cookie": cookie}) as ws:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "hello":
                    await self.view()
                    opened.set()
                elif message["type"] == "changed":
                    await self.view()


def sms_to(provider: Provider, phone: str, pattern: re.Pattern[str]) -> str | None:
    for message in reversed(provider.received):
        if message["to"] == phone and (found := pattern.search(message["text"])):
            return found.group(1)
    return None


async def awaited(provider: Provider, phone: str, pattern: re.Pattern[str]) -> str:
    async with asyncio.timeout(30):
        while (found := sms_to(provider, phone, pattern)) is None:
            await asyncio.sleep(0.02)
    return found


async def open_cases(
    count: int, mqtt: aiomqtt.Client, acks: asyncio.Queue[Ack], dispatcher: httpx.AsyncClient
) -> list[tuple[int, list[tuple[str, int]]]]:
    """``count`` cases, each with two parties of their own phone numbers: [(case id, [(phone, party id)])]."""
    cases = []
    for n in range(count):
        await mqtt.publish(device_topic(DEVICE, Channel.REPORT), encode(in_car_report(DEVICE, WUHUA)), qos=1)
        ack = await asyncio.wait_for(acks.get(), 30)
        listed = (await dispatcher.get("/api/cases", params={"limit": 5})).json()
        cid = next(c["id"] for c in listed if c["case_no"] == ack.case_no)
        parties = []
        for i, who in enumerate((DRIVER_A, DRIVER_B)):
            phone = f"139{n:04d}{i:04d}"
            response = await dispatcher.post(f"/api/cases/{cid}/parties", json=driver(who, phone=phone))
            response.raise_for_status()
            parties.append((phone, int(response.json()["id"])))
        (await dispatcher.put(f"/api/cases/{cid}/facts", json=FACTS)).raise_for_status()
        cases.append((cid, parties))
    return cases


async def log_in(url: str, provider: Provider, phone: str, case_id: int) -> Party:
    party = Party(url, phone, case_id)
    token = await awaited(provider, phone, LINK)
    (await party.http.post("/api/portal/code", json={"token": token})).raise_for_status()
    code = await awaited(provider, phone, CODE)
    (await party.http.post("/api/portal/login", json={"token": token, "code": code})).raise_for_status()
    return party


async def work(
    cases: list[tuple[int, list[tuple[str, int]]]],
    parties: dict[int, list[Party]],
    dispatcher: httpx.AsyncClient,
    officer: httpx.AsyncClient,
    held: list[str],
    update_ms: list[float],
) -> list[float]:
    """Every action on every progressing case in turn; the time until each of its parties saw it,
    added to ``update_ms`` as it goes, so that a run stopped at a limit still reports what it had."""
    for cid, people in cases:
        for action, step in ACTIONS:
            started = time.perf_counter()
            if action == "determinations":
                body = decision([party_id for _, party_id in people])
                response = await officer.post(f"/api/cases/{cid}/determinations", json=body)
            else:
                response = await dispatcher.post(f"/api/cases/{cid}/{action}")
            response.raise_for_status()
            async with asyncio.timeout(30):
                while not all(step in p.seen for p in parties[cid]):
                    await asyncio.sleep(0.005)
            update_ms += [(p.seen[step] - started) * 1000 for p in parties[cid]]
        held[0] = f"worked {len(update_ms) // (2 * len(ACTIONS))} cases"
    return update_ms


async def run(count: int, progressing: int) -> None:
    print(load_line(), flush=True)
    held = ["nothing yet"]
    update_ms: list[float] = []
    parties: dict[int, list[Party]] = {}
    followers: list[asyncio.Task[None]] = []
    wall = 0.0
    # Every phone of the run asks from 127.0.0.1: the per-address limit is lifted here only.
    async with case_stack("kc-bench-portal-", "\n[portal]\ncodes_per_address_hour = 10000\n") as stack:
        dispatcher, officer = await login(stack.url, "dispatcher"), await login(stack.url, "officer")
        try:
            cases = await open_cases(count, stack.mqtt, stack.acks, dispatcher)
            held[0] = f"{len(cases)} cases opened"
            logins = [log_in(stack.url, stack.provider, phone, cid) for cid, people in cases for phone, _ in people]
            for party in await asyncio.gather(*logins):
                parties.setdefault(party.case_id, []).append(party)
            held[0] = f"{sum(map(len, parties.values()))} parties logged in"
            ws_url = stack.url.replace("http://", "ws://") + "/api/portal/ws"
            opened = []
            for people in parties.values():
                for party in people:
                    event = asyncio.Event()
                    opened.append(event)
                    followers.append(asyncio.create_task(party.follow(ws_url, event)))
            async with asyncio.timeout(120):
                await asyncio.gather(*(event.wait() for event in opened))
            for people in parties.values():
                for party in people:
                    party.page_ms.clear()  # the first views were the login's, not under progress
            held[0] = f"{len(followers)} parties following live"
            began = time.perf_counter()
            try:
                update_ms = await work(cases[:progressing], parties, dispatcher, officer, held, update_ms)
            finally:
                wall = time.perf_counter() - began
        except (TimeoutError, httpx.HTTPError, OSError, websockets.WebSocketException) as exc:
            print(f"stopped at a limit ({type(exc).__name__}: {exc}); last step that held: {held[0]}")
        finally:
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
            for people in parties.values():
                for party in people:
                    await party.http.aclose()
            for client in (dispatcher, officer):
                await client.aclose()
    page_ms = sorted(ms for people in parties.values() for party in people for ms in party.page_ms)
    followers_n = sum(map(len, parties.values()))
    update_ms.sort()
    print(f"machine: {platform.node()} {platform.machine()}; {followers_n} parties of {count} cases following live")
    print(f"  {progressing} cases worked through {len(ACTIONS)} actions each in {wall:.1f} s; held: {held[0]}")
    if update_ms:
        print(
            f"  step on the phone after the staff action: median {statistics.median(update_ms):.0f} ms"
            f"  p95 {percentile(update_ms, 0.95):.0f} ms  max {update_ms[-1]:.0f} ms  ({len(update_ms)} updates)"
        )
    if page_ms:
        print(
            f"  party's view (GET /api/portal/case): median {statistics.median(page_ms):.1f} ms"
            f"  p95 {percentile(page_ms, 0.95):.1f} ms  ({len(page_ms)} fetches)"
        )
    update_p95 = f"{percentile(update_ms, 0.95):.0f}" if update_ms else "none"
    page_p95 = f"{percentile(page_ms, 0.95):.1f}" if page_ms else "none"
    print(f"parties={followers_n} update_p95_ms={update_p95} page_p95_ms={page_p95}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=250, help="cases with two parties each following live")
    parser.add_argument("--progress", type=int, default=50, help="how many of them the staff work through")
    args = parser.parse_args()
    asyncio.run(run(args.cases, min(args.progress, args.cases)))


if __name__ == "__main__":
    main()
