"""An admin tells a group of units to look for a release now: the server sends ``update.check`` to
the units of the group only, each of those firmwares checks at once, and what it found shows in
its health on the fleet page. The release on offer has a frozen (expired) timestamp, so what the
told unit shows is its refusal; the unit not told has checked only at its start, before the
freeze, and shows nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.rollouts import in_share
from server.users import Role
from tests.cases import logged_in
from tests.conftest import RunningServer, add_user, make_server_config, start_server
from tests.devices import device_config, running_device
from tests.releases import release
from tests.services import Mosquitto
from tests.waiting import wait_for


def test_a_share_of_the_fleet_is_stable_and_grows_by_adding_units() -> None:
    ids = [f"car-{n:04}" for n in range(2000)]
    tenth = {i for i in ids if in_share(i, 10)}
    half = {i for i in ids if in_share(i, 50)}
    assert tenth < half
    assert 150 < len(tenth) < 250 and 900 < len(half) < 1100
    assert {i for i in ids if in_share(i, 10)} == tenth  # the same units every time
    assert all(in_share(i, 100) for i in ids)


async def test_only_the_units_told_check_now_and_their_outcome_shows_on_the_fleet_page(
    broker: Mosquitto, tmp_path: Path
) -> None:
    station = tmp_path / "station"
    for args in (
        ["init"],
        ["publish", "--to", str(tmp_path / "served")],
    ):
        done = release(station, *args)
        assert done.returncode == 0, done.stderr
    cfg = make_server_config(tmp_path / "server", broker.port)
    server: RunningServer = await start_server(
        cfg.model_copy(update={"updates": cfg.updates.model_copy(update={"repository": tmp_path / "served"})})
    )
    try:
        await add_user(server.cfg, "fleet-admin", Role.ADMIN, [])
        update = {
            "url": f"{server.url}/updates",
            "trusted_root": station / "release" / "repository" / "metadata" / "1.root.json",
            "releases_dir": tmp_path / "opt",
            "check_every_min": 7 * 24 * 60,
        }
        told, left = "car-ota-a", "car-ota-b"
        cars = {name: device_config(tmp_path / name, broker.port, name, update=update) for name in (told, left)}
        async with running_device(cars[told]), running_device(cars[left]):
            admin = await logged_in(server, "fleet-admin")

            async def checked_at_start() -> bool:  # each has read the signed latest.json once
                return all((c.device.data_dir / "updates" / "targets" / "latest.json").exists() for c in cars.values())

            await wait_for("both units' first check", checked_at_start, within_s=60)

            async def notes(name: str) -> list[Any]:
                entry = (await admin.http.get(f"/api/devices/{name}")).json()
                return [n for n in (entry.get("health") or {}).get("notes", []) if n.startswith("update: ")]

            async def both_listed() -> bool:
                listed = (await admin.http.get("/api/devices")).json()["devices"]
                return {told, left} <= {d["id"] for d in listed if d.get("online")}

            await wait_for("both units online", both_listed, every_s=0.2)
            assert await notes(told) == await notes(left) == []

            freeze = release(station, "publish", "--to", str(tmp_path / "served"), "--timestamp-days=-1")
            assert freeze.returncode == 0, freeze.stderr
            answer = await admin.http.post("/api/updates/announce", json={"devices": [told]})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"told": [told], "not_taken": []}

            async def refused() -> list[Any]:
                return await notes(told)

            [note] = await wait_for("the told unit's refusal on the fleet page", refused, every_s=0.2, within_s=60)
            assert note.startswith("update: 拒绝 refused expired: 更新元数据已过期")
            assert await notes(left) == []  # its heartbeats go on, without a check

            unknown = await admin.http.post("/api/updates/announce", json={"devices": ["car-nowhere"]})
            assert unknown.status_code == 409 and "car-nowhere" in unknown.json()["detail"]
            both = await admin.http.post("/api/updates/announce", json={"percent": 10, "devices": [told]})
            assert both.status_code == 422 and both.json()["code"] == "one_group"
            assert both.json()["detail"].startswith("请只选一种范围")
            everyone = await admin.http.post("/api/updates/announce", json={"percent": 100})
            assert set(everyone.json()["told"]) == {told, left}
            await admin.close()
    finally:
        await server.stop()
