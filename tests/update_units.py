"""Units in a rollout as the server sees them, for the rollout tests: MQTT clients with each
unit's own certificate that heartbeat with their update statuses (``health.update`` for firmware,
``health.models_update`` for plate models, as the firmware's agent says them) and collect the
commands on their cmd topic; and a repository in which a firmware (and plate models) are signed and
published (their bytes are never installed by these units)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from protocol.messages import (
    Command,
    Health,
    Heartbeat,
    PartState,
    ReleaseKind,
    UpdateStatus,
    UpdateStep,
    decode,
    encode,
)
from protocol.topics import Channel, device_topic
from provisioning import release
from server.cases import now_utc
from server.config import ServerConfig
from server.db.engine import make_engine, make_sessionmaker
from server.db.rollouts import RolloutUnit
from tests import pki
from tests.wire import mqtt_client

PASSPHRASE = b"rollout test passphrase"


def signed_firmware(folder: Path, version: str, models: str | None = None) -> Path:
    """``folder/served``: a repository in which firmware ``version`` (and plate models ``models``)
    are signed and published."""
    station = folder / "station"
    release.init(station, PASSPHRASE)
    release.sign(station, PASSPHRASE, "firmware", version, f"firmware {version}, signed for a rollout test".encode())
    if models is not None:
        release.sign(station, PASSPHRASE, "models", models, f"models {models}, signed for a rollout test".encode())
    release.publish(station, PASSPHRASE, folder / "served")
    return folder / "served"


class Unit:
    """A unit as the rollout sees it: heartbeats with its update status, commands on its cmd topic."""

    def __init__(self, device_id: str, client: Any) -> None:
        self.id = device_id
        self.client = client
        self.commands: asyncio.Queue[Command] = asyncio.Queue()
        self.status: UpdateStatus | None = None
        self.models_status: UpdateStatus | None = None

    async def beat(self) -> None:
        health = Health(
            camera=PartState.OK,
            gnss=PartState.OK,
            audio=PartState.OK,
            storage_free_mb=900,
            firmware="0.2.0",
            uptime_s=60,
            update=self.status,
            models_update=self.models_status,
        )
        beat = Heartbeat(at=datetime.now(UTC), device_kind="in-car", app_state="idle", outbox_pending=0, health=health)
        await self.client.publish(device_topic(self.id, Channel.HEARTBEAT), encode(beat), qos=0)

    async def step(
        self,
        rollout: int,
        step: UpdateStep,
        code: str | None = None,
        reason: str | None = None,
        release: str = "0.3.0",
        kind: ReleaseKind = "firmware",
    ) -> None:
        status = UpdateStatus(
            rollout=rollout, release=release, kind=kind, step=step, at=datetime.now(UTC), code=code, reason=reason
        )
        if kind == "models":
            self.models_status = status
        else:
            self.status = status
        await self.beat()


@asynccontextmanager
async def units(port: int, ids: list[str]) -> AsyncIterator[dict[str, Unit]]:
    async with AsyncExitStack() as stack:
        found: dict[str, Unit] = {}
        for device_id in ids:
            client = await stack.enter_async_context(mqtt_client(port, device_id, pki.current().device_tls(device_id)))
            await client.subscribe(device_topic(device_id, Channel.CMD), qos=1)
            found[device_id] = unit = Unit(device_id, client)

            async def collect(unit: Unit = unit) -> None:
                async for message in unit.client.messages:
                    unit.commands.put_nowait(decode(Command, message.payload))

            task = asyncio.create_task(collect())
            stack.callback(task.cancel)
        yield found


def told(all_units: dict[str, Unit]) -> dict[str, Command]:
    """The update.check each unit received since the last look."""
    got = {}
    for unit in all_units.values():
        while not unit.commands.empty():
            got[unit.id] = unit.commands.get_nowait()
    return got


async def told_long_ago(cfg: ServerConfig, rollout: int, device_id: str) -> None:
    """As if ``device_id`` was told of ``rollout`` just over ``no_answer_h`` ago and said nothing since."""
    engine = make_engine(cfg.database_url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await session.execute(
                update(RolloutUnit)
                .where(RolloutUnit.rollout_id == rollout, RolloutUnit.device_id == device_id)
                .values(told_at=now_utc() - timedelta(hours=cfg.updates.no_answer_h, minutes=1))
            )
    finally:
        await engine.dispose()
