"""A phone in the parties' web app with no unit: logged in with a code sent to its number alone
(a session with no party), as a driver who found the address on a road sign does; shared by the
phone-report, photo and phone-call tests."""

from __future__ import annotations

import re

import httpx

from tests.conftest import RunningServer
from tests.parties import CODE
from tests.sms_provider import Provider
from tests.waiting import wait_for

CUIHU = (25.0453, 102.7040)  # WGS-84 (lat, lon), 翠湖, 五华区 530102
ANNING = (24.9190, 102.4780)  # WGS-84, 安宁市: Kunming, outside the five districts


async def code_for(provider: Provider, phone: str, sent_before: int = 0) -> str:
    """The newest code sent to ``phone``, once more than ``sent_before`` codes have gone to it."""

    async def fresh() -> list[str]:
        codes = [m["text"] for m in provider.received if m["to"] == phone and re.search(CODE, m["text"])]
        return codes if len(codes) > sent_before else []

    codes = await wait_for(f"code {sent_before + 1} to {phone}", fresh)
    found = re.search(CODE, codes[-1])
    assert found
    return found.group(1)


async def phone_login(server: RunningServer, provider: Provider, phone: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.url, timeout=20)
    before = len([m for m in provider.received if m["to"] == phone and re.search(CODE, m["text"])])
    assert (await client.post("/api/portal/code", json={"phone": phone})).status_code == 202
    code = await code_for(provider, phone, before)
    response = await client.post("/api/portal/login", json={"phone": phone, "code": code})
    assert response.status_code == 200, response.text
    assert response.json() == {"party": False, "case": False}
    return client


def position(where: tuple[float, float], accuracy: float = 25) -> dict[str, float]:
    return {"lat": where[0], "lon": where[1], "accuracy": accuracy}
