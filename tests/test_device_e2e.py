"""One press reaches a dispatcher: the real firmware, broker, server and console, end to end.

The device runs with gpiozero MockFactory pins, a GNSS receiver on a pseudo-terminal playing the
recorded Kunming track, a rendered camera and simulated audio; everything above those is the code
a Raspberry Pi runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from device.hal.indicators import Signal
from device.reporting import AppState
from server.users import Role
from tests.conftest import PASSWORD, RunningServer, add_user, make_server_config, start_server
from tests.devices import HAZARD_PIN, device_config, outbox_rows, running_device
from tests.services import Mosquitto
from tests.stored import cases_in
from tests.wire import Console


async def test_a_long_press_opens_a_routed_case_and_the_device_announces_its_number(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    console = Console(server.url)
    await console.login("wuhua", PASSWORD)
    await console.connect_live()

    cfg = device_config(tmp_path / "car", broker.port)
    async with running_device(cfg) as device:
        await device.wait_fix()
        await asyncio.wait_for(device.app.link.connected.wait(), 10)
        # A brush of the button is not a report.
        await device.hold_button(0.05)
        await asyncio.sleep(0.5)
        assert outbox_rows(cfg.device.data_dir) == []

        await device.press()
        case_no = await device.case_number()
        event = await console.next_event()
        assert event["case"]["case_no"] == case_no
        assert event["case"]["unit"]["adcode"] == "530102"  # the recorded track is in 五华区
        assert event["case"]["trigger"] == "button"
        assert event["case"]["vehicle"] == {"plate": "云A5H821", "vin": "LSVAM4187C2184521"}
        assert event["case"]["position"]["trusted"] is True
        assert event["case"]["health"]["camera"] == "ok"

        assert device.app.machine.state is AppState.IN_CASE
        assert device.hw.indicators.shown is Signal.CASE_OPEN
        [(report_id, state, stored_case)] = outbox_rows(cfg.device.data_dir)
        assert state == "accepted" and stored_case == case_no

        # A second press while the case is open repeats the number; it opens nothing.
        await device.press()
        await asyncio.sleep(1.0)
        assert len(outbox_rows(cfg.device.data_dir)) == 1

    [case] = await cases_in(server.cfg.database_url)
    assert case.report_id == report_id
    track = case.report["track"]
    assert 1 <= len(track) <= 60  # what the receiver gave since start-up, up to the last 30 s
    assert [p["time"] for p in track] == sorted(p["time"] for p in track)
    await console.close()


async def test_the_hazard_switch_reports_once_while_it_flashes(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    cfg = device_config(tmp_path / "car", broker.port, "car-e2e-02", gpio={"hazard_release_s": 1.0})
    async with running_device(cfg) as device:
        await asyncio.wait_for(device.app.link.connected.wait(), 10)
        hazard = device.hw.pins.pin(HAZARD_PIN)
        for _ in range(4):  # the flasher relay: 1.5 Hz
            hazard.drive_high()
            await asyncio.sleep(0.33)
            hazard.drive_low()
            await asyncio.sleep(0.33)
        await device.case_number()
    cases = await cases_in(server.cfg.database_url)
    assert [c.trigger for c in cases] == ["hazard"]


async def test_a_press_while_the_server_is_down_becomes_one_case_when_it_is_back(
    broker: Mosquitto, tmp_path: Path
) -> None:
    server_cfg = make_server_config(tmp_path / "server", broker.port)
    cfg = device_config(tmp_path / "car", broker.port, "car-e2e-03")
    async with running_device(cfg) as device:
        await asyncio.wait_for(device.app.link.connected.wait(), 10)
        await device.press()
        await asyncio.sleep(2.5)  # several unanswered sends
        assert device.hw.indicators.shown is Signal.RETRYING
        assert [r[1] for r in outbox_rows(cfg.device.data_dir)] == ["pending"]
        server = await start_server(server_cfg)
        try:
            case_no = await device.case_number()
        finally:
            await server.stop()
    cases = await cases_in(server_cfg.database_url)
    assert [c.case_no for c in cases] == [case_no]


async def test_a_press_while_the_broker_is_down_is_kept_and_sent_when_it_returns(
    server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    cfg = device_config(tmp_path / "car", broker.port, "car-e2e-04")
    async with running_device(cfg) as device:
        await asyncio.wait_for(device.app.link.connected.wait(), 10)
        broker.stop()
        async with asyncio.timeout(10):
            while device.app.link.connected.is_set():
                await asyncio.sleep(0.05)
        await device.press()
        await asyncio.sleep(0.5)
        assert device.hw.indicators.shown is Signal.RETRYING
        broker.start()
        case_no = await device.case_number(timeout=30)
    cases = await cases_in(server.cfg.database_url)
    assert [c.case_no for c in cases] == [case_no]


async def test_a_server_restart_between_press_and_ack_still_gives_exactly_one_case(
    broker: Mosquitto, tmp_path: Path
) -> None:
    server_cfg = make_server_config(tmp_path / "server", broker.port)
    server = await start_server(server_cfg)
    cfg = device_config(tmp_path / "car", broker.port, "car-e2e-05")
    async with running_device(cfg) as device:
        await asyncio.wait_for(device.app.link.connected.wait(), 10)
        await server.stop()
        await device.press()
        await asyncio.sleep(1.0)
        server = await start_server(server_cfg)
        try:
            case_no = await device.case_number()
            await asyncio.sleep(2.5)  # let any further resend arrive: it must not open a second case
        finally:
            await server.stop()
    cases = await cases_in(server_cfg.database_url)
    assert [c.case_no for c in cases] == [case_no]


async def test_a_device_restarted_before_the_ack_resumes_the_same_report(broker: Mosquitto, tmp_path: Path) -> None:
    server_cfg = make_server_config(tmp_path / "server", broker.port)
    cfg = device_config(tmp_path / "car", broker.port, "car-e2e-06")
    async with running_device(cfg) as device:
        await asyncio.wait_for(device.app.link.connected.wait(), 10)
        await device.press()
        await asyncio.sleep(0.5)
    [(report_id, state, _)] = outbox_rows(cfg.device.data_dir)
    assert state == "pending"
    server = await start_server(server_cfg)
    try:
        async with running_device(cfg) as device:
            assert device.app.machine.state is AppState.REPORTING
            case_no = await device.case_number()
    finally:
        await server.stop()
    cases = await cases_in(server_cfg.database_url)
    assert [(c.case_no, c.report_id) for c in cases] == [(case_no, report_id)]
