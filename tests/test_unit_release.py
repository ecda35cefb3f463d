"""A unit's part in a case ends when the dispatcher hands the case over: the server says so
(``case.closed``), the unit is idle at once (not after its 30-minute case hold), the fleet page
shows it idle, a restart does not bring the case back, and the next press opens a new case.

Before, only the hold freed the unit: the fleet page showed ``in_case`` for a case long handed
over and determined, and a kiosk answered the next walk-up party with the last party's number.
"""

from __future__ import annotations

from pathlib import Path

from device.hal.indicators import Signal
from device.reporting import Accepted, AppState, CaseClosed, ReportingMachine, Show, Triggered
from protocol.messages import Trigger
from server.users import Role
from tests.cases import case_id, logged_in
from tests.casework_data import DRIVER_A, DRIVER_B, FACTS, driver, seed_registry
from tests.conftest import add_user, make_server_config, start_server
from tests.devices import device_config, running_device
from tests.services import Mosquitto
from tests.waiting import wait_for


def test_the_machine_leaves_its_case_when_the_server_closes_it_and_only_that_case() -> None:
    machine = ReportingMachine(link_up=True)
    machine.handle(Triggered(Trigger.BUTTON, "01JV2MBZX6HF1RM9XY3K7T2Q8C"))
    machine.handle(Accepted("01JV2MBZX6HF1RM9XY3K7T2Q8C", "530102202512060001"))
    assert machine.state is AppState.IN_CASE
    assert machine.handle(CaseClosed("530102202512060002")) == []  # another case: nothing
    assert machine.state is AppState.IN_CASE
    assert machine.handle(CaseClosed("530102202512060001")) == [Show(Signal.IDLE)]
    assert (machine.state, machine.case_no) == (AppState.IDLE, None)


async def test_handing_the_case_over_frees_the_unit_at_once_and_for_good(broker: Mosquitto, tmp_path: Path) -> None:
    server = await start_server(make_server_config(tmp_path / "server", broker.port))
    try:
        await seed_registry(server.cfg.database_url, tmp_path / "registry")
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        admin_name = "fleet-admin"
        await add_user(server.cfg, admin_name, Role.ADMIN, [])
        cfg = device_config(tmp_path / "car", broker.port, "car-release-01", report={"case_hold_s": 3600})
        async with running_device(cfg) as car:
            await car.wait_fix()
            await car.press()
            case_no = await car.case_number()
            admin = await logged_in(server, admin_name)

            async def fleet_says(state: str) -> bool:
                entry = (await admin.http.get("/api/devices/car-release-01")).json()
                return bool(entry.get("app_state") == state)

            await wait_for("the fleet shows the unit in its case", lambda: fleet_says("in_case"), every_s=0.2)

            wuhua = await logged_in(server, "wuhua")
            cid = await case_id(wuhua, case_no)
            base = f"/api/cases/{cid}"
            await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A, plate_read_source="report"))
            await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_B))
            await wuhua.http.put(f"{base}/facts", json=FACTS)
            await wuhua.http.post(f"{base}/checks")
            answer = await wuhua.http.post(f"{base}/hand-over")
            assert answer.status_code == 200, answer.text
            await wuhua.close()

            async def idle() -> bool:
                return car.app.machine.state is AppState.IDLE

            await wait_for("the unit idle after the hand-over", idle, every_s=0.1, within_s=10)
            await wait_for("the fleet shows the unit idle", lambda: fleet_says("idle"), every_s=0.2)
            assert await car.app.outbox.last_answer() is None  # a restart starts idle
            await admin.close()

            # The next press is a new report and a new case, not a reminder of the old number.
            await car.press()
            assert await car.case_number() != case_no
    finally:
        await server.stop()
