"""A statement saved the moment its end is marked: the recorder closes its open segment on demand
(at the next key frame, asked for at once), and the statement route waits for that segment instead
of refusing for the ten seconds the segment would otherwise stay open."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import av

from server.calls.recorder import Segment, SegmentRecorder
from server.cases import now_utc
from server.users import Role
from tests.casework_data import DRIVER_A, driver
from tests.conftest import PASSWORD, add_user, make_server_config, start_server
from tests.devices import device_config, running_device
from tests.services import Mosquitto
from tests.stored import wait_state
from tests.unit_video import UnitEncoder
from tests.wire import Console


async def test_a_cut_closes_the_open_segment_at_the_next_key_frame(tmp_path: Path) -> None:
    segments: list[Segment] = []
    asked: list[int] = []
    recorder = SegmentRecorder(tmp_path, "call-x", 60.0, 15, segments.append, lambda: asked.append(1))
    unit = UnitEncoder()
    answered = 0
    for n in range(30):
        if n == 10:
            recorder.cut()
        keyframe = len(asked) > answered  # the unit answers a key-frame request with its next picture
        answered = len(asked)
        for packet in unit.encode(n, keyframe):
            recorder.video(packet)
        await asyncio.sleep(1 / 15)
        if n == 15:
            assert len(segments) == 1  # closed within a few pictures of the cut, not after 60 s
    await recorder.stop()
    await asyncio.sleep(0)
    assert len(asked) == 1  # the cut asked for one; the unit's first picture is one anyway
    assert len(segments) == 2
    with av.open(str(segments[0].path)) as container:
        assert 10 <= sum(1 for _ in container.decode(video=0)) <= 13


async def test_a_statement_is_saved_right_after_its_end_is_marked_in_a_live_call(
    broker: Mosquitto, tmp_path: Path
) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)  # segments of 10 s, as deployed
    server = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    dispatcher = Console(server.url)
    try:
        async with running_device(device_config(tmp_path / "car", broker.port, "car-stmt-01")) as device:
            await device.wait_fix()
            await device.press()
            case_no = await device.case_number()
            async with asyncio.timeout(30):
                await device.app.call.connected.wait()
            call_id = device.app.call.call_id
            assert call_id is not None
            await wait_state(server, call_id, "live")
            await dispatcher.login("wuhua", PASSWORD)
            cid = next(c["id"] for c in (await dispatcher.http.get("/api/cases")).json() if c["case_no"] == case_no)
            base = f"/api/cases/{cid}"
            party = (await dispatcher.http.post(f"{base}/parties", json=driver(DRIVER_A))).json()
            await asyncio.sleep(3)  # the party speaks
            end = now_utc()  # 标记结束, and save at once
            span = {"party_id": party["id"], "start": (end - timedelta(seconds=2)).isoformat(), "end": end.isoformat()}
            saved = await dispatcher.http.post(
                f"{base}/statements", json=span | {"summary": "前车急刹，我未保持安全距离。"}
            )
            assert saved.status_code == 201, saved.text
            events = (await dispatcher.http.get(f"{base}/events")).json()["events"]
            added = next(e for e in events if e["action"] == "statement.added")
            assert added["detail"]["segments"]  # covered by a closed, hashed segment
            # A span that ends later than anything recorded while the call goes on says to wait.
            ahead = span | {"end": (now_utc() + timedelta(seconds=30)).isoformat(), "summary": "还没说完"}
            waiting = await dispatcher.http.post(f"{base}/statements", json=ahead)
            assert waiting.status_code == 422 and waiting.json()["code"] == "recording_pending"
            assert waiting.json()["detail"].startswith("录音还在写入，请稍候几秒再保存")
    finally:
        await dispatcher.close()
        await server.stop()
