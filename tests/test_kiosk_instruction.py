"""The dispatcher's instruction reaches the kiosk's screen: ``POST /api/cases/{id}/instruct`` sends
``instruction`` on the unit's cmd topic, the screen shows it under the case number, and the case's
log keeps it. A case handed over is past the scene: the route refuses, and the unit is idle."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from device.hal.screen import Shown
from device.hal.screen_simulated import SimulatedScreen
from server.users import Role
from tests.cases import case_id, logged_in
from tests.casework_data import DRIVER_A, DRIVER_B, FACTS, driver, seed_registry
from tests.conftest import add_user, make_server_config, start_server
from tests.devices import device_config, running_device
from tests.reports import WUHUA
from tests.services import Mosquitto

TEXT = "请把车辆移到右侧应急车道外，人员站到护栏外等候。"


async def test_an_instruction_shows_on_the_kiosk_and_stays_in_the_log(broker: Mosquitto, tmp_path: Path) -> None:
    server = await start_server(make_server_config(tmp_path / "server", broker.port))
    lon, lat = WUHUA
    cfg = device_config(
        tmp_path / "kiosk",
        broker.port,
        "kiosk-say-01",
        device={"kind": "kiosk"},
        site={"name": "翠湖报警亭", "lat": lat, "lon": lon},
        screen={"backend": "simulated", "portal_url": "https://kuaichu.example.cn/p"},
    ).model_copy(update={"vehicle": None})
    try:
        await seed_registry(server.cfg.database_url, tmp_path / "registry")
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        async with running_device(cfg) as kiosk:
            screen = kiosk.hw.screen
            assert isinstance(screen, SimulatedScreen)
            await kiosk.press()
            case_no = await kiosk.case_number()
            wuhua = await logged_in(server, "wuhua")
            cid = await case_id(wuhua, case_no)
            answer = await wuhua.http.post(f"/api/cases/{cid}/instruct", json={"text": f"  {TEXT} "})
            assert answer.status_code == 200, answer.text
            assert answer.json()["text"] == TEXT
            deadline = time.monotonic() + 10
            while screen.shown.instruction != TEXT:
                assert time.monotonic() < deadline, f"screen shows {screen.shown}"
                await asyncio.sleep(0.05)
            shown = screen.shown
            assert shown.shown is Shown.CASE and shown.case_no == case_no
            assert shown.url == f"https://kuaichu.example.cn/p?case={case_no}" and shown.qr is not None
            log = (await wuhua.http.get(f"/api/cases/{cid}/events")).json()
            assert any(e["action"] == "unit.instruction" and e["detail"]["text"] == TEXT for e in log["events"])
            assert (await wuhua.http.post(f"/api/cases/{cid}/instruct", json={"text": ""})).status_code == 422

            base = f"/api/cases/{cid}"
            await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A))
            await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_B))
            await wuhua.http.put(f"{base}/facts", json=FACTS)
            await wuhua.http.post(f"{base}/checks")
            assert (await wuhua.http.post(f"{base}/hand-over")).status_code == 200
            late = await wuhua.http.post(f"/api/cases/{cid}/instruct", json={"text": TEXT})
            assert late.status_code == 409 and "设备不再显示本案" in late.json()["detail"]
            deadline = time.monotonic() + 10
            while screen.shown.shown is not Shown.IDLE:
                assert time.monotonic() < deadline, f"screen shows {screen.shown}"
                await asyncio.sleep(0.05)
            await wuhua.close()
    finally:
        await server.stop()
