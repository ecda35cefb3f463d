"""A live call survives what the field does to it: the unit's network changing under it, the server
killed mid-call, and devices saying nonsense. One call record throughout; no recording lost."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from protocol.ids import new_report_id
from protocol.messages import CallSignal, Command, decode, encode
from protocol.topics import Channel, device_topic
from server.calls.store import CallStore
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Call, Evidence
from server.users import Role
from tests import pki
from tests.calls import Viewer
from tests.conftest import PASSWORD, add_user, make_server_config, start_server
from tests.devices import device_config, running_device
from tests.reports import in_car_report
from tests.services import Mosquitto, free_port
from tests.wire import Console, mqtt_client, publish_report, raw_device


async def store_of(database_url: str, evidence_dir: Path) -> tuple[CallStore, Any]:
    engine = make_engine(database_url)
    return CallStore(make_sessionmaker(engine), evidence_dir), engine


async def call_and_evidence(database_url: str, evidence_dir: Path, call_id: str) -> tuple[Call, list[Evidence]]:
    store, engine = await store_of(database_url, evidence_dir)
    try:
        call = await store.get(call_id)
        assert call is not None
        return call, await store.evidence_of(call.case_id)
    finally:
        await engine.dispose()


async def wait_call(database_url: str, evidence_dir: Path, call_id: str, check: Any, within_s: float = 60) -> Call:
    async with asyncio.timeout(within_s):
        while True:
            call, _ = await call_and_evidence(database_url, evidence_dir, call_id)
            if check(call):
                return call
            await asyncio.sleep(0.3)


async def test_a_unit_whose_network_changes_renegotiates_and_the_console_keeps_watching(
    broker: Mosquitto, tmp_path: Path
) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)
    server = await start_server(cfg)
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    console = Console(server.url)
    viewer = Viewer(console)
    try:
        async with running_device(device_config(tmp_path / "car", broker.port, "car-flap-01")) as device:
            await device.wait_fix()
            await device.press()
            await device.case_number()
            async with asyncio.timeout(30):
                await device.app.call.connected.wait()
            call_id = device.app.call.call_id
            assert call_id is not None
            await console.login("wuhua", PASSWORD)
            await console.connect_live()
            await viewer.join(call_id)
            await viewer.frames_keep_coming()
            # The unit's broker link drops and comes back (a new cell, Wi-Fi to 4G): it offers again.
            broker.restart()
            await wait_call(cfg.database_url, cfg.evidence_dir, call_id, lambda c: c.attempts >= 2)
            await wait_call(cfg.database_url, cfg.evidence_dir, call_id, lambda c: c.state == "live")
            # The console did nothing and still receives the unit's pictures, through the new connection.
            await viewer.frames_keep_coming()
            assert viewer.pc.connectionState == "connected"
            call, _ = await call_and_evidence(cfg.database_url, cfg.evidence_dir, call_id)
            assert call.ended_at is None
    finally:
        await viewer.close()
        await console.close()
        await server.stop()


def write_server_toml(path: Path, data_dir: Path, broker_port: int, http_port: int) -> None:
    path.write_text(
        f'[server]\ndata_dir = "{data_dir}"\n\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {pki.current().server_port(broker_port)}\nsession_expiry_s = 300\n\n'
        + pki.tls_table(pki.current().server_tls())
        + f'\n[http]\nhost = "127.0.0.1"\nport = {http_port}\nsecure_cookies = false\n\n'
        "[calls]\nsegment_s = 2\n"
    )


def start_server_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kuaichu.cli", "server", "run", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def wait_http(port: int, proc: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(30):
        while True:
            assert proc.poll() is None, "server exited"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            writer.close()
            return


async def test_a_server_killed_mid_call_loses_no_recording_and_the_same_call_resumes(
    broker: Mosquitto, tmp_path: Path
) -> None:
    http_port = free_port()
    config, data_dir, log = tmp_path / "server.toml", tmp_path / "server", tmp_path / "server.log"
    write_server_toml(config, data_dir, broker.port, http_port)
    cfg = make_server_config(data_dir, broker.port)  # the same database and evidence folder
    server = start_server_process(config, log)
    try:
        await wait_http(http_port, server)
        async with running_device(device_config(tmp_path / "car", broker.port, "car-crash-01")) as device:
            await device.wait_fix()
            await device.press()
            await device.case_number()
            async with asyncio.timeout(30):
                await device.app.call.connected.wait()
            call_id = device.app.call.call_id
            assert call_id is not None
            await wait_call(cfg.database_url, cfg.evidence_dir, call_id, lambda c: c.state == "live")
            async with asyncio.timeout(30):  # segments of 2 s are closed, one is being written
                while len(before := (await call_and_evidence(cfg.database_url, cfg.evidence_dir, call_id))[1]) < 2:
                    await asyncio.sleep(0.3)
            await asyncio.sleep(1)

            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            server = start_server_process(config, log)
            await wait_http(http_port, server)

            # The same call, resumed by the unit's next offer: one record, more attempts, live again.
            call = await wait_call(
                cfg.database_url, cfg.evidence_dir, call_id, lambda c: c.state == "live" and c.attempts >= 2
            )
            assert call.ended_at is None
            async with asyncio.timeout(30):  # the recovered segment, then at least one recorded after it
                while True:
                    call, after = await call_and_evidence(cfg.database_url, cfg.evidence_dir, call_id)
                    if len({e.path for e in after} - {e.path for e in before}) >= 2:
                        break
                    await asyncio.sleep(0.3)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    # Nothing recorded before the kill is lost: the segment being written was taken in at restart,
    # and recording went on in new files after it.
    assert {e.path for e in before} < {e.path for e in after}
    recovered = [e for e in after if e.note == "recovered after a restart"]
    assert len(recovered) == 1
    assert max(e.path for e in after) > recovered[0].path
    for item in after:
        data = (cfg.evidence_dir / item.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item.sha256 and len(data) == item.size_bytes


async def _signal_and_answer(port: int, device_id: str, payload: bytes) -> Command:
    """Publish on the unit's call channel as the unit, and return the server's command in reply."""
    async with mqtt_client(port, device_id, pki.current().device_tls(device_id)) as client:
        await client.subscribe(device_topic(device_id, Channel.CMD), qos=1)
        await client.publish(device_topic(device_id, Channel.CALL), payload, qos=1)
        async with asyncio.timeout(15):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return decode(Command, message.payload)
    raise AssertionError("no command")


async def test_bogus_and_foreign_offers_are_refused_and_harm_no_call(broker: Mosquitto, tmp_path: Path) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)
    server = await start_server(cfg)
    try:
        async with raw_device(broker.port, "car-bad-01") as (client, acks):
            report = in_car_report("car-bad-01")
            await publish_report(client, "car-bad-01", encode(report))
            ack = await asyncio.wait_for(acks.get(), 10)
        assert ack.case_no is not None

        def offer(**fields: Any) -> bytes:
            base: dict[str, Any] = {
                "type": "offer",
                "call_id": new_report_id(),
                "report_id": report.report_id,
                "case_no": ack.case_no,
                "sdp": "v=0\r\nthis is not an sdp\r\n",
            }
            return encode(CallSignal(**{**base, **fields}))

        garbage = await _signal_and_answer(broker.port, "car-bad-01", offer())
        assert garbage.type == "call.end" and garbage.reason == "offer unusable"
        # Another unit cannot open a call on this unit's case, whatever ids it copies.
        foreign = await _signal_and_answer(broker.port, "car-bad-02", offer())
        assert foreign.type == "call.end" and foreign.reason == "no such case for this device"
        wrong_case = await _signal_and_answer(broker.port, "car-bad-01", offer(case_no="530102209901010001"))
        assert wrong_case.reason == "no such case for this device"
        # Not even a message: refused at the door with a log line, no answer, nothing opened.
        async with mqtt_client(broker.port, "car-bad-01", pki.current().device_tls("car-bad-01")) as raw:
            await raw.publish(device_topic("car-bad-01", Channel.CALL), b'{"version": 1, "type": "offer"}', qos=1)
        store, engine = await store_of(cfg.database_url, cfg.evidence_dir)
        try:
            assert await store.unfinished() == []
        finally:
            await engine.dispose()
    finally:
        await server.stop()


async def test_a_unit_that_hangs_up_ends_the_call(broker: Mosquitto, tmp_path: Path) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)
    server = await start_server(cfg)
    try:
        async with running_device(device_config(tmp_path / "car", broker.port, "car-hang-01")) as device:
            await device.press()
            await device.case_number()
            async with asyncio.timeout(30):
                await device.app.call.connected.wait()
            call_id = device.app.call.call_id
            assert call_id is not None
            await device.app.call.hang_up("camera failed")
            call = await wait_call(cfg.database_url, cfg.evidence_dir, call_id, lambda c: c.state == "ended", 20)
            assert call.end_reason == "ended by the device: camera failed"
    finally:
        await server.stop()
