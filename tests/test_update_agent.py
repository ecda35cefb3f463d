"""The firmware's update agent against the real server's ``/updates/`` and a unit's disk: it refuses
frozen metadata and says so in its health notes, takes no firmware a rollout did not offer it,
holds the download while the unit is busy, installs the new release (a real virtualenv) and has the
service restarted; started again on the new release, it rolls back when the self-test keeps failing
for ``trial_s`` and keeps the release when it passes. Each step is the heartbeat's ``health.update``
for the offering rollout, kept on disk across the restarts."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from device.update import releases
from protocol.messages import UpdateStep
from provisioning.release import firmware_archive
from tests.conftest import RunningServer
from tests.releases import published, release, release_base, station, update_server, wheelhouse
from tests.services import Mosquitto
from tests.update_agents import HEALTH, Unit, note
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(600)  # two real installs into virtualenvs
__all__ = ["published", "release_base", "station", "update_server"]  # fixtures


async def test_the_agent_waits_for_an_idle_unit_installs_and_keeps_only_a_healthy_release(
    update_server: RunningServer, station: Path, release_base: Path, tmp_path: Path, broker: Mosquitto
) -> None:
    root, data = tmp_path / "opt-kuaichu", tmp_path / "data"
    root.mkdir()
    _, first = firmware_archive(wheelhouse(release_base, "0.1.0", tmp_path / "wh-0.1.0"))
    first_tar = tmp_path / "0.1.0.tar"
    first_tar.write_bytes(first)
    install = [releases.__file__, "install", "--root", str(root), "--archive", str(first_tar), "--version", "0.1.0"]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-I", *install, "--python", sys.executable)
    assert await proc.wait() == 0
    unit = Unit()

    # Frozen metadata: refused, said in the health notes, nothing downloaded; once rollout 1 has
    # offered 0.2.0, the refusal is that rollout's step too.
    assert release(station, "publish", "--to", str(tmp_path / "served"), "--timestamp-days=-1").returncode == 0
    agent = unit.agent(update_server, station, root, data, "0.1.0")
    await agent.check()
    assert note(agent).startswith("update: 拒绝 refused expired: 更新元数据已过期")
    assert unit.restarts == 0 and os.readlink(root / "current") == "releases/0.1.0"
    assert agent.in_health(HEALTH).update is None and unit.said == []  # no rollout offered anything
    agent.poke(1, "0.2.0")
    await agent.check()
    [refused] = unit.said
    assert (refused.rollout, refused.release, refused.step, refused.code) == (1, "0.2.0", "refused", "expired")
    assert refused.reason is not None and refused.reason.startswith("更新元数据已过期")
    assert release(station, "publish", "--to", str(tmp_path / "served")).returncode == 0

    # A unit no rollout offered it to finds firmware 0.2.0 (and the plate models) signed and
    # leaves them alone.
    other, other_root = Unit(), tmp_path / "opt-unoffered"
    other_root.mkdir()
    unoffered = other.agent(update_server, station, other_root, tmp_path / "data-unoffered", "0.1.0")
    await unoffered.check()
    assert (tmp_path / "data-unoffered" / "updates" / "targets" / "latest.json").exists()
    assert releases.current(other_root) is None and not (other_root / "releases" / "0.2.0").exists()
    assert releases.current(other_root, releases.MODELS) is None and other.restarts == 0
    assert other.said == [] and unoffered.in_health(HEALTH).update is None

    # A report is on: the release (offered by rollout 1, as the unit wrote down before this start)
    # is found but not fetched until the unit is free (a download that a report interrupts stops
    # and resumes: tests/test_update_fetch.py).
    unit.busy = True
    agent = unit.agent(update_server, station, root, data, "0.1.0")
    check = asyncio.create_task(agent.check())

    async def found() -> bool:  # the signed latest.json read: the agent knows of 0.2.0
        return (data / "updates" / "targets" / "latest.json").exists()

    await wait_for("the agent to find the release", found, within_s=60)
    await asyncio.sleep(1)
    assert not check.done() and unit.restarts == 0
    assert not list((data / "updates" / "downloads").glob("*"))
    unit.busy = False
    await asyncio.wait_for(check, 300)
    assert unit.restarts == 1
    assert note(agent).startswith("update: 0.2.0 已安装")
    assert os.readlink(root / "current") == "releases/0.2.0"
    assert releases.read_state(root)["state"] == "trial"
    assert unit.steps()[1:] == [(1, "0.2.0", UpdateStep.DOWNLOADED), (1, "0.2.0", UpdateStep.INSTALLED)]

    # Started again on 0.2.0, its self-test keeps failing: back to 0.1.0 with the reason.
    unit.failing = "自检未通过：camera (self-test failed)"
    agent = unit.agent(update_server, station, root, data, "0.2.0")
    await agent.trial()
    assert unit.restarts == 2
    assert os.readlink(root / "current") == "releases/0.1.0"
    assert releases.read_state(root)["reason"] == unit.failing
    assert note(agent) == f"update: 0.2.0 已回退 (rolled back): {unit.failing}"[:120]
    assert unit.said[-1].step == UpdateStep.ROLLED_BACK and unit.said[-1].reason == unit.failing

    # Back on 0.1.0, offered again by rollout 2 (installed already), and this time healthy: kept.
    agent = unit.agent(update_server, station, root, data, "0.1.0")
    agent.poke(2, "0.2.0")
    await agent.check()
    assert unit.said[-3].step == UpdateStep.ROLLED_BACK and unit.said[-3].rollout == 1
    assert unit.restarts == 3 and os.readlink(root / "current") == "releases/0.2.0"
    unit.failing = None
    agent = unit.agent(update_server, station, root, data, "0.2.0")
    await agent.trial()
    assert unit.restarts == 3
    assert releases.read_state(root)["state"] == "healthy"
    assert note(agent) == "update: 0.2.0 试运行正常，已保留 (healthy)"
    assert unit.steps()[-3:] == [
        (2, "0.2.0", UpdateStep.DOWNLOADED),
        (2, "0.2.0", UpdateStep.INSTALLED),
        (2, "0.2.0", UpdateStep.HEALTHY),
    ]

    # Offered by rollout 3 the firmware it already runs: healthy at once, without installing it again.
    agent.poke(3, "0.2.0")
    await agent.check()
    assert unit.steps()[-1] == (3, "0.2.0", UpdateStep.HEALTHY)
