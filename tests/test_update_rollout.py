"""A staged rollout on the real server, broker and database (SQLite and PostgreSQL): units in MQTT
clients with their own certificates, saying their progress in their heartbeats as the firmware
does. Only the group is told, a batch at a time; the rollout pauses by itself once rollbacks pass
its share, tells nobody more while paused, goes on when resumed and ends when every unit finished;
a cancelled rollout tells nobody more. Plate models roll out the same way (``kind`` models, the
units' ``health.models_update``), and a unit told that says nothing for ``no_answer_h`` frees its
batch slot as "no answer", not as a rollback. The firmware's own side (what it reports at each
step, and that it takes only what was offered) is tests/test_update_agent.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from protocol.messages import Command, UpdateStatus, UpdateStep
from server.db.engine import make_engine, make_sessionmaker, upgrade_schema
from server.live_feed import CaseHub
from server.outbound import Outbound
from server.rollouts import Rollouts
from server.users import Role
from tests.cases import logged_in
from tests.conftest import RunningServer, add_user, make_server_config, start_server
from tests.services import Mosquitto
from tests.update_units import signed_firmware, told, told_long_ago, units
from tests.waiting import wait_for
from tests.wire import Console

GROUP = [f"car-roll-{n}" for n in range(1, 7)]
OUTSIDER = "car-roll-9"


@pytest.fixture(params=["sqlite", "postgresql"])
async def rollout_server(
    request: pytest.FixtureRequest, tmp_path: Path, broker: Mosquitto
) -> AsyncIterator[RunningServer]:
    """A worker serving a repository in which firmware 0.3.0 and plate models 2026.12.2 are signed
    and published."""
    served = signed_firmware(tmp_path, "0.3.0", models="2026.12.2")
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    cfg = make_server_config(tmp_path / "server", broker.port, database_url=url)
    cfg = cfg.model_copy(update={"updates": cfg.updates.model_copy(update={"repository": served})})
    server = await start_server(cfg)
    await add_user(cfg, "fleet-admin", Role.ADMIN, [])
    yield server
    await server.stop()


async def state_of(admin: Console, rollout_id: int) -> dict[str, Any]:
    listed: list[dict[str, Any]] = (await admin.http.get("/api/updates/rollouts")).json()["rollouts"]
    [found] = [r for r in listed if r["id"] == rollout_id]
    return found


async def test_a_staged_rollout_pauses_after_rollbacks_and_goes_on_when_resumed(
    rollout_server: RunningServer, broker: Mosquitto
) -> None:
    admin = await logged_in(rollout_server, "fleet-admin")
    async with units(broker.port, [*GROUP, OUTSIDER]) as fleet:
        for unit in fleet.values():
            await unit.beat()

        async def known() -> bool:
            listed = (await admin.http.get("/api/devices")).json()["devices"]
            return {*GROUP, OUTSIDER} <= {d["id"] for d in listed}

        await wait_for("the server to know the units", known)

        unsigned = await admin.http.post("/api/updates/rollouts", json={"release": "0.9.0", "devices": GROUP})
        assert unsigned.status_code == 409 and "没有已签名的固件 0.9.0" in unsigned.json()["detail"]
        body = {"release": "0.3.0", "devices": GROUP, "batch": 2, "max_rollback_pct": 20}
        created = await admin.http.post("/api/updates/rollouts", json=body)
        assert created.status_code == 200, created.text
        rollout = created.json()
        rid = rollout["id"]
        assert rollout["state"] == "active" and rollout["created_by"] == "fleet-admin"
        assert rollout["counts"]["told"] == 2 and rollout["counts"]["waiting"] == 4

        async def heard(ids: set[str]) -> dict[str, Command]:
            got: dict[str, Command] = {}

            async def all_heard() -> bool:
                got.update(told(fleet))
                return ids <= got.keys()

            await wait_for(f"update.check for {sorted(ids)}", all_heard)
            return got

        first = await heard({"car-roll-1", "car-roll-2"})
        assert set(first) == {"car-roll-1", "car-roll-2"}  # the first batch, and nobody else
        # Firmware is left unsaid in the offer: units on firmware older than models rollouts read it too.
        assert {(c.type, c.release, c.kind, c.rollout) for c in first.values()} == {
            ("update.check", "0.3.0", None, rid)
        }

        # The first batch takes it: the next two are told only as those finish.
        for step in (UpdateStep.DOWNLOADED, UpdateStep.INSTALLED, UpdateStep.HEALTHY):
            await fleet["car-roll-1"].step(rid, step)
        await fleet["car-roll-2"].step(rid, UpdateStep.HEALTHY)
        second = await heard({"car-roll-3", "car-roll-4"})
        assert set(second) == {"car-roll-3", "car-roll-4"}

        # One of the next two rolls back: 1 of 3 finished is over 20 %, and the rollout stops.
        reason = "自检未通过 (self-test failed): camera: no frame"
        await fleet["car-roll-4"].step(rid, UpdateStep.ROLLED_BACK, reason=reason)

        async def paused() -> dict[str, Any] | None:
            found = await state_of(admin, rid)
            return found if found["state"] == "paused" else None

        stopped = await wait_for("the rollout to pause by itself", paused)
        assert "3 台中 1 台回退" in stopped["paused_reason"] and "20%" in stopped["paused_reason"]
        # The unit still under way finishes; paused, the rollout tells nobody for it.
        await fleet["car-roll-3"].step(rid, UpdateStep.HEALTHY)

        async def recorded() -> dict[str, Any] | None:
            found = await state_of(admin, rid)
            return found if found["counts"]["healthy"] == 3 else None

        stopped = await wait_for("car-roll-3's step recorded", recorded)
        assert stopped["state"] == "paused"
        assert stopped["counts"] == {
            "waiting": 2, "told": 0, "downloaded": 0, "installed": 0,
            "healthy": 3, "rolled_back": 1, "refused": 0, "failed": 0, "no_answer": 0,
        }  # fmt: skip
        by_unit = {u["device_id"]: u for u in stopped["units"]}
        assert by_unit["car-roll-4"]["reason"] == reason and by_unit["car-roll-4"]["step"] == "rolled_back"
        assert by_unit["car-roll-5"]["told_at"] is None and by_unit["car-roll-6"]["told_at"] is None
        # Heartbeats repeat the statuses; nothing more is told while paused.
        for unit in fleet.values():
            await unit.beat()
        await asyncio.sleep(2.5)  # two of the server's status gatherings
        assert told(fleet) == {}
        assert (await state_of(admin, rid))["state"] == "paused"

        # Resumed: the rollback so far no longer counts; the last two are told and finish.
        resumed = await admin.http.post(f"/api/updates/rollouts/{rid}/resume")
        assert resumed.status_code == 200 and resumed.json()["state"] == "active"
        assert set(await heard({"car-roll-5", "car-roll-6"})) == {"car-roll-5", "car-roll-6"}
        await fleet["car-roll-5"].step(rid, UpdateStep.HEALTHY)
        refusal = "更新元数据已过期（冻结攻击，或发布未续签），已拒绝；请在发布站运行 kuaichu release publish"
        await fleet["car-roll-6"].step(rid, UpdateStep.REFUSED, code="expired", reason=refusal)

        async def done() -> dict[str, Any] | None:
            found = await state_of(admin, rid)
            return found if found["state"] == "done" else None

        ended = await wait_for("the rollout to end", done)
        assert ended["counts"]["healthy"] == 4 and ended["counts"]["refused"] == 1
        assert {u["device_id"]: u["code"] for u in ended["units"]}["car-roll-6"] == "expired"
        assert (await admin.http.post(f"/api/updates/rollouts/{rid}/cancel")).status_code == 409
        assert OUTSIDER not in {u["device_id"] for u in ended["units"]}
        assert fleet[OUTSIDER].commands.empty()  # never told, in any of it

        # Cancelled: the unit told stays told, the others are never told.
        second_rollout = {"release": "0.3.0", "devices": ["car-roll-4", OUTSIDER], "batch": 1}
        other = (await admin.http.post("/api/updates/rollouts", json=second_rollout)).json()
        cancelled = await admin.http.post(f"/api/updates/rollouts/{other['id']}/cancel")
        assert cancelled.json()["state"] == "cancelled" and cancelled.json()["counts"]["waiting"] == 1
        assert (await admin.http.post(f"/api/updates/rollouts/{other['id']}/resume")).status_code == 409
        assert set(await heard({"car-roll-4"})) == {"car-roll-4"}
        assert fleet[OUTSIDER].commands.empty()

        # Plate models: the same rollout, of kind models; the first batch is told with the kind.
        body = {"release": "2026.12.1", "kind": "models", "devices": GROUP[:3], "batch": 2}
        unsigned = await admin.http.post("/api/updates/rollouts", json=body)
        assert unsigned.status_code == 409 and "没有已签名的车牌模型 2026.12.1" in unsigned.json()["detail"]
        models = (await admin.http.post("/api/updates/rollouts", json={**body, "release": "2026.12.2"})).json()
        mid = models["id"]
        assert models["kind"] == "models" and models["counts"]["told"] == 2
        first = await heard({"car-roll-1", "car-roll-2"})
        assert {(c.release, c.kind, c.rollout) for c in first.values()} == {("2026.12.2", "models", mid)}

        # car-roll-1 went offline once told: a day without a word and it stops holding its slot.
        await told_long_ago(rollout_server.cfg, mid, "car-roll-1")
        await fleet["car-roll-2"].step(
            mid, UpdateStep.DOWNLOADED, release="2026.12.2", kind="models"
        )  # the rollout looks again
        assert set(await heard({"car-roll-3"})) == {"car-roll-3"}  # in car-roll-1's freed slot
        silent = await state_of(admin, mid)
        assert silent["state"] == "active" and silent["counts"]["no_answer"] == 1
        assert silent["counts"]["rolled_back"] == 0 and silent["counts"]["healthy"] == 0
        by_unit = {u["device_id"]: u for u in silent["units"]}
        assert by_unit["car-roll-1"]["step"] == "no_answer" and "24 小时没有进展" in by_unit["car-roll-1"]["reason"]
        assert by_unit["car-roll-2"]["step"] == "downloaded"

        # Back online, car-roll-1's own word replaces "no answer"; all finish and the rollout ends.
        for device_id in ("car-roll-1", "car-roll-2", "car-roll-3"):
            await fleet[device_id].step(mid, UpdateStep.HEALTHY, release="2026.12.2", kind="models")

        async def models_done() -> dict[str, Any] | None:
            found = await state_of(admin, mid)
            return found if found["state"] == "done" else None

        ended = await wait_for("the models rollout to end", models_done)
        assert ended["counts"]["healthy"] == 3 and ended["counts"]["no_answer"] == 0
    await admin.close()


async def test_heartbeats_repeating_both_kinds_are_not_read_again(tmp_path: Path) -> None:
    """A unit reports a firmware and a models status in every heartbeat: once acted on, neither
    reaches the database again until it changes (the intake's status writer reads ``news`` first)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'kuaichu.db'}"
    await upgrade_schema(url)
    engine = make_engine(url)
    rollouts = Rollouts(make_sessionmaker(engine), Outbound([], CaseHub()), 3600)
    at = datetime.now(UTC)
    firmware = UpdateStatus(rollout=1, release="0.3.0", step=UpdateStep.DOWNLOADED, at=at)
    models = UpdateStatus(rollout=2, release="2026.12.2", kind="models", step=UpdateStep.DOWNLOADED, at=at)
    beat = [("car-roll-1", firmware), ("car-roll-1", models)]
    try:
        assert list(rollouts.news(beat).values()) == [firmware, models]
        await rollouts.record(rollouts.news(beat))  # no such rollouts here: ignored, but acted on
        assert rollouts.news(beat) == {}
        assert rollouts.news(beat * 3) == {}
        installed = models.model_copy(update={"step": UpdateStep.INSTALLED})
        assert rollouts.news([("car-roll-1", firmware), ("car-roll-1", installed)]) == {
            ("car-roll-1", "models"): installed
        }
    finally:
        await engine.dispose()
