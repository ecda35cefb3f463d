"""The running firmware's side of updates: look for a signed release on a schedule or when the
server asks, download it only while the unit is idle, install it beside the running release, have
the service restarted, and on the next start keep the release only if it proves healthy. Plate
models are released apart from the firmware and go the same way (``releases.MODELS``); the reader
loads them after the restart (``device.config.load_device_config``).

What the agent did last is one line among the heartbeat's health notes (``in_health``), so that
the fleet page shows each unit's update: installed and on trial, healthy, rolled back and why, or
refused and why.

A release, firmware or models, is taken only when a rollout offered it (``update.check`` with the
release, its kind and the rollout): a newer release that is signed but not offered to this unit is
left alone, so the server decides which units take a release and when (docs/updates.md). Each kind
has its own offer and progress (downloaded, installed, healthy, rolled back, refused, failed): the
heartbeat's ``health.update`` (firmware) and ``health.models_update``; they are kept on disk, so the
rollback a restart brings is still said after it, and a release rolled back is not taken again
until a new rollout offers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from tuf.api import exceptions as tuf_errors

from device.config import DeviceConfig
from device.update import releases
from device.update.fetch import Fetcher, Offer, Paused, version_key
from device.update.refusals import Refusal, UpdateRefused
from protocol.messages import Health, ReleaseKind, UpdateStatus, UpdateStep

logger = logging.getLogger(__name__)

IDLE_POLL_S = 5.0  # how often a paused download looks whether the unit is free again
HEALTH_POLL_S = 5.0  # how often a release on trial is checked until it passes or its time is up
# Per kind, in the agent's data folder: the rollout and release the server last offered, and the
# unit's progress with it as its heartbeats say it (the firmware's names are those older units wrote).
OFFER = {"firmware": "offer.json", "models": "offer-models.json"}
STATUS = {"firmware": "status.json", "models": "status-models.json"}
# A release that got this far in a rollout is not taken again in the same rollout (a rollback would
# otherwise install it again at the next check); a refusal may pass later (metadata published again).
SETTLED = (UpdateStep.INSTALLED, UpdateStep.HEALTHY, UpdateStep.ROLLED_BACK, UpdateStep.FAILED)


def _write(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(data)
    os.replace(partial, path)


class UpdateAgent:
    def __init__(
        self,
        cfg: DeviceConfig,
        running: str,
        busy: Callable[[], bool],
        healthy: Callable[[], Awaitable[str | None]],
        restart: Callable[[], None],
        changed: Callable[[], None],
    ) -> None:
        """``busy``: a report or a call is on (read from the download's thread too); ``healthy``:
        None when the link is up and the self-test passes, else why not; ``restart``: have the
        service started again (the new ``current`` is what starts); ``changed``: the progress
        changed, send a heartbeat now."""
        assert cfg.update.url is not None
        self.cfg = cfg.update
        self.tag = f"device {cfg.device.id}"
        self.running = running
        max_bytes = int(cfg.update.max_download_mb * 2**20)
        self.fetcher = Fetcher(cfg.update.url, cfg.update.trusted_root, cfg.device.data_dir / "updates", max_bytes)
        self._busy = busy
        self._healthy = healthy
        self._restart = restart
        self._changed = changed
        self._poke = asyncio.Event()
        self.note: str | None = None
        self.folder = cfg.device.data_dir / "updates"
        self.offers: dict[ReleaseKind, tuple[int, str]] = {}  # kind -> (rollout, release) offered last
        self.statuses: dict[ReleaseKind, UpdateStatus] = {}
        self._offered: dict[ReleaseKind, tuple[int, str]] = {}  # from commands, not yet written down
        self._loaded = False

    def poke(self, rollout: int | None = None, release: str | None = None, kind: ReleaseKind = "firmware") -> None:
        """``update.check`` from the server: look now rather than at the next scheduled time; with
        a release, that release of ``kind`` is offered to this unit by that rollout."""
        if rollout is not None and release is not None:
            self._offered[kind] = (rollout, release)
        self._poke.set()

    def in_health(self, health: Health) -> Health:
        if self.note is not None:
            health = health.model_copy(update={"notes": [*health.notes[:7], f"update: {self.note}"[:120]]})
        if not self.statuses:
            return health
        return health.model_copy(
            update={"update": self.statuses.get("firmware"), "models_update": self.statuses.get("models")}
        )

    async def _load(self) -> None:
        """The offer and the progress a previous start wrote down, once."""
        if self._loaded:
            return
        self._loaded = True

        def read(kind: ReleaseKind) -> tuple[tuple[int, str] | None, UpdateStatus | None]:
            offer, status = self.folder / OFFER[kind], self.folder / STATUS[kind]
            got = json.loads(offer.read_text()) if offer.exists() else None
            return (
                (int(got["rollout"]), str(got["release"])) if got else None,
                UpdateStatus.model_validate_json(status.read_text()) if status.exists() else None,
            )

        for kind in map(_kind, releases.TRACKS.values()):
            try:
                offer, status = await asyncio.to_thread(read, kind)
            except (OSError, ValueError, KeyError) as exc:  # unreadable: as if nothing was offered yet
                logger.warning(
                    "%s: the last %s offer could not be read (%s); waiting for a new one", self.tag, kind, exc
                )
                continue
            if offer is not None:
                self.offers[kind] = offer
            if status is not None:
                self.statuses[kind] = status

    async def _take_offers(self) -> None:
        for kind, offered in list(self._offered.items()):
            del self._offered[kind]
            if offered == self.offers.get(kind):
                continue
            self.offers[kind] = offered
            rollout, release = offered
            said = json.dumps({"rollout": rollout, "release": release})
            await asyncio.to_thread(_write, self.folder / OFFER[kind], said)
            logger.info("%s: %s %s offered by rollout %d", self.tag, kind, release, rollout)

    def _reached(self, kind: ReleaseKind, *steps: UpdateStep) -> bool:
        """The offered release of ``kind`` got to one of ``steps`` in the offering rollout."""
        status, offer = self.statuses.get(kind), self.offers.get(kind)
        return (
            offer is not None
            and status is not None
            and (status.rollout, status.release) == offer
            and status.step in steps
        )

    async def _step(
        self, kind: ReleaseKind, step: UpdateStep, release: str, code: str | None = None, reason: str | None = None
    ) -> None:
        """The progress with the offered ``release`` of ``kind``, in the heartbeats from now on
        (none when no rollout offered it: a release installed by hand is nobody's rollout)."""
        offer = self.offers.get(kind)
        if offer is None or offer[1] != release:
            return
        status = UpdateStatus(
            rollout=offer[0],
            release=release,
            kind=None if kind == "firmware" else kind,  # as firmware before models rollouts said it
            step=step,
            at=datetime.now(UTC),
            code=code,
            reason=reason[:120] if reason else None,
        )
        self.statuses[kind] = status
        await asyncio.to_thread(_write, self.folder / STATUS[kind], status.model_dump_json())
        self._changed()

    async def run(self) -> None:
        """Never ends and never fails: a fault here must not stop the unit reporting."""
        try:
            await self.trial()
        except Exception:
            logger.exception("%s: the trial of release %s could not be judged", self.tag, self.running)
        while True:
            try:
                await self.check()
            except Exception:
                logger.exception("%s: update check failed", self.tag)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.cfg.check_every_min * 60)
            self._poke.clear()

    def _running(self) -> dict[str, str | None]:
        """The release of each kind in use (file reads: run it in a thread)."""
        return {
            track.kind: self.running if track is releases.FIRMWARE else releases.current(self.cfg.releases_dir, track)
            for track in releases.TRACKS.values()
        }

    def _states(self) -> dict[ReleaseKind, dict[str, object]]:
        """What the last update of each kind did (file reads: run it in a thread)."""
        return {_kind(track): releases.read_state(self.cfg.releases_dir, track) for track in releases.TRACKS.values()}

    async def trial(self) -> None:
        """A release on trial (firmware or models) is kept once healthy within ``trial_s``, else
        the previous one is put back."""
        root = self.cfg.releases_dir
        await self._load()
        states = await asyncio.to_thread(self._states)
        running = await asyncio.to_thread(self._running)
        for kind, (_, offered) in list(self.offers.items()):
            if self._reached(kind, UpdateStep.INSTALLED):
                # Put back at boot (releases.py guard: it kept failing to start), so never judged here.
                state = states[kind]
                if state.get("state") == "rolled_back" and state.get("release") == offered:
                    await self._step(
                        kind, UpdateStep.ROLLED_BACK, offered, reason=str(state.get("reason") or "启动失败")
                    )
        on_trial = []
        for track in releases.TRACKS.values():
            state = states[_kind(track)]
            if state.get("state") == "trial" and state.get("release") == running[track.kind]:
                on_trial.append((track, str(state["release"])))
        if not on_trial:
            return
        names = ", ".join(f"{track.kind} {version}" for track, version in on_trial)
        deadline = time.monotonic() + self.cfg.trial_s
        while True:
            reason = await self._healthy()
            if reason is None:
                for track, _ in on_trial:
                    await asyncio.to_thread(releases.confirm, root, track)
                self.note = f"{_said(on_trial)} 试运行正常，已保留 (healthy)"
                for track, version in on_trial:
                    await self._step(_kind(track), UpdateStep.HEALTHY, version)
                logger.info("%s: %s healthy on trial, kept", self.tag, names)
                return
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(HEALTH_POLL_S)
        for track, _ in on_trial:
            await asyncio.to_thread(releases.rollback, root, reason, track)
        self.note = f"{_said(on_trial)} 已回退 (rolled back): {reason}"
        for track, version in on_trial:
            await self._step(_kind(track), UpdateStep.ROLLED_BACK, version, reason=reason)
        logger.warning("%s: %s rolled back: %s", self.tag, names, reason)
        self._restart()

    async def check(self) -> None:
        """One look for newer firmware or models, firmware first (its release may bring models of
        its own), each only if a rollout offered it; the download waits while the unit is busy."""
        await self._load()
        await self._take_offers()
        running = await asyncio.to_thread(self._running)
        for kind, (_, offered) in list(self.offers.items()):
            if offered == running[kind] and not self._reached(kind, UpdateStep.HEALTHY):
                await self._step(kind, UpdateStep.HEALTHY, offered)  # it runs the offered release already
        try:
            offers = await asyncio.to_thread(self.fetcher.offers, running)
            offers = [o for o in offers if await self._wanted(o, running[o.kind])]
            if offers:
                await self._take(min(offers, key=lambda offer: offer.kind != "firmware"))
        except UpdateRefused as exc:  # the repository's metadata: every release offered and not yet settled
            await self._refused(exc, *self.offers)
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError, OSError) as exc:
            logger.warning("%s: update check failed, next time again: %s", self.tag, exc)

    async def _refused(self, exc: UpdateRefused, *kinds: ReleaseKind) -> None:
        self.note = f"拒绝 refused {exc.refusal.value}: {exc.reason}"
        logger.warning("%s: update refused (%s): %s", self.tag, exc.refusal.value, exc.detail)
        for kind in kinds:
            if not self._reached(kind, *SETTLED):
                await self._step(
                    kind, UpdateStep.REFUSED, self.offers[kind][1], code=exc.refusal.value, reason=exc.reason
                )

    async def _wanted(self, offer: Offer, running: str | None) -> bool:
        """Whether to take this signed release, newer than the one in use: only as the rollout
        offered it, and not again in a rollout where it got installed (and maybe rolled back)."""
        kind = _kind(releases.TRACKS[offer.kind])
        if kind not in self.offers:
            logger.info("%s: %s %s is signed, but no rollout offered it", self.tag, kind, offer.version)
            return False
        release = self.offers[kind][1]
        if self._reached(kind, *SETTLED):
            return False  # a new rollout offers it again
        if running is not None and version_key(release) < version_key(running):
            await self._refused(UpdateRefused(Refusal.ROLLBACK, f"{kind} {release} offered, {running} running"), kind)
            return False
        if offer.version != release:
            logger.info(
                "%s: %s %s offered, but %s is the latest signed; not taken", self.tag, kind, release, offer.version
            )
            return False
        return True

    async def _take(self, offer: Offer) -> None:
        while True:  # a try whenever the unit is free; a report or a call pauses it
            try:
                if not self._busy():
                    archive = await asyncio.to_thread(self.fetcher.download, offer, self._busy)
                    break
            except Paused as exc:
                logger.info("%s: %s; the unit is busy", self.tag, exc)
            await asyncio.sleep(IDLE_POLL_S)
        logger.info("%s: %s %s downloaded and verified, installing", self.tag, offer.kind, offer.version)
        kind = _kind(releases.TRACKS[offer.kind])
        await self._step(kind, UpdateStep.DOWNLOADED, offer.version)
        done = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            str(Path(releases.__file__)),
            "install",
            "--root",
            str(self.cfg.releases_dir),
            "--kind",
            offer.kind,
            "--archive",
            str(archive),
            "--version",
            offer.version,
            "--python",
            getattr(sys, "_base_executable", sys.executable),  # the system's python3 the venv was made from
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await done.communicate()
        said = _said([(releases.TRACKS[offer.kind], offer.version)])
        if done.returncode != 0:
            self.note = f"{said} 安装失败 (install failed): {stderr.decode(errors='replace').strip()[-200:]}"
            logger.warning("%s: %s", self.tag, self.note)
            await self._step(kind, UpdateStep.FAILED, offer.version, reason=self.note)
            return
        await asyncio.to_thread(archive.unlink, missing_ok=True)
        self.note = f"{said} 已安装，重启后试运行 (installed; on trial after the restart)"
        await self._step(kind, UpdateStep.INSTALLED, offer.version)
        logger.info("%s: %s %s installed; restarting into it", self.tag, offer.kind, offer.version)
        self._restart()


def _kind(track: releases.Track) -> ReleaseKind:
    return "models" if track is releases.MODELS else "firmware"


def _said(releases_: list[tuple[releases.Track, str]]) -> str:
    """How the health note names releases: a firmware by its version alone (as the fleet page has
    always shown it), models as 车牌模型 VERSION."""
    return "、".join(version if track is releases.FIRMWARE else f"车牌模型 {version}" for track, version in releases_)
