"""Rollouts: a signed release (firmware, or plate models) offered to a group of units a batch at
a time, each unit's progress recorded, and the rollout paused by itself when too many of the units
that finished rolled back (docs/updates.md). Both kinds go the same way; the unit keeps an offer
and a status per kind (``health.update``, ``health.models_update``).

A unit takes only the release a rollout offered it (``update.check`` with the release and the
rollout on its cmd topic), so the units not yet told keep what they run. Each unit says how far it
got in its heartbeat (``health.update``: downloaded, installed, healthy, rolled back, refused or
failed, with the reason); every heartbeat repeats it, so the server acts on a change only once per
worker (``_seen``, per unit and kind) and a lost heartbeat loses nothing.

Whenever a unit finishes, and every ``SWEEP_S`` on each worker, the rollout is advanced: paused
when the units that rolled back (or whose install failed) exceed its share of those that finished,
done when every unit finished, else more units are told until ``batch`` are under way. A unit told
that made no progress for ``no_answer_s`` (offline since, say) is marked ``no_answer``: it frees
its slot, so one silent unit cannot stall the rollout, and does not count as a rollback. With
several workers the rollout's row is locked (PostgreSQL) while one of them decides.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.messages import Command, ReleaseKind, UpdateStatus, UpdateStep, utc_iso
from server.cases import now_utc
from server.db.models import Device
from server.db.rollouts import Rollout, RolloutUnit
from server.errors import Conflict, NotFound
from server.geo.fences import FenceSet
from server.outbound import Outward, command_each

logger = logging.getLogger(__name__)

SWEEP_S = 30.0  # units the broker did not take, and rollouts another worker changed, are looked at again
FINISHED = {UpdateStep.HEALTHY, UpdateStep.ROLLED_BACK, UpdateStep.REFUSED, UpdateStep.FAILED}
# What counts against the rollout's share: the unit did not end up running the release.
ROLLED_BACK = {UpdateStep.ROLLED_BACK, UpdateStep.FAILED}
NO_ANSWER = "no_answer"  # the server's step for a unit silent too long after it was told; frees its slot
SAID = {"firmware": "固件", "models": "车牌模型"}
SHOWN = 20  # rollouts on the fleet page, newest first


class State(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


def in_share(device_id: str, percent: float) -> bool:
    """Stable per unit: its place in [0, 100) by a hash of its id."""
    place = int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:8], "big") / 2**64 * 100
    return place < percent


def district_of(device: Device, fences: FenceSet) -> str | None:
    """A kiosk's surveyed site, else the last heartbeat's fix, in the district fences (WGS-84)."""
    where = device.site or (device.last_heartbeat or {}).get("position")
    if not where:
        return None
    fence = fences.locate(where["lon"], where["lat"], "WGS-84")
    return fence.adcode if fence is not None else None


def published(repository: Path | None, kind: ReleaseKind, release: str) -> str | None:
    """None when ``release`` of ``kind`` is signed and published in the served repository, else
    what to do about it. The target's name is the one ``kuaichu release sign`` gives it."""
    if repository is None:
        return (
            "服务器没有配置发布库，无法推送；请先配置发布库并运行 kuaichu release publish"
            " (no release repository served)"
        )
    name = f"{kind}/{'kuaichu' if kind == 'firmware' else 'plates'}-{release}.tar"
    if not (repository / "targets" / name).is_file():
        return (
            f"发布库中没有已签名的{SAID[kind]} {release}；请先在发布站运行 kuaichu release sign 和 publish "
            f"({kind} {release} is not published)"
        )
    return None


def _unit_json(unit: RolloutUnit) -> dict[str, Any]:
    return {
        "device_id": unit.device_id,
        "told_at": utc_iso(unit.told_at) if unit.told_at else None,
        "step": unit.step,
        "step_at": utc_iso(unit.step_at) if unit.step_at else None,
        "code": unit.code,
        "reason": unit.reason,
    }


