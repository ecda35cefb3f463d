"""The live call between a unit and the server, for real: two aiortc peers over the real broker's
signalling, the recording on disk with its hashes, and the call healing after a link drop."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import av

from server.calls.store import CallStore
from server.db.engine import make_engine, make_sessionmaker
from server.users import Role
from tests.conftest import PASSWORD, add_user, make_server_config, start_server
from tests.devices import device_config, running_device
from tests.services import Mosquitto
from tests.stored import wait_state
from tests.wire import Console


async def test_an_accepted_report_starts_a_recorded_call_that_the_server_can_end(
    broker: Mosquitto, tmp_path: Path
) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)
    cfg = cfg.model_copy(update={"calls": cfg.calls.model_copy(update={"segment_s": 2})})
    server = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    try:
        car = device_config(tmp_path / "car", broker.port, "car-call-01")
        async with running_device(car) as device:
            await device.wait_fix()  # a case in 五华区, which the dispatcher serves
            await device.press()
            case_no = await device.case_number()
            async with asyncio.timeout(30):
                await device.app.call.connected.wait()
            call_id = device.app.call.call_id
            assert call_id is not None
            row = await wait_state(server, call_id, "live")
            assert row.device_id == "car-call-01" and row.live_at is not None
            await asyncio.sleep(5)  # two closed segments at least
            dispatcher = Console(server.url)
            try:
                await dispatcher.login("wuhua", PASSWORD)
                active = (await dispatcher.http.get("/api/calls")).json()["calls"]
                assert [(c["call_id"], c["case_no"], c["state"]) for c in active] == [(call_id, case_no, "live")]
                assert (await dispatcher.http.post(f"/api/calls/{call_id}/end")).status_code == 204
            finally:
                await dispatcher.close()
            async with asyncio.timeout(10):
                while device.app.call.call_id is not None:
                    await asyncio.sleep(0.1)
        row = await wait_state(server, call_id, "ended")
        assert row.end_reason == "ended by the dispatcher" and row.ended_by is not None
        engine = make_engine(cfg.database_url)
        try:
            evidence = await CallStore(make_sessionmaker(engine), cfg.evidence_dir).evidence_of(row.case_id)
        finally:
            await engine.dispose()
        assert len(evidence) >= 2
        frames = 0
        for item in evidence:
            path = cfg.evidence_dir / item.path
            assert path.parent.name == case_no and item.call_id == call_id
            assert hashlib.sha256(path.read_bytes()).hexdigest() == item.sha256
            with av.open(str(path)) as container:
                kinds = sorted(s.type for s in container.streams)
                assert kinds == ["audio", "audio", "video"]
                frames += sum(1 for _ in container.decode(video=0))
        assert frames >= 8  # over 5 s of the test camera's 2 frames a second
    finally:
        await server.stop()
