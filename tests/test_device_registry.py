"""The server's device registry: what the provisioning station registers and retires, what devices
report about themselves, and what the fleet API gives admins (and no one else)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from protocol.ids import new_report_id
from protocol.messages import (
    CheckStatus,
    DeviceKind,
    Heartbeat,
    SelfTest,
    SelfTestCheck,
    encode,
)
from protocol.topics import Channel, device_topic
from provisioning import bundle, fleet
from provisioning.ledger import load_ledger
from provisioning.server_sync import PASSWORD_ENV, USER_ENV, sync
from server.db.models import Device
from server.devices import fleet_entry
from server.intake import STATUS_GATHER_S
from server.users import Role
from tests.conftest import PASSWORD, RunningServer, add_user
from tests.reports import health, in_car_report
from tests.services import Mosquitto, free_port
from tests.wire import Console, publish_report, raw_device

STATION_PASSPHRASE = b"the station's CA passphrase"
CAR = bundle.Placement(DeviceKind.IN_CAR, plate="云A5H821", vin="LSVAM4187C2184521")
KIOSK = bundle.Placement(DeviceKind.KIOSK, site_name="滇池路报警亭", lon=102.6842, lat=24.9867)


@pytest.fixture
def station(tmp_path: Path) -> Path:
    """A provisioning folder of its own (its own CA): only its registry matters to the server."""
    root = tmp_path / "station"
    fleet.init(root, STATION_PASSPHRASE, "127.0.0.1", 8883, None)
    return root


@pytest.fixture
def admin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(USER_ENV, "ops-admin")
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


async def admin_console(server: RunningServer) -> Console:
    await add_user(server.cfg, "ops-admin", Role.ADMIN, [])
    console = Console(server.url)
    assert (await console.login("ops-admin", PASSWORD)).status_code == 200
    return console


async def fleet_of(console: Console) -> dict[str, dict[str, Any]]:
    response = await console.http.get("/api/devices")
    assert response.status_code == 200, response.text
    return {d["id"]: d for d in response.json()["devices"]}


async def test_provisioned_devices_are_registered_and_a_revoked_one_is_retired_and_ignored(
    server: RunningServer, broker: Mosquitto, station: Path, admin_env: None
) -> None:
    console = await admin_console(server)
    try:
        fleet.add_device(station, STATION_PASSPHRASE, "car-reg-01", CAR)
        fleet.add_device(station, STATION_PASSPHRASE, "kiosk-reg-01", KIOSK)
        result = await asyncio.to_thread(sync, station, server.url)
        assert result.problem is None and not result.pending
        assert sorted(result.synced) == ["car-reg-01", "kiosk-reg-01"]
        assert all(r.synced for r in load_ledger(station).devices.values())

        devices = await fleet_of(console)
        car, kiosk = devices["car-reg-01"], devices["kiosk-reg-01"]
        assert car["status"] == "registered" and car["plate"] == "云A5H821" and car["online"] is False
        assert kiosk["status"] == "registered" and kiosk["site"] == {
            "name": "滇池路报警亭",
            "lat": 24.9867,
            "lon": 102.6842,
            "datum": "WGS-84",
        }
        fingerprint = load_ledger(station).devices["car-reg-01"].current.fingerprint
        row = await server_device(server, "car-reg-01")
        assert row.cert_fingerprint == fingerprint

        # The car reports once while registered: a case.
        async with raw_device(broker.port, "car-reg-01") as (client, acks):
            await publish_report(client, "car-reg-01", encode(in_car_report("car-reg-01")))
            assert (await asyncio.wait_for(acks.get(), 10)).status == "accepted"

        fleet.revoke_device(station, STATION_PASSPHRASE, "car-reg-01")
        assert not load_ledger(station).devices["car-reg-01"].synced
        result = await asyncio.to_thread(sync, station)  # the URL was kept from the first sync
        assert result.synced == ["car-reg-01"]
        car = (await fleet_of(console))["car-reg-01"]
        assert car["status"] == "retired" and car["retired_at"] is not None

        # Whatever it still gets through (queued before the broker reloaded its CRL) is ignored:
        # its report is refused without a case and its heartbeat changes nothing.
        cases_before = len((await console.http.get("/api/cases")).json())
        async with raw_device(broker.port, "car-reg-01") as (client, acks):
            await publish_report(client, "car-reg-01", encode(in_car_report("car-reg-01")))
            ack = await asyncio.wait_for(acks.get(), 10)
            heartbeat = Heartbeat(
                at=datetime.now(UTC), device_kind=DeviceKind.IN_CAR, app_state="idle", outbox_pending=0, health=health()
            )
            await client.publish(device_topic("car-reg-01", Channel.HEARTBEAT), encode(heartbeat))
        assert ack.status == "refused" and ack.reason == "device_retired" and ack.case_no is None
        assert len((await console.http.get("/api/cases")).json()) == cases_before
        # Long enough for the heartbeat to have been written, had it been taken.
        await asyncio.sleep(STATUS_GATHER_S + 1)
        row = await server_device(server, "car-reg-01")
        assert row.last_heartbeat_at is None and not row.online

        # A retired id is never registered again.
        registration = {"kind": "in-car", "cert_fingerprint": "0" * 64, "vehicle": {"plate": "云A5H821"}}
        response = await console.http.put("/api/devices/car-reg-01", json=registration)
        assert response.status_code == 409 and "retired" in response.json()["detail"]
    finally:
        await console.close()


async def server_device(server: RunningServer, device_id: str) -> Device:
    from tests.stored import device_row

    row = await device_row(server, device_id)
    assert row is not None
    return row


async def test_registration_waits_in_the_queue_until_the_server_can_take_it(
    server: RunningServer, station: Path, admin_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.add_device(station, STATION_PASSPHRASE, "car-queue-01", CAR)
    dead_url = f"http://127.0.0.1:{free_port()}"
    result = await asyncio.to_thread(sync, station, dead_url)
    assert result.pending == ["car-queue-01"] and not result.synced
    assert result.problem is not None and "not reachable" in result.problem
    assert not load_ledger(station).devices["car-queue-01"].synced

    monkeypatch.delenv(PASSWORD_ENV)
    result = await asyncio.to_thread(sync, station, server.url)
    assert result.pending == ["car-queue-01"]
    assert result.problem is not None and PASSWORD_ENV in result.problem

    # A dispatcher's account is not enough to register devices.
    await add_user(server.cfg, "dispatcher-1", Role.DISPATCHER, ["530102"])
    monkeypatch.setenv(USER_ENV, "dispatcher-1")
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    result = await asyncio.to_thread(sync, station)
    assert result.pending == ["car-queue-01"]
    assert result.problem is not None and "not a console admin" in result.problem

    console = await admin_console(server)
    try:
        monkeypatch.setenv(USER_ENV, "ops-admin")
        result = await asyncio.to_thread(sync, station)
        assert result.synced == ["car-queue-01"] and not result.pending
        assert (await fleet_of(console))["car-queue-01"]["status"] == "registered"
        # Nothing left to send: a second sync does not even need the server.
        assert (await asyncio.to_thread(sync, station, dead_url)).problem is None
    finally:
        await console.close()


async def test_the_cli_registers_a_new_device_or_says_it_is_queued(
    server: RunningServer, station: Path, admin_env: None
) -> None:
    env = {**os.environ, "KUAICHU_CA_PASSPHRASE": STATION_PASSPHRASE.decode()}
    base = [sys.executable, "-m", "kuaichu.cli", "provision"]
    new_car = ["device", "car-cli-01", "--kind", "in-car", "--plate", "云A5H821", "--dir", str(station)]
    dead_url = f"http://127.0.0.1:{free_port()}"
    queued = await asyncio.to_thread(
        subprocess.run, [*base, *new_car, "--server-url", dead_url], env=env, capture_output=True, text=True
    )
    assert queued.returncode == 0, queued.stderr  # the bundle exists; only the server is behind
    assert "queued, not yet sent" in queued.stderr and "car-cli-01" in queued.stderr
    listing = await asyncio.to_thread(
        subprocess.run, [*base, "list", "--dir", str(station)], env=env, capture_output=True, text=True
    )
    assert "not yet on the server" in listing.stdout

    failed = await asyncio.to_thread(
        subprocess.run, [*base, "sync", "--dir", str(station)], env=env, capture_output=True, text=True
    )
    assert failed.returncode == 1 and "not reachable" in failed.stderr

    console = await admin_console(server)
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [*base, "sync", "--dir", str(station), "--server-url", server.url],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert "server: device car-cli-01 up to date" in done.stdout
        assert (await fleet_of(console))["car-cli-01"]["status"] == "registered"
    finally:
        await console.close()


async def test_devices_heard_before_registration_are_listed_as_unregistered_with_their_self_test(
    server: RunningServer, broker: Mosquitto
) -> None:
    console = await admin_console(server)
    started = datetime.now(UTC)
    selftest = SelfTest(
        run_id=new_report_id(),
        device_kind=DeviceKind.IN_CAR,
        firmware="0.1.0",
        started_at=started,
        finished_at=started + timedelta(seconds=40),
        passed=False,
        checks=[
            SelfTestCheck(name="camera", status=CheckStatus.PASS, detail="640x480 frame", duration_ms=120),
            SelfTestCheck(name="gnss", status=CheckStatus.FAIL, detail="no fix within 90 s", duration_ms=90000),
        ],
    )
    try:
        async with raw_device(broker.port, "car-unreg-01") as (client, _):
            await client.publish(device_topic("car-unreg-01", Channel.SELFTEST), encode(selftest), qos=1)
            # Malformed: dropped with a log line, the good one stays.
            await client.publish(device_topic("car-unreg-01", Channel.SELFTEST), b'{"version": 1}', qos=1)
        async with asyncio.timeout(10):
            while "car-unreg-01" not in (devices := await fleet_of(console)):
                await asyncio.sleep(0.2)
        car = devices["car-unreg-01"]
        assert car["status"] == "unregistered"
        assert car["selftest"] is not None
        assert car["selftest"]["passed"] is False and car["selftest"]["failed"] == ["gnss"]
        assert [c["name"] for c in car["selftest"]["checks"]] == ["camera", "gnss"]
    finally:
        await console.close()


async def test_the_fleet_api_is_for_admins_only_and_checks_what_it_is_given(server: RunningServer) -> None:
    await add_user(server.cfg, "dispatcher-2", Role.DISPATCHER, ["530102"])
    dispatcher = Console(server.url)
    admin = await admin_console(server)
    try:
        assert (await dispatcher.http.get("/api/devices")).status_code == 401
        await dispatcher.login("dispatcher-2", PASSWORD)
        assert (await dispatcher.http.get("/api/devices")).status_code == 403
        good = {"kind": "in-car", "cert_fingerprint": "ab" * 32, "vehicle": {"plate": "云A5H821"}}
        assert (await dispatcher.http.put("/api/devices/car-api-01", json=good)).status_code == 403
        retire = await dispatcher.http.post("/api/devices/car-api-01/retire", json={"kind": "in-car"})
        assert retire.status_code == 403

        bad = [
            ({**good, "cert_fingerprint": "xyz"}, 422),
            ({**good, "vehicle": None}, 422),  # an in-car unit without its vehicle
            ({**good, "site": {"name": "x", "lat": 25.0, "lon": 102.7}}, 422),
            ({**good, "extra": 1}, 422),
        ]
        for body, code in bad:
            assert (await admin.http.put("/api/devices/car-api-01", json=body)).status_code == code, body
        assert (await admin.http.put("/api/devices/Car_API", json=good)).status_code == 422
        assert (await admin.http.put("/api/devices/car-api-01", json=good)).status_code == 200
        kiosk_now = {"kind": "kiosk", "cert_fingerprint": "ab" * 32, "site": {"name": "x", "lat": 25.0, "lon": 102.7}}
        conflict = await admin.http.put("/api/devices/car-api-01", json=kiosk_now)
        assert conflict.status_code == 409 and "in-car" in conflict.json()["detail"]
        assert (await admin.http.get("/api/devices/nobody-01")).status_code == 404
        # Retiring an id the server never heard of records it, so that it stays cut off.
        retired = await admin.http.post("/api/devices/ghost-01/retire", json={"kind": "kiosk"})
        assert retired.status_code == 200 and json.loads(retired.text)["status"] == "retired"
    finally:
        await dispatcher.close()
        await admin.close()


def _device(**fields: object) -> Device:
    base: dict[str, object] = {"id": "car-1", "kind": "in-car", "status": "registered", "online": False}
    return Device(**{**base, **fields})


NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
ALERT = timedelta(minutes=30)


@pytest.mark.parametrize(
    ("device", "alert"),
    [
        (_device(online=True, last_seen=NOW - timedelta(minutes=1), state_since=NOW - timedelta(days=2)), False),
        # online as far as the broker knows, but silent for longer than the alert time
        (_device(online=True, last_seen=NOW - timedelta(minutes=31), state_since=NOW - timedelta(hours=5)), True),
        (_device(last_seen=NOW - timedelta(minutes=29), state_since=NOW - timedelta(minutes=29)), False),
        (_device(last_seen=NOW - timedelta(minutes=31), state_since=NOW - timedelta(minutes=31)), True),
        # registered, never heard from: overdue once the alert time has passed since registration
        (_device(registered_at=NOW - timedelta(minutes=10)), False),
        (_device(registered_at=NOW - timedelta(hours=2)), True),
        (_device(status="retired", last_seen=NOW - timedelta(days=9), state_since=NOW - timedelta(days=9)), False),
    ],
)
def test_the_offline_alert(device: Device, alert: bool) -> None:
    assert fleet_entry(device, NOW, ALERT)["alert"] is alert
