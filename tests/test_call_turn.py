"""The live call through a real TURN server: coturn on loopback, a unit allowed relay candidates only.

The unit and the server hold different TURN users, so coturn's own log says whose allocation
carried the media: the unit's relay, not a direct path.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from pathlib import Path

import av
import pytest

from runtime.ice import IceServer
from server.calls.store import CallStore
from server.config import ServerConfig
from server.db.engine import make_engine, make_sessionmaker
from server.users import Role
from tests.conftest import PASSWORD, RunningServer, add_user, make_server_config, start_server
from tests.devices import device_config, running_device
from tests.services import Coturn, Mosquitto, coturn
from tests.stored import call_row, wait_state
from tests.wire import Console

UNIT, UNIT_SECRET = "car-turn-01", "unit turn secret"
MEDIA, MEDIA_SECRET = "media-w1", "media turn secret"


def server_config(tmp_path: Path, broker: Mosquitto, turn: Coturn) -> ServerConfig:
    cfg = make_server_config(tmp_path / "server", broker.port)
    ice = [IceServer(urls=[turn.url()], username=MEDIA, credential=MEDIA_SECRET)]
    return cfg.model_copy(update={"calls": cfg.calls.model_copy(update={"segment_s": 2, "ice_servers": ice})})


async def relayed_usage(turn: Coturn, user: str, within_s: float = 15) -> tuple[int, int]:
    """Bytes coturn relayed for ``user`` from and to its peers, over all of the user's allocations;
    coturn logs each allocation's figures when it ends, so this waits until all have ended."""
    who = re.escape(f"user <{user}>")
    allocated = re.compile(rf"{who}: incoming packet ALLOCATE processed, success")
    usage = re.compile(
        rf"peer usage: realm=<kuaichu>, username=<{re.escape(user)}>, rp=\d+, rb=(\d+), sp=\d+, sb=(\d+)"
    )
    async with asyncio.timeout(within_s):
        while True:
            log = await asyncio.to_thread(turn.log.read_text, errors="replace")
            ended = usage.findall(log)
            if ended and len(ended) == len(allocated.findall(log)):
                return sum(int(rb) for rb, _ in ended), sum(int(sb) for _, sb in ended)
            await asyncio.sleep(0.2)


async def end_as_dispatcher(server: RunningServer, call_id: str) -> None:
    dispatcher = Console(server.url)
    try:
        await dispatcher.login("wuhua", PASSWORD)
        assert (await dispatcher.http.post(f"/api/calls/{call_id}/end")).status_code == 204
    finally:
        await dispatcher.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_relay_only_unit_connects_through_turn_and_the_media_goes_through_the_relay(
    broker: Mosquitto, tmp_path: Path, transport: str
) -> None:
    with coturn(tmp_path / "turn", {UNIT: UNIT_SECRET, MEDIA: MEDIA_SECRET}) as turn:
        cfg = server_config(tmp_path, broker, turn)
        server = await start_server(cfg)
        await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
        try:
            webrtc = {
                "relay_only": True,
                "ice_servers": [{"urls": [turn.url(transport)], "username": UNIT, "credential": UNIT_SECRET}],
            }
            async with running_device(device_config(tmp_path / "car", broker.port, UNIT, webrtc=webrtc)) as device:
                await device.wait_fix()
                await device.press()
                case_no = await device.case_number()
                async with asyncio.timeout(30):
                    await device.app.call.connected.wait()
                call_id = device.app.call.call_id
                assert call_id is not None
                await wait_state(server, call_id, "live")
                await asyncio.sleep(5)  # two closed recording segments at least
                await end_as_dispatcher(server, call_id)
                async with asyncio.timeout(10):
                    while device.app.call.call_id is not None:
                        await asyncio.sleep(0.1)
            row = await wait_state(server, call_id, "ended")
        finally:
            await server.stop()
        from_peers, to_peers = await relayed_usage(turn, UNIT)

    # Over 5 s the unit's camera and microphone send tens of kilobytes (Opus alone is ~50 packets
    # a second); all of it left through the unit's relay, and the dispatcher's audio came back in.
    assert to_peers > 20_000 and from_peers > 5_000, (to_peers, from_peers)

    evidence = await _evidence(cfg, row.case_id)
    assert evidence and all(path.parent.name == case_no for path, _ in evidence)
    frames = 0
    for path, digest in evidence:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        with av.open(str(path)) as container:
            frames += sum(1 for _ in container.decode(video=0))
    assert frames >= 8  # the test camera's 2 frames a second, through the relay


async def test_a_relay_only_unit_with_a_wrong_turn_password_does_not_connect_and_says_why(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="device.call")
    with coturn(tmp_path / "turn", {UNIT: UNIT_SECRET, MEDIA: MEDIA_SECRET}) as turn:
        cfg = server_config(tmp_path, broker, turn)
        server = await start_server(cfg)
        try:
            webrtc = {
                "relay_only": True,
                "reconnect_after_s": 1,
                "ice_servers": [{"urls": [turn.url()], "username": UNIT, "credential": "not the secret"}],
            }
            async with running_device(device_config(tmp_path / "car", broker.port, UNIT, webrtc=webrtc)) as device:
                await device.wait_fix()
                await device.press()
                await device.case_number()
                async with asyncio.timeout(30):
                    while not _refused(caplog):
                        await asyncio.sleep(0.1)
                call_id = device.app.call.call_id
                assert call_id is not None
                refused = _turn_refusals(turn)
                async with asyncio.timeout(30):  # the unit keeps trying, and keeps being refused
                    while _turn_refusals(turn) < refused + 3:
                        await asyncio.sleep(0.2)
                assert not device.app.call.connected.is_set()
                row = await call_row(server, call_id)
                assert row is None or row.state != "live"
        finally:
            await server.stop()
    refusals = [r for r in caplog.records if "refused the credentials" in r.getMessage()]
    assert len(refusals) == 1  # said once, not at every attempt
    assert refusals[0].levelno == logging.ERROR and call_id in refusals[0].getMessage()
    assert "401" in refusals[0].getMessage() and UNIT in refusals[0].getMessage()


def _refused(caplog: pytest.LogCaptureFixture) -> bool:
    return any("refused the credentials" in r.getMessage() for r in caplog.records)


def _turn_refusals(turn: Coturn) -> int:
    return turn.log.read_text(errors="replace").count(f"user {UNIT} credentials are incorrect")


async def _evidence(cfg: ServerConfig, case_id: int) -> list[tuple[Path, str]]:
    engine = make_engine(cfg.database_url)
    try:
        items = await CallStore(make_sessionmaker(engine), cfg.evidence_dir).evidence_of(case_id)
    finally:
        await engine.dispose()
    return [(cfg.evidence_dir / item.path, item.sha256) for item in items]
