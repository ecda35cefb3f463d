"""A case whose parties have phones, on a worker with an SMS provider, and what the phones receive:
shared by the parties' API and page tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from server.users import Role
from tests.cases import case_id, logged_in, new_case
from tests.casework_data import DRIVER_A, DRIVER_B, FACTS, driver, seed_registry
from tests.configs import sms_config
from tests.conftest import RunningServer, add_user, make_server_config, start_server
from tests.services import Mosquitto, free_port
from tests.sms_provider import Provider, sms_provider
from tests.waiting import wait_for

PHONE_A, PHONE_B = "13812348000", "13987650001"
CODE = r"验证码(\d{6})"


@pytest.fixture
async def stack(
    broker: Mosquitto, tmp_path: Path, font_cache: Path
) -> AsyncIterator[tuple[RunningServer, Provider, Mosquitto]]:
    port = free_port()
    cfg = sms_config(make_server_config(tmp_path / "server", broker.port), tmp_path / "sms", font_cache, port)
    server = await start_server(cfg)
    try:
        await seed_registry(server.cfg.database_url, tmp_path / "registry")
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        await add_user(server.cfg, "officer", Role.OFFICER, ["530102"])
        async with sms_provider(port, server.url) as provider:
            yield server, provider, broker
    finally:
        await server.stop()


async def case_with_parties(server: RunningServer, broker: Mosquitto) -> tuple[str, int]:
    case_no = await new_case(broker)
    wuhua = await logged_in(server, "wuhua")
    cid = await case_id(wuhua, case_no)
    for d, phone in ((DRIVER_A, PHONE_A), (DRIVER_B, PHONE_B)):
        response = await wuhua.http.post(f"/api/cases/{cid}/parties", json=driver(d, phone=phone))
        assert response.status_code == 201, response.text
    await wuhua.http.put(f"/api/cases/{cid}/facts", json=FACTS)
    await wuhua.close()
    return case_no, cid


async def texts_to(provider: Provider, phone: str, pattern: str) -> list[str]:
    async def found() -> list[str]:
        return [m["text"] for m in provider.received if m["to"] == phone and re.search(pattern, m["text"])]

    return await wait_for(f"an SMS to {phone} matching {pattern}", found)


def link_token(text: str) -> str:
    match = re.search(r"/p/([A-Za-z0-9_-]+)", text)
    assert match, text
    return match.group(1)


async def logged_in_party(server: RunningServer, provider: Provider, phone: str) -> tuple[httpx.AsyncClient, str]:
    (link_sms,) = await texts_to(provider, phone, "/p/")
    token = link_token(link_sms)
    party = httpx.AsyncClient(base_url=server.url, timeout=10)
    assert (await party.post("/api/portal/code", json={"token": token})).status_code == 202
    codes = await texts_to(provider, phone, CODE)
    code = re.search(CODE, codes[-1])
    assert code
    response = await party.post("/api/portal/login", json={"token": token, "code": code.group(1)})
    assert response.status_code == 200, response.text
    return party, token
