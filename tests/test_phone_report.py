"""视频报警 from a phone with no unit, over a real worker, broker and SMS provider: the browser's
position is routed by the districts' fences like a unit's report and the case reaches that
district's queue live; a position too coarse or outside the districts gets the 122 answer and no
case; tries are throttled per number and per address; a number holds one open case; the dispatcher
fills in the reporting party and clears the road with no unit to command."""

from __future__ import annotations

from pathlib import Path

from server.config import ServerConfig
from tests.cases import logged_in
from tests.casework_data import DRIVER_A, driver
from tests.configs import sms_config
from tests.conftest import RunningServer, make_server_config, start_server
from tests.parties import stack
from tests.phones import ANNING, CUIHU, phone_login, position
from tests.services import Mosquitto, free_port
from tests.sms_provider import Provider, sms_provider
from tests.wire import event

__all__ = ["stack"]  # the fixture

PHONE = "13700001111"


async def test_a_phone_reports_and_its_case_reaches_the_district_queue(
    stack: tuple[RunningServer, Provider, Mosquitto],
) -> None:
    server, provider, _broker = stack
    wuhua = await logged_in(server, "wuhua")
    await wuhua.connect_live()
    phone = await phone_login(server, provider, PHONE)
    rules = (await phone.get("/api/portal/report")).json()
    assert rules["accuracy_limit_m"] == 200 and rules["ice_servers"] == []
    assert rules["logged_in"] is True and rules["has_case"] is False

    opened = await phone.post("/api/portal/report", json=position(CUIHU))
    assert opened.status_code == 201, opened.text
    answer = opened.json()
    assert answer["unit"] == "五华区交警大队" and answer["resumed"] is False
    case_no = answer["case_no"]
    assert case_no.startswith("530102")

    new = await event(wuhua, "case.new", 10)
    assert new["case"]["case_no"] == case_no
    assert new["case"]["device_id"] is None and new["case"]["reporter_phone"] == PHONE
    assert new["case"]["trigger"] == "phone" and new["case"]["device_kind"] == "phone"
    assert abs(new["case"]["position"]["lat"] - CUIHU[0]) < 1e-9
    assert new["case"]["position"]["lat_gcj02"] != CUIHU[0]  # shifted to GCJ-02 for the map

    # The phone's session is now its case's reporting party (甲), a placeholder with the number.
    view = (await phone.get("/api/portal/case")).json()
    assert view["case_no"] == case_no
    (me,) = view["parties"]
    assert me["mine"] is True and me["phone"] == PHONE and me["position"] == "甲"

    # Pressing again (a reload, a second tap) brings it back to the same case.
    again = (await phone.post("/api/portal/report", json=position(CUIHU))).json()
    assert again["case_no"] == case_no and again["resumed"] is True
    cases = [c for c in (await wuhua.http.get("/api/cases")).json() if c.get("reporter_phone") == PHONE]
    assert len(cases) == 1
    cid = cases[0]["id"]

    # The dispatcher fills in the placeholder on the call and clears the road without a unit.
    work = (await wuhua.http.get(f"/api/cases/{cid}/work")).json()
    (placeholder,) = work["parties"]
    assert placeholder["name"] == "" and placeholder["phone"] == PHONE
    filled = await wuhua.http.put(f"/api/cases/{cid}/parties/{placeholder['id']}", json=driver(DRIVER_A, phone=PHONE))
    assert filled.status_code == 200, filled.text
    assert (await wuhua.http.post(f"/api/cases/{cid}/clear-road")).status_code == 200
    log = (await wuhua.http.get(f"/api/cases/{cid}/events")).json()
    assert log["chain_problems"] == []
    actions = [(e["action"], e["actor"]) for e in log["events"]]
    assert actions[:2] == [("case.opened", f"phone:{PHONE}"), ("party.added", f"phone:{PHONE}")]
    assert ("road.clear", "wuhua") in actions
    mine = (await phone.get("/api/portal/case")).json()
    assert mine["parties"][0]["name"] == DRIVER_A["name"]
    await phone.aclose()
    await wuhua.close()


async def test_coarse_or_outside_gets_the_122_answer_and_tries_are_throttled(
    stack: tuple[RunningServer, Provider, Mosquitto],
) -> None:
    server, provider, _broker = stack
    wuhua = await logged_in(server, "wuhua")
    phone = await phone_login(server, provider, PHONE)
    coarse = await phone.post("/api/portal/report", json=position(CUIHU, accuracy=800))
    assert coarse.status_code == 422 and "122" in coarse.json()["detail"] and "800米" in coarse.json()["detail"]
    outside = await phone.post("/api/portal/report", json=position(ANNING))
    assert outside.status_code == 422 and "122" in outside.json()["detail"]
    assert "五华" in outside.json()["detail"]
    assert (await phone.get("/api/portal/case")).status_code == 404  # still no case
    assert not [c for c in (await wuhua.http.get("/api/cases")).json() if c.get("reporter_phone") == PHONE]
    # The third try is the last this hour for the number (three by default), whatever came of them.
    assert (await phone.post("/api/portal/report", json=position(CUIHU))).status_code == 201
    refused = await phone.post("/api/portal/report", json=position(CUIHU))
    assert refused.status_code == 429 and "122" in refused.json()["detail"]
    await phone.aclose()
    await wuhua.close()


async def test_reports_are_throttled_per_address(broker: Mosquitto, tmp_path: Path, font_cache: Path) -> None:
    port = free_port()
    cfg = sms_config(make_server_config(tmp_path / "server", broker.port), tmp_path / "sms", font_cache, port)
    cfg = ServerConfig.model_validate(cfg.model_dump() | {"phone": {"reports_per_address_hour": 2}})
    server = await start_server(cfg)
    try:
        async with sms_provider(port, server.url) as provider:
            for number in ("13700002221", "13700002222"):
                phone = await phone_login(server, provider, number)
                assert (await phone.post("/api/portal/report", json=position(ANNING))).status_code == 422
                await phone.aclose()
            third = await phone_login(server, provider, "13700002223")
            refused = await third.post("/api/portal/report", json=position(CUIHU))
            assert refused.status_code == 429 and "这台设备" in refused.json()["detail"]
            await third.aclose()
    finally:
        await server.stop()
