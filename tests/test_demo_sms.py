"""The demo's simulated SMS provider (kuaichu/demo_sms.py) behind a real server configured as
``kuaichu demo`` configures it: an issued determination reaches both parties' inbox lines and the
case ends delivered; a sender without the token, or with a malformed message, is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from kuaichu.demo_sms import DemoSms, write_tokens
from server.config import ServerConfig
from server.users import Role
from tests.cases import handed_over_case, logged_in
from tests.casework_data import decision, seed_registry
from tests.conftest import add_user, make_server_config, start_server
from tests.services import Mosquitto, free_port
from tests.waiting import wait_for


async def test_a_determination_in_the_demo_reaches_the_parties_and_the_case_is_delivered(
    tmp_path: Path, broker: Mosquitto, font_cache: Path
) -> None:
    token, receipt_token = write_tokens(tmp_path / "sms")
    assert token.stat().st_mode & 0o777 == 0o600 and receipt_token.stat().st_mode & 0o777 == 0o600
    sms_port = free_port()
    cfg = make_server_config(tmp_path / "server", broker.port)
    sms = {
        "gateway_url": f"http://127.0.0.1:{sms_port}/send",
        "token_file": token,
        "receipt_token_file": receipt_token,
        "poll_s": 0.1,
    }
    cfg = ServerConfig.model_validate(cfg.model_dump() | {"documents": {"font_cache_dir": font_cache}, "sms": sms})
    server = await start_server(cfg)
    provider = DemoSms(tmp_path / "sms", server.url)
    started = asyncio.Event()
    serving = asyncio.create_task(provider.serve(sms_port, started))
    try:
        await asyncio.wait_for(started.wait(), 10)
        async with httpx.AsyncClient() as stranger:
            message = {"to": "13888000001", "text": "【快处】", "ref": "sms-1"}
            no_token = await stranger.post(f"http://127.0.0.1:{sms_port}/send", json=message)
            assert no_token.status_code == 401
            bearer = {"Authorization": f"Bearer {token.read_text().strip()}"}
            bad_phone = await stranger.post(
                f"http://127.0.0.1:{sms_port}/send", json=message | {"to": "110"}, headers=bearer
            )
            assert bad_phone.status_code == 422
        assert not provider.inbox.exists()  # nothing refused reached a phone

        await seed_registry(cfg.database_url, tmp_path / "registry")
        await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
        await add_user(cfg, "officer", Role.OFFICER, ["530102"])
        cid, ids = await handed_over_case(server, broker)
        officer = await logged_in(server, "officer")
        issued = (await officer.http.post(f"/api/cases/{cid}/determinations", json=decision(ids))).json()

        async def delivered() -> bool:
            work = (await officer.http.get(f"/api/cases/{cid}/work")).json()
            return bool(work["case"]["status"] == "delivered")

        await wait_for("the case delivered", delivered, within_s=30)
        await officer.close()
        lines = [json.loads(line) for line in provider.inbox.read_text("utf-8").splitlines()]
        links = [line for line in lines if "已登记为事故案件" in line["text"]]
        determined = [line for line in lines if "认定书已出具" in line["text"]]
        assert len(links) == 2 and len(determined) == 2 and len(lines) == 4
        assert {line["to"] for line in lines} == {"13888000001"}
        for line in determined:
            assert issued["case_no"] in line["text"] and f"{server.url}/p/" in line["text"]
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await server.stop()
