"""The firmware itself, configured with ``[update]``, looks for a release when it starts and reports
a refusal where the fleet page shows it: the heartbeat's health notes, as ``/api/devices/ID``
gives them to the page. The release on offer is signed, but its timestamp has expired (a freeze)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.users import Role
from tests.cases import logged_in
from tests.conftest import RunningServer, add_user
from tests.devices import device_config, running_device
from tests.releases import published, release, release_base, station, trusted_root, update_server
from tests.services import Mosquitto
from tests.waiting import wait_for

__all__ = ["published", "release_base", "station", "update_server"]  # fixtures


async def test_a_refused_update_shows_on_the_fleet_page_with_its_reason(
    update_server: RunningServer, station: Path, broker: Mosquitto, tmp_path: Path
) -> None:
    assert release(station, "publish", "--to", str(tmp_path / "served"), "--timestamp-days=-1").returncode == 0
    await add_user(update_server.cfg, "fleet-admin", Role.ADMIN, [])
    update = {"url": f"{update_server.url}/updates", "trusted_root": trusted_root(station), "releases_dir": tmp_path}
    cfg = device_config(tmp_path / "car", broker.port, "car-ota-02", update=update)
    async with running_device(cfg):
        admin = await logged_in(update_server, "fleet-admin")

        async def notes() -> list[Any] | None:
            entry = (await admin.http.get("/api/devices/car-ota-02")).json()
            found = [n for n in (entry.get("health") or {}).get("notes", []) if n.startswith("update: ")]
            return found or None

        [note] = await wait_for("the refusal in the unit's health", notes, every_s=0.2, within_s=60)
        assert note.startswith("update: 拒绝 refused expired: 更新元数据已过期")
        await admin.close()
    assert not (tmp_path / "car" / "updates" / "downloads").exists() or not any(
        (tmp_path / "car" / "updates" / "downloads").iterdir()
    )
