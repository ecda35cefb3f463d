"""The firmware around the update agent as the agent and plate-model tests drive it: a unit that is
busy or idle, passes or fails its self-test, and keeps each update status the agent changes."""

from __future__ import annotations

from pathlib import Path

from device.update.agent import UpdateAgent
from protocol.messages import Health, PartState, UpdateStatus, UpdateStep
from tests.conftest import RunningServer
from tests.devices import device_config
from tests.releases import trusted_root

HEALTH = Health(camera=PartState.OK, gnss=PartState.OK, audio=PartState.OK, storage_free_mb=1, firmware="x", uptime_s=1)


class Unit:
    """What the agent needs from the firmware around it, as the test drives it."""

    def __init__(self) -> None:
        self.busy = False
        self.failing: str | None = None  # the self-test's failure, or None when it passes
        self.restarts = 0
        self.said: list[UpdateStatus] = []  # each update status as the agent changed it

    async def healthy(self) -> str | None:
        return self.failing

    def restart(self) -> None:
        self.restarts += 1

    def agent(self, server: RunningServer, station: Path, root: Path, data: Path, running: str) -> UpdateAgent:
        update = {
            "url": f"{server.url}/updates",
            "trusted_root": trusted_root(station),
            "releases_dir": root,
            "trial_s": 10,
        }
        cfg = device_config(data, 1883, "car-ota-01", update=update)
        agent = UpdateAgent(cfg, running, lambda: self.busy, self.healthy, self.restart, lambda: self.changed(agent))
        return agent

    def changed(self, agent: UpdateAgent) -> None:
        health = agent.in_health(HEALTH)  # what the next heartbeat carries
        assert health.update == agent.statuses.get("firmware")
        assert health.models_update == agent.statuses.get("models")
        self.said.append(max(agent.statuses.values(), key=lambda status: status.at))

    def steps(self) -> list[tuple[int, str, UpdateStep]]:
        return [(status.rollout, status.release, status.step) for status in self.said]


def note(agent: UpdateAgent) -> str:
    return agent.in_health(HEALTH).notes[-1]
