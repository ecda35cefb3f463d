"""Cases made and worked through the server's API, as an operator's console does."""

from __future__ import annotations

import asyncio
from typing import Any

from protocol.messages import encode
from tests.casework_data import DRIVER_A, DRIVER_B, FACTS, driver
from tests.conftest import PASSWORD, RunningServer
from tests.reports import WUHUA, in_car_report
from tests.services import Mosquitto
from tests.wire import Console, publish_report, raw_device


async def logged_in(server: RunningServer, name: str) -> Console:
    console = Console(server.url)
    assert (await console.login(name, PASSWORD)).status_code == 200
    return console


async def new_case(broker: Mosquitto) -> str:
    async with raw_device(broker.port, "car-0600") as (client, acks):
        await publish_report(client, "car-0600", encode(in_car_report("car-0600", WUHUA)))
        ack = await asyncio.wait_for(acks.get(), 10)
    assert ack.case_no is not None
    return ack.case_no


async def case_id(console: Console, case_no: str) -> int:
    found = [c["id"] for c in (await console.http.get("/api/cases")).json() if c["case_no"] == case_no]
    assert found, case_no
    return int(found[0])


def detail(response: Any) -> str:
    return str(response.json()["detail"])


async def handed_over_case(server: RunningServer, broker: Mosquitto) -> tuple[int, list[int]]:
    case_no = await new_case(broker)
    wuhua = await logged_in(server, "wuhua")
    cid = await case_id(wuhua, case_no)
    ids = await hand_over(wuhua, cid, driver(DRIVER_A, plate_read_source="report"))
    await wuhua.close()
    return cid, ids


async def hand_over(dispatcher: Console, cid: int, first: dict[str, Any] | None = None) -> list[int]:
    """Two parties (甲 as ``first`` if given), the facts and the checks, then handed over: the parties' ids."""
    base = f"/api/cases/{cid}"
    ids = [
        (await dispatcher.http.post(f"{base}/parties", json=first or driver(DRIVER_A))).json()["id"],
        (await dispatcher.http.post(f"{base}/parties", json=driver(DRIVER_B))).json()["id"],
    ]
    await dispatcher.http.put(f"{base}/facts", json=FACTS)
    await dispatcher.http.post(f"{base}/checks")
    assert (await dispatcher.http.post(f"{base}/hand-over")).status_code == 200
    return ids


async def readings(console: Console, case_id: int, source: str, within_s: float = 60) -> list[dict[str, Any]]:
    """The case's readings once one from ``source`` is there."""
    async with asyncio.timeout(within_s):
        while True:
            response = await console.http.get(f"/api/cases/{case_id}/plates")
            assert response.status_code == 200
            found: list[dict[str, Any]] = response.json()["readings"]
            if any(r["source"] == source for r in found):
                return found
            await asyncio.sleep(0.3)
