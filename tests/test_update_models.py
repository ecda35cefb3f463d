"""Plate models, signed apart from the firmware, taken by the firmware's update agent from the real
server's ``/updates/``: installed under models/VERSION without touching the firmware, loaded by the
reader after the restart (the config loader names them, the self-test's plate check reads the
reference plate with them), rolled back to the firmware's own models when the trial's self-test
keeps failing, and kept when it passes. Like firmware, models are taken only as a rollout offers
them, and models rolled back are not tried again until a new rollout offers them. No virtualenv is
made: the unit already runs the latest firmware, so only the models are new."""

from __future__ import annotations

import os
from pathlib import Path

from device.config import load_device_config
from device.selftest.plates import check_plate_reader
from device.update import releases
from protocol.messages import CheckStatus, UpdateStep
from provisioning.bundle import to_toml
from tests.conftest import RunningServer
from tests.devices import device_config
from tests.releases import published, release_base, station, trusted_root, update_server
from tests.services import Mosquitto
from tests.update_agents import HEALTH, Unit, note

__all__ = ["published", "release_base", "station", "update_server"]  # fixtures


async def test_plate_models_are_installed_loaded_rolled_back_and_kept_apart_from_the_firmware(
    update_server: RunningServer, station: Path, tmp_path: Path, broker: Mosquitto
) -> None:
    root, data = tmp_path / "opt-kuaichu", tmp_path / "data"
    root.mkdir()
    unit = Unit()
    agent = unit.agent(update_server, station, root, data, "0.2.0")
    await agent.check()  # signed, but no rollout offered them
    assert unit.restarts == 0 and not (root / "models").exists()
    agent.poke(5, "2026.12.1", "models")
    await agent.check()
    assert unit.steps() == [(5, "2026.12.1", UpdateStep.DOWNLOADED), (5, "2026.12.1", UpdateStep.INSTALLED)]
    assert unit.said[-1].kind == "models" and agent.in_health(HEALTH).update is None
    assert unit.restarts == 1 and note(agent).startswith("update: 车牌模型 2026.12.1 已安装")
    assert os.readlink(root / "current-models") == "models/2026.12.1"
    assert releases.read_state(root, releases.MODELS)["state"] == "trial"
    assert not (root / "current").exists() and releases.read_state(root) == {}  # the firmware untouched

    # After the restart: the unit's device.toml names no models, so the loader gives the reader the
    # release in use, and the self-test's plate check reads the reference plate with it.
    update = {"url": f"{update_server.url}/updates", "trusted_root": trusted_root(station), "releases_dir": root}
    toml = tmp_path / "device.toml"
    toml.write_text(to_toml(device_config(data, broker.port, "car-ota-01", update=update)))
    loaded = root / "models" / "2026.12.1" / "models"
    cfg = load_device_config(toml)
    assert cfg.plates.models_dir == loaded
    assert (await check_plate_reader(cfg.plates)).status is CheckStatus.PASS

    # The trial's self-test keeps failing: back to the firmware's own models, and the service restarted.
    unit.failing = "自检未通过 (self-test failed): plate_reader: the reference plate 云CD95211 read as no plate"
    agent = unit.agent(update_server, station, root, data, "0.2.0")
    await agent.trial()
    assert unit.restarts == 2 and not (root / "current-models").is_symlink()
    assert note(agent) == f"update: 车牌模型 2026.12.1 已回退 (rolled back): {unit.failing}"[:120]
    assert load_device_config(toml).plates.models_dir is None
    assert releases.read_state(root, releases.MODELS)["reason"] == unit.failing
    assert unit.steps()[-1] == (5, "2026.12.1", UpdateStep.ROLLED_BACK)
    assert agent.in_health(HEALTH).models_update == unit.said[-1]

    # Checked again in the same rollout (after the restart): rolled back there, not tried again.
    agent = unit.agent(update_server, station, root, data, "0.2.0")
    await agent.check()
    assert unit.restarts == 2 and not (root / "current-models").is_symlink()

    # Offered again by a new rollout (installed already: only the switch), healthy: kept, and loaded.
    agent.poke(6, "2026.12.1", "models")
    await agent.check()
    assert unit.restarts == 3 and unit.steps()[-1] == (6, "2026.12.1", UpdateStep.INSTALLED)
    unit.failing = None
    agent = unit.agent(update_server, station, root, data, "0.2.0")
    await agent.trial()
    assert note(agent) == "update: 车牌模型 2026.12.1 试运行正常，已保留 (healthy)"
    assert unit.steps()[-1] == (6, "2026.12.1", UpdateStep.HEALTHY)
    assert releases.read_state(root, releases.MODELS)["state"] == "healthy"
    assert load_device_config(toml).plates.models_dir == loaded
    await agent.check()  # nothing newer of either kind
    assert unit.restarts == 3
