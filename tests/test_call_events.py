"""Calls, stills and clips in the case log: who started, joined and ended a call, every still or clip
asked for and stored (with its SHA-256), every recording segment, each as a hash-chained event in
the same transaction as its row. A real simulated unit, a console joining over the live WebSocket
with an aiortc peer, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.calls.store import CallStore
from server.db.engine import make_engine, make_sessionmaker
from server.users import Role
from tests.calls import Viewer, ask
from tests.cases import case_id
from tests.conftest import PASSWORD, RunningServer, add_user, make_server_config, start_server
from tests.devices import device_config, running_device
from tests.services import Mosquitto
from tests.wire import Console, event


@pytest.fixture(params=["sqlite", "postgresql"])
async def call_server(
    request: pytest.FixtureRequest, tmp_path: Path, broker: Mosquitto
) -> AsyncIterator[RunningServer]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    cfg = make_server_config(tmp_path / "server", broker.port, database_url=url)
    cfg = cfg.model_copy(update={"calls": cfg.calls.model_copy(update={"segment_s": 2})})
    server = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    yield server
    await server.stop()


async def case_log(console: Console, cid: int) -> dict[str, Any]:
    log: dict[str, Any] = (await console.http.get(f"/api/cases/{cid}/events")).json()
    return log


async def test_a_call_its_still_its_failed_clip_and_its_end_are_in_the_case_log(
    call_server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    server = call_server
    # No video kept from before the press: the clip asked for is unavailable.
    car = device_config(tmp_path / "car", broker.port, "car-log-01", evidence={"pretrigger_s": 0})
    console = Console(server.url)
    viewer = Viewer(console)
    try:
        async with running_device(car) as device:
            case_no, call_id = await device.live_call()
            assert (await console.login("wuhua", PASSWORD)).status_code == 200
            await console.connect_live()
            cid = await case_id(console, case_no)
            await viewer.join(call_id)
            await viewer.frames_keep_coming()

            still_id = await ask(console, "still", call_id)
            stored = (await event(console, "evidence.new"))["evidence"]
            clip_id = await ask(console, "report_clip", call_id, seconds=5)
            await event(console, "evidence.failed")
            await asyncio.sleep(3)  # a recording segment closes (segment_s = 2)
            await console.ws.send(json.dumps({"type": "call.end", "call_id": call_id}))
            await event(console, "call.ended")
            async with asyncio.timeout(10):
                while device.app.call.call_id is not None:
                    await asyncio.sleep(0.1)

        log = await case_log(console, cid)
    finally:
        await viewer.close()
        await console.close()

    assert log["chain_problems"] == []
    events = log["events"]
    by_action: dict[str, list[dict[str, Any]]] = {}
    for item in events:
        by_action.setdefault(item["action"], []).append(item)

    [started] = by_action["call.started"]
    assert (started["actor"], started["source"]) == ("device:car-log-01", "mqtt")
    assert started["detail"] == {"call_id": call_id}
    [joined] = by_action["call.joined"]
    assert (joined["actor"], joined["source"]) == ("wuhua", "127.0.0.1")
    assert joined["detail"] == {"call_id": call_id, "answered": True}

    requested = {e["detail"]["upload_id"]: e for e in by_action["evidence.requested"]}
    assert requested[still_id]["actor"] == "wuhua" and requested[still_id]["source"] == "127.0.0.1"
    assert requested[still_id]["detail"] == {"call_id": call_id, "upload_id": still_id, "kind": "still"}
    assert requested[clip_id]["detail"] == {"call_id": call_id, "upload_id": clip_id, "kind": "clip", "seconds": 5}

    files = by_action["evidence.stored"]
    [still] = [e for e in files if e["detail"]["kind"] == "still"]
    assert (still["actor"], still["source"]) == ("device:car-log-01", "mqtt")
    assert still["detail"]["upload_id"] == still_id and still["detail"]["evidence_id"] == stored["id"]
    assert still["detail"]["sha256"] == stored["sha256"] and still["detail"]["requested_by"] == stored["operator_id"]
    [failed] = by_action["evidence.failed"]
    assert failed["detail"]["upload_id"] == clip_id
    assert failed["detail"]["reason"] == "no video from before this press on the device"

    [ended] = by_action["call.ended"]
    assert (ended["actor"], ended["source"]) == ("wuhua", "127.0.0.1")
    assert ended["detail"] == {"call_id": call_id, "reason": "ended by the dispatcher"}
    order = [e["action"] for e in events]
    assert order.index("call.started") < order.index("call.joined") < order.index("call.ended")

    # Every evidence file of the case has its event, with the hash the evidence table holds.
    engine = make_engine(server.cfg.database_url)
    try:
        kept = await CallStore(make_sessionmaker(engine), server.cfg.evidence_dir).evidence_of(cid)
    finally:
        await engine.dispose()
    recordings = [e for e in kept if e.kind == "recording"]
    assert recordings, "no recording segment kept"
    assert {(e.id, e.sha256) for e in kept} == {(f["detail"]["evidence_id"], f["detail"]["sha256"]) for f in files}
    assert {f["actor"] for f in files if f["detail"]["kind"] == "recording"} == {"system"}


async def test_a_call_the_unit_hangs_up_is_ended_by_the_unit_in_the_log(broker: Mosquitto, tmp_path: Path) -> None:
    server = await start_server(make_server_config(tmp_path / "server", broker.port))
    try:
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        async with running_device(device_config(tmp_path / "car", broker.port, "car-log-02")) as device:
            case_no, call_id = await device.live_call()
            await device.app.call.hang_up("longest call time reached")
            console = Console(server.url)
            assert (await console.login("wuhua", PASSWORD)).status_code == 200
            cid = await case_id(console, case_no)
            async with asyncio.timeout(15):
                while "call.ended" not in [e["action"] for e in (await case_log(console, cid))["events"]]:
                    await asyncio.sleep(0.2)
            log = await case_log(console, cid)
            await console.close()
        [ended] = [e for e in log["events"] if e["action"] == "call.ended"]
        assert (ended["actor"], ended["source"]) == ("device:car-log-02", "mqtt")
        assert ended["detail"] == {"call_id": call_id, "reason": "ended by the device: longest call time reached"}
        assert log["chain_problems"] == []
    finally:
        await server.stop()
