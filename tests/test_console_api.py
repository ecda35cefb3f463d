"""Operators: logins, sessions and roles, over the real HTTP API and WebSocket."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

from protocol.messages import encode
from server.users import Role
from tests.conftest import PASSWORD, RunningServer, add_user
from tests.reports import GUANDU, WUHUA, in_car_report
from tests.services import Mosquitto
from tests.wire import Console, publish_report, raw_device


async def test_nothing_works_without_a_session(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        for path in ("/api/me", "/api/cases", "/api/units", "/api/cases/1"):
            assert (await client.get(path)).status_code == 401, path
        forged = {"Cookie": "kc_session=not-a-real-token"}
        assert (await client.get("/api/cases", headers=forged)).status_code == 401
    url = server.url.replace("http://", "ws://") + "/api/ws"
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(url) as ws:
            await ws.recv()


async def test_login_logout_and_wrong_passwords(server: RunningServer) -> None:
    await add_user(server.cfg, "officer1", Role.OFFICER, ["530102"])
    console = Console(server.url)
    assert (await console.login("officer1", "wrong password!")).status_code == 401
    assert (await console.login("nobody", PASSWORD)).status_code == 401
    response = await console.login("officer1", PASSWORD)
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    me = (await console.http.get("/api/me")).json()
    assert me == {
        "username": "officer1",
        "display_name": "officer1",
        "role": "officer",
        "units": ["530102"],
        "police_no": None,  # none given to add_user; an officer's 警号 goes on the determinations
    }
    assert (await console.http.post("/api/logout")).status_code == 204
    assert (await console.http.get("/api/me")).status_code == 401
    await console.close()


async def test_repeated_failures_are_throttled(server: RunningServer) -> None:
    await add_user(server.cfg, "target", Role.DISPATCHER, ["530102"])
    console = Console(server.url)
    codes = [(await console.login("target", f"guess number {i}")).status_code for i in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    assert (await console.login("target", PASSWORD)).status_code == 429  # even the right one, for a while
    await console.close()


async def test_a_dispatcher_sees_only_the_units_they_serve(server: RunningServer, broker: Mosquitto) -> None:
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(server.cfg, "guandu", Role.DISPATCHER, ["530111"])
    await add_user(server.cfg, "boss", Role.ADMIN, [])
    consoles = {name: Console(server.url) for name in ("wuhua", "guandu", "boss")}
    for name, console in consoles.items():
        assert (await console.login(name, PASSWORD)).status_code == 200
        await console.connect_live()

    async with raw_device(broker.port, "car-0100") as (client, acks):
        await publish_report(client, "car-0100", encode(in_car_report("car-0100", WUHUA)))
        wuhua_case = await asyncio.wait_for(acks.get(), 10)
        await publish_report(client, "car-0100", encode(in_car_report("car-0100", GUANDU)))
        guandu_case = await asyncio.wait_for(acks.get(), 10)

    assert (await consoles["wuhua"].next_event())["case"]["case_no"] == wuhua_case.case_no
    assert (await consoles["guandu"].next_event())["case"]["case_no"] == guandu_case.case_no
    boss_events = {(await consoles["boss"].next_event())["case"]["case_no"] for _ in range(2)}
    assert boss_events == {wuhua_case.case_no, guandu_case.case_no}
    # Nothing else arrives for the district dispatchers.
    for name in ("wuhua", "guandu"):
        with pytest.raises(TimeoutError):
            await consoles[name].next_event(timeout=0.5)

    wuhua = consoles["wuhua"].http
    listed = (await wuhua.get("/api/cases")).json()
    assert [c["case_no"] for c in listed] == [wuhua_case.case_no]
    assert (await wuhua.get("/api/cases", params={"unit": "530111"})).status_code == 403
    other_id = (await consoles["guandu"].http.get("/api/cases")).json()[0]["id"]
    assert (await wuhua.get(f"/api/cases/{other_id}")).status_code == 404
    assert [u["adcode"] for u in (await wuhua.get("/api/units")).json()] == ["530102"]
    assert len((await consoles["boss"].http.get("/api/cases")).json()) == 2
    for console in consoles.values():
        await console.close()


async def test_openapi_describes_the_api(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        spec = (await client.get("/openapi.json")).json()
    assert {"/api/login", "/api/logout", "/api/me", "/api/cases", "/api/cases/{case_id}", "/api/units"} <= set(
        spec["paths"]
    )
