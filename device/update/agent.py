"""The running firmware's side of updates: look for a signed release on a schedule or when the
server asks, download it only while the unit is idle, install it beside the running release, have
the service restarted, and on the next start keep the release only if it proves healthy.

What the agent did last is one line among the heartbeat's health notes (``in_health``), so that
the fleet page shows each unit's update: installed and on trial, healthy, rolled back and why, or
refused and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tuf.api import exceptions as tuf_errors

from device.config import DeviceConfig
from device.update import releases
from device.update.fetch import Fetcher, Offer, Paused
from device.update.refusals import UpdateRefused
from protocol.messages import Health

logger = logging.getLogger(__name__)

IDLE_POLL_S = 5.0  # how often a paused download looks whether the unit is free again
HEALTH_POLL_S = 5.0  # how often a release on trial is checked until it passes or its time is up


class UpdateAgent:
    def __init__(
        self,
        cfg: DeviceConfig,
        running: str,
        busy: Callable[[], bool],
        healthy: Callable[[], Awaitable[str | None]],
        restart: Callable[[], None],
    ) -> None:
        """``busy``: a report or a call is on (read from the download's thread too); ``healthy``:
        None when the link is up and the self-test passes, else why not; ``restart``: have the
        service started again (the new ``current`` is what starts)."""
        assert cfg.update.url is not None
        self.cfg = cfg.update
        self.tag = f"device {cfg.device.id}"
        self.running = running
        max_bytes = int(cfg.update.max_download_mb * 2**20)
        self.fetcher = Fetcher(cfg.update.url, cfg.update.trusted_root, cfg.device.data_dir / "updates", max_bytes)
        self._busy = busy
        self._healthy = healthy
        self._restart = restart
        self._poke = asyncio.Event()
        self.note: str | None = None

    def poke(self) -> None:
        """``update.check`` from the server: look now rather than at the next scheduled time."""
        self._poke.set()

    def in_health(self, health: Health) -> Health:
        if self.note is None:
            return health
        return health.model_copy(update={"notes": [*health.notes[:7], f"update: {self.note}"[:120]]})

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

    async def trial(self) -> None:
        """A release on trial is kept once healthy within ``trial_s``, else the previous one is put back."""
        state = releases.read_state(self.cfg.releases_dir)
        if state.get("state") != "trial" or state.get("release") != self.running:
            return
        deadline = time.monotonic() + self.cfg.trial_s
        while True:
            reason = await self._healthy()
            if reason is None:
                await asyncio.to_thread(releases.confirm, self.cfg.releases_dir)
                self.note = f"{self.running} 试运行正常，已保留 (healthy)"
                logger.info("%s: release %s healthy on trial, kept", self.tag, self.running)
                return
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(HEALTH_POLL_S)
        await asyncio.to_thread(releases.rollback, self.cfg.releases_dir, reason)
        self.note = f"{self.running} 已回退 (rolled back): {reason}"
        logger.warning("%s: release %s rolled back: %s", self.tag, self.running, reason)
        self._restart()

    async def check(self) -> None:
        """One look for a newer firmware; the download waits while the unit is busy."""
        try:
            offers = await asyncio.to_thread(self.fetcher.offers, {"firmware": self.running, "models": None})
            firmware = [offer for offer in offers if offer.kind == "firmware"]
            if firmware:
                await self._take(firmware[0])
        except UpdateRefused as exc:
            self.note = f"拒绝 refused {exc.refusal.value}: {exc.reason}"
            logger.warning("%s: update refused (%s): %s", self.tag, exc.refusal.value, exc.detail)
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError, OSError) as exc:
            logger.warning("%s: update check failed, next time again: %s", self.tag, exc)

    async def _take(self, offer: Offer) -> None:
        while True:  # a try whenever the unit is free; a report or a call pauses it
            try:
                if not self._busy():
                    archive = await asyncio.to_thread(self.fetcher.download, offer, self._busy)
                    break
            except Paused as exc:
                logger.info("%s: %s; the unit is busy", self.tag, exc)
            await asyncio.sleep(IDLE_POLL_S)
        logger.info("%s: firmware %s downloaded and verified, installing", self.tag, offer.version)
        done = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            str(Path(releases.__file__)),
            "install",
            "--root",
            str(self.cfg.releases_dir),
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
        if done.returncode != 0:
            self.note = f"{offer.version} 安装失败 (install failed): {stderr.decode(errors='replace').strip()[-200:]}"
            logger.warning("%s: %s", self.tag, self.note)
            return
        archive.unlink(missing_ok=True)
        self.note = f"{offer.version} 已安装，重启后试运行 (installed; on trial after the restart)"
        logger.info("%s: firmware %s installed; restarting into it", self.tag, offer.version)
        self._restart()
