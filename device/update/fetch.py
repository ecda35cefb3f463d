"""Finding and downloading a signed release: python-tuf's client against the server's ``/updates/``.

Blocking (TUF's client and urllib3 are): the agent runs it on a worker thread. The metadata is
checked by ``tuf.ngclient.Updater`` from the root the bundle carries; the target itself is
downloaded here rather than by ``Updater.download_target`` so that it can pause (the unit is
busy with a report or a call) and resume from the bytes already on disk, and is then checked
against the signed length and hashes all the same before anything uses it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import urllib3
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater

from device.update.refusals import Refusal, UpdateRefused, refusal_for

logger = logging.getLogger(__name__)

LATEST = "latest.json"
CHUNK = 64 * 1024
KINDS = ("firmware", "models")


class Paused(Exception):
    """The unit got busy: the partial download stays on disk and resumes next time."""


@dataclass(frozen=True)
class Offer:
    kind: str  # firmware | models
    version: str
    target: TargetFile


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class Fetcher:
    """One unit's view of the repository; ``cache_dir`` keeps the trusted metadata between checks,
    which is what lets TUF notice a server that offers older metadata than it gave before."""

    def __init__(self, url: str, trusted_root: Path, cache_dir: Path, max_bytes: int) -> None:
        self.url = url.rstrip("/")
        self.trusted_root = trusted_root
        self.cache_dir = cache_dir
        self.max_bytes = max_bytes
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=10, read=30))

    def _updater(self) -> Updater:
        metadata = self.cache_dir / "metadata"
        metadata.mkdir(parents=True, exist_ok=True)
        bootstrap = self.trusted_root.read_bytes()
        return Updater(
            str(metadata),
            f"{self.url}/metadata/",
            str(self.cache_dir / "targets"),
            f"{self.url}/targets/",
            bootstrap=bootstrap,
        )

    def offers(self, running: dict[str, str | None]) -> list[Offer]:
        """The signed releases newer than what runs (``running``: kind -> version or None).
        Raises UpdateRefused for what TUF refuses, and for a release older than the running one."""
        try:
            updater = self._updater()
            updater.refresh()
            info = updater.get_targetinfo(LATEST)
            if info is None:
                return []
            latest = json.loads(Path(updater.download_target(info)).read_bytes())
            found = []
            for kind in KINDS:
                entry = latest.get(kind)
                if entry is None:
                    continue
                target = updater.get_targetinfo(entry["target"])
                if target is None or target.custom.get("version") != entry["version"]:
                    raise tuf_errors.RepositoryError(f"latest.json names {entry['target']}, which is not signed")
                have = running.get(kind)
                if have is not None and version_key(entry["version"]) < version_key(have):
                    raise UpdateRefused(Refusal.ROLLBACK, f"{kind} {entry['version']} offered, {have} installed")
                if have is None or version_key(entry["version"]) > version_key(have):
                    found.append(Offer(kind, entry["version"], target))
            return found
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
            refused = refusal_for(exc)
            if refused is None:
                raise
            raise refused from exc

    def download(self, offer: Offer, paused: Callable[[], bool]) -> Path:
        """The target on disk, checked against its signed length and hashes. A partial download
        (named by the target's hash, so it never resumes into another release) continues from
        where it stopped."""
        target = offer.target
        if target.length > self.max_bytes:
            raise UpdateRefused(Refusal.TOO_LARGE, f"{target.path} is {target.length} bytes, at most {self.max_bytes}")
        folder = self.cache_dir / "downloads"
        folder.mkdir(parents=True, exist_ok=True)
        done = folder / f"{target.hashes['sha256']}.tar"
        if not done.exists():
            partial = done.with_suffix(".partial")
            self._fetch(target, partial, paused)
            os.replace(partial, done)
        try:
            with open(done, "rb") as f:
                target.verify_length_and_hashes(f)
        except tuf_errors.LengthOrHashMismatchError as exc:
            done.unlink()
            raise UpdateRefused(Refusal.HASH_MISMATCH, f"{target.path}: {exc}") from None
        return done

    def _fetch(self, target: TargetFile, partial: Path, paused: Callable[[], bool]) -> None:
        offset = partial.stat().st_size if partial.exists() else 0
        if offset >= target.length:  # complete but not yet renamed, or overgrown: the hash decides
            return
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            response = self.http.request(
                "GET", f"{self.url}/targets/{target.path}", headers=headers, preload_content=False
            )
        except urllib3.exceptions.HTTPError as exc:
            raise tuf_errors.DownloadError(f"{target.path}: {exc}") from exc
        try:
            if response.status == 200:
                offset = 0  # the server ignored the range: start again
            elif response.status != 206:
                raise tuf_errors.DownloadHTTPError(f"{target.path}: HTTP {response.status}", response.status)
            logger.info("downloading %s from byte %d of %d", target.path, offset, target.length)
            with open(partial, "r+b" if offset else "wb") as out:
                out.seek(offset)
                out.truncate()
                for chunk in response.stream(CHUNK):
                    offset += len(chunk)
                    if offset > target.length:
                        out.close()
                        partial.unlink()
                        raise UpdateRefused(
                            Refusal.TOO_LARGE, f"{target.path}: the server sent more than its signed {target.length}"
                        )
                    out.write(chunk)
                    if paused():
                        out.flush()
                        os.fsync(out.fileno())
                        raise Paused(f"{target.path} paused at byte {offset}")
                out.flush()
                os.fsync(out.fileno())
        except urllib3.exceptions.HTTPError as exc:
            raise tuf_errors.DownloadError(f"{target.path}: {exc}") from exc
        finally:
            response.release_conn()