def rollout_json(rollout: Rollout, units: list[RolloutUnit]) -> dict[str, Any]:
    counts = Counter(u.step or ("told" if u.told_at else "waiting") for u in units)
    return {
        "id": rollout.id,
        "release": rollout.release,
        "kind": rollout.kind,
        "group": {"kind": rollout.group_kind, "value": rollout.group_value},
        "state": rollout.state,
        "paused_reason": rollout.paused_reason,
        "max_rollback_pct": rollout.max_rollback_pct,
        "batch": rollout.batch,
        "created_by": rollout.created_by,
        "created_at": utc_iso(rollout.created_at),
        "changed_at": utc_iso(rollout.changed_at),
        "counts": {
            key: counts.get(key, 0) for key in ("waiting", "told", *(step.value for step in UpdateStep), NO_ANSWER)
        },
        "units": [_unit_json(u) for u in sorted(units, key=lambda u: u.device_id)],
    }


class Rollouts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbound: Outward, no_answer_s: float) -> None:
        self._sessions = sessions
        self._outbound = outbound
        self._no_answer = timedelta(seconds=no_answer_s)
        # Each unit's last status of each kind acted on by this worker (a unit reports both kinds).
        self._seen: dict[tuple[str, ReleaseKind], UpdateStatus] = {}
        self._advancing = asyncio.Lock()  # this worker's advances one at a time

    async def create(
        self,
        kind: ReleaseKind,
        release: str,
        group: tuple[str, str],
        device_ids: list[str],
        max_rollback_pct: float,
        batch: int,
        by: str,
    ) -> dict[str, Any]:
        """A new rollout of ``release`` (``kind``) to ``device_ids`` (``group``: how they were chosen); the
        first batch is told at once."""
        if not device_ids:
            raise Conflict("该范围内没有可推送的设备，请换一个范围 (no units in that group)")
        now = now_utc()
        async with self._sessions.begin() as session:
            rollout = Rollout(
                release=release,
                kind=kind,
                group_kind=group[0],
                group_value=group[1],
                max_rollback_pct=max_rollback_pct,
                batch=batch,
                state=State.ACTIVE.value,
                forgiven=0,
                created_by=by,
                created_at=now,
                changed_at=now,
            )
            session.add(rollout)
            await session.flush()
            session.add_all(RolloutUnit(rollout_id=rollout.id, device_id=d) for d in sorted(set(device_ids)))
            rollout_id = rollout.id
        logger.info("rollout %d: %s %s to %d units, by %s", rollout_id, kind, release, len(device_ids), by)
        await self.advance(rollout_id)
        return await self.get(rollout_id)

    async def get(self, rollout_id: int) -> dict[str, Any]:
        async with self._sessions() as session:
            rollout = await session.get(Rollout, rollout_id)
            if rollout is None:
                raise NotFound(f"没有第 {rollout_id} 号推送 (no rollout {rollout_id})")
            return rollout_json(rollout, list(await self._units(session, rollout_id)))

    async def latest(self) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            rollouts = (await session.scalars(select(Rollout).order_by(Rollout.id.desc()).limit(SHOWN))).all()
            units = (
                await session.scalars(select(RolloutUnit).where(RolloutUnit.rollout_id.in_([r.id for r in rollouts])))
            ).all()
        return [rollout_json(r, [u for u in units if u.rollout_id == r.id]) for r in rollouts]

    async def _units(self, session: AsyncSession, rollout_id: int) -> list[RolloutUnit]:
        return list((await session.scalars(select(RolloutUnit).where(RolloutUnit.rollout_id == rollout_id))).all())

    async def resume(self, rollout_id: int) -> dict[str, Any]:
        """A paused rollout goes on; the rollbacks so far no longer count against its share."""
        async with self._sessions.begin() as session:
            rollout = await session.get(Rollout, rollout_id, with_for_update=True)
            if rollout is None:
                raise NotFound(f"没有第 {rollout_id} 号推送 (no rollout {rollout_id})")
            if rollout.state != State.PAUSED:
                raise Conflict(f"第 {rollout_id} 号推送没有暂停，无需恢复 (rollout {rollout_id} is not paused)")
            units = await self._units(session, rollout_id)
            rollout.forgiven = sum(u.step in ROLLED_BACK for u in units)
            rollout.state, rollout.paused_reason, rollout.changed_at = State.ACTIVE.value, None, now_utc()
        logger.info("rollout %d resumed", rollout_id)
        await self.advance(rollout_id)
        return await self.get(rollout_id)

    async def cancel(self, rollout_id: int) -> dict[str, Any]:
        """No more units are told; those told already go on with what they have."""
        async with self._sessions.begin() as session:
            rollout = await session.get(Rollout, rollout_id, with_for_update=True)
            if rollout is None:
                raise NotFound(f"没有第 {rollout_id} 号推送 (no rollout {rollout_id})")
            if rollout.state not in (State.ACTIVE, State.PAUSED):
                raise Conflict(f"第 {rollout_id} 号推送已结束，无法取消 (rollout {rollout_id} has ended)")
            rollout.state, rollout.changed_at = State.CANCELLED.value, now_utc()
        logger.info("rollout %d cancelled", rollout_id)
        return await self.get(rollout_id)

    # --- the units' side ------------------------------------------------------------------------

    def news(self, statuses: list[tuple[str, UpdateStatus]]) -> dict[tuple[str, ReleaseKind], UpdateStatus]:
        """The statuses of a batch of heartbeats that this worker has not acted on, the newest per
        unit and kind: every heartbeat repeats them, so most batches have none, and the intake then
        neither takes its write lock nor reads the database."""
        fresh: dict[tuple[str, ReleaseKind], UpdateStatus] = {}
        for device_id, status in statuses:
            key = (device_id, status.kind or "firmware")
            if self._seen.get(key) != status:
                fresh[key] = status
        return fresh

    async def record(self, fresh: dict[tuple[str, ReleaseKind], UpdateStatus]) -> set[int]:
        """Each of ``news`` recorded against its rollout. Returns the rollouts that changed, for
        ``advance``: the intake records under its write lock, and tells the units after, not holding
        up reports."""
        touched: set[int] = set()
        async with self._sessions.begin() as session:
            for (device_id, _), status in fresh.items():
                if await self._record(session, device_id, status):
                    touched.add(status.rollout)
        self._seen.update(fresh)
        return touched

    async def _record(self, session: AsyncSession, device_id: str, status: UpdateStatus) -> bool:
        unit = await session.get(RolloutUnit, (status.rollout, device_id))
        rollout = await session.get(Rollout, status.rollout)
        said = (status.kind or "firmware", status.release)
        if unit is None or rollout is None or (rollout.kind, rollout.release) != said:
            logger.warning(
                "device %s: status for rollout %d (%s %s), which did not offer it that; ignored",
                device_id,
                status.rollout,
                status.kind or "firmware",
                status.release,
            )
            return False
        if unit.step_at is not None and status.at <= unit.step_at:
            return False  # the same step again, or an older heartbeat overtaken by a newer one
        unit.step, unit.step_at, unit.code, unit.reason = status.step.value, status.at, status.code, status.reason
        logger.info(
            "device %s: rollout %d %s %s %s%s",
            device_id,
            status.rollout,
            status.kind or "firmware",
            status.release,
            status.step.value,
            f" ({status.code or status.reason})" if status.reason else "",
        )
        return True

    async def advance(self, rollout_id: int) -> None:
        """Pause, finish, or tell more units, as the units' progress says."""
        async with self._advancing:
            told = await self._decide(rollout_id)
            if not told:
                return
            kind, release, units = told
            # Firmware is left unsaid: a unit on firmware older than models rollouts still reads the offer.
            said = None if kind == "firmware" else kind
            command = Command(type="update.check", release=release, kind=said, rollout=rollout_id)
            not_taken = await command_each(self._outbound, units, command)
        if not_taken:  # told again at the next sweep
            async with self._sessions.begin() as session:
                await session.execute(
                    update(RolloutUnit)
                    .where(RolloutUnit.rollout_id == rollout_id, RolloutUnit.device_id.in_(not_taken))
                    .values(told_at=None)
                )
            logger.warning("rollout %d: the broker did not take update.check for %d units", rollout_id, len(not_taken))

    async def _decide(self, rollout_id: int) -> tuple[ReleaseKind, str, list[str]] | None:
        """The release and the units to tell now, marked told in the same transaction."""
        now = now_utc()
        async with self._sessions.begin() as session:
            rollout = await session.get(Rollout, rollout_id, with_for_update=True)
            if rollout is None or rollout.state != State.ACTIVE:
                return None
            units = await self._units(session, rollout_id)
            self._give_up_on_silent(rollout_id, units, now)
            finished = sum(u.step in FINISHED for u in units)
            rolled_back = sum(u.step in ROLLED_BACK for u in units) - rollout.forgiven
            if rolled_back > 0 and rolled_back * 100 > rollout.max_rollback_pct * finished:
                rollout.state, rollout.changed_at = State.PAUSED.value, now
                rollout.paused_reason = (
                    f"已完成的 {finished} 台中 {rolled_back} 台回退或安装失败，超过上限 {rollout.max_rollback_pct:g}%"
                    f" ({rolled_back} of {finished} finished units rolled back or failed)"
                )
                logger.warning(
                    "rollout %d paused: %d of %d finished units rolled back", rollout_id, rolled_back, finished
                )
                return None
            waiting = sorted((u for u in units if u.told_at is None), key=lambda u: u.device_id)
            under_way = sum(u.told_at is not None and u.step not in FINISHED and u.step != NO_ANSWER for u in units)
            if not waiting and not under_way:
                rollout.state, rollout.changed_at = State.DONE.value, now
                logger.info("rollout %d done: %d units finished", rollout_id, finished)
                return None
            chosen = waiting[: max(0, rollout.batch - under_way)]
            for unit in chosen:
                unit.told_at = now
            kind: ReleaseKind = "models" if rollout.kind == "models" else "firmware"
            return (kind, rollout.release, [u.device_id for u in chosen]) if chosen else None

    def _give_up_on_silent(self, rollout_id: int, units: list[RolloutUnit], now: datetime) -> None:
        """Units told that said nothing new for ``no_answer_s`` stop holding a batch slot. Not a
        rollback: nothing says the release failed, and a heartbeat of theirs later still counts."""
        silent = [
            u
            for u in units
            if u.told_at is not None
            and u.step not in FINISHED
            and u.step != NO_ANSWER
            and max(u.told_at, u.step_at or u.told_at) + self._no_answer <= now
        ]
        hours = self._no_answer.total_seconds() / 3600
        for unit in silent:
            unit.step, unit.code = NO_ANSWER, None
            unit.reason = f"推送后 {hours:g} 小时没有进展（可能离线），不再占用批次名额 (no answer)"
        if silent:
            logger.warning("rollout %d: %d units gave no answer for %g h; slots freed", rollout_id, len(silent), hours)

    async def run(self) -> None:
        """Every ``SWEEP_S``: each active rollout advanced, whichever worker heard its units."""
        while True:
            await asyncio.sleep(SWEEP_S)
            try:
                async with self._sessions() as session:
                    active = (await session.scalars(select(Rollout.id).where(Rollout.state == State.ACTIVE))).all()
                for rollout_id in active:
                    await self.advance(rollout_id)
            except Exception:
                logger.exception("rollouts: the sweep failed; next time again")
