"""The releases on a unit: each in its own folder, one link naming the one in use.

::

    /opt/kuaichu/releases/0.2.0/   wheels/, requirements.lock, venv/, .complete (written last)
    /opt/kuaichu/current          -> releases/0.2.0   (replaced by renaming a new link over it)
    /opt/kuaichu/venv             -> current/venv     (the path of the layout before releases/)
    /opt/kuaichu/update.json      what the last firmware update did: trial, healthy, rolled_back
    /opt/kuaichu/models/2026.12.1/ models/*.tflite, .complete: plate models, released apart
    /opt/kuaichu/current-models   -> models/2026.12.1 (none: the firmware's own models)
    /opt/kuaichu/models.json      what the last model update did

Every step is written to disk before the next begins, and only a rename changes what the service
starts, so a power cut at any moment leaves ``current`` on a release that installed completely.
A new release starts on trial; ``guard``, run before each start of the service (the
``ExecStartPre`` of kuaichu-device.service, from a copy install-pi.sh keeps outside the releases),
switches back to the previous release when a trial release has already been started
``MAX_TRIAL_STARTS`` times without being confirmed healthy (it crashed, hung or lost power during
its trial). Models go the same way, back to the previous models or to the firmware's own.

The standard library only: ``guard`` runs with the system's python3 even when the release that
``current`` names cannot start at all. Run as
``python3 releases.py install|build|adopt|guard|confirm|rollback``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

MAX_TRIAL_STARTS = 2
COMPLETE = ".complete"
LOCK = "requirements.lock"
# What the plate reader loads (device/ocr/reader.py's *_FILE); a models release lacking one is refused.
MODEL_FILES = ("detector.tflite", "refiner.tflite", "recogniser.tflite")
TFLITE_MAGIC = b"TFL3"  # the flatbuffer identifier at bytes 4-8 of every .tflite


@dataclass(frozen=True)
class Track:
    """One kind of release: the folder its versions live in, the link naming the one in use and
    the file saying what its last update did. Firmware and models switch and roll back apart."""

    kind: str
    folder: str
    link: str
    state: str


FIRMWARE = Track("firmware", "releases", "current", "update.json")
MODELS = Track("models", "models", "current-models", "models.json")
TRACKS = {track.kind: track for track in (FIRMWARE, MODELS)}
STATE = FIRMWARE.state


class InstallError(Exception):
    """A release that could not be installed; the running one is untouched."""


def _say(step: str, version: str) -> None:
    """Each step as it starts, on its own line: the journal's record, and what tests kill on."""
    print(f"step {step} {version}", flush=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_state(root: Path, track: Track = FIRMWARE) -> dict[str, object]:
    try:
        data = json.loads((root / track.state).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _link(root: Path, name: str, target: str) -> None:
    """Point ``root/name`` at ``target`` in one rename: never missing, never half-made."""
    tmp = root / f".{name}.new"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, root / name)
    _fsync_dir(root)


def complete(root: Path, version: str, track: Track = FIRMWARE) -> bool:
    return (root / track.folder / version / COMPLETE).exists()


def current(root: Path, track: Track = FIRMWARE) -> str | None:
    """The release ``current`` (or ``current-models``) names, if it installed completely."""
    try:
        version = Path(os.readlink(root / track.link)).name
    except OSError:
        return None
    return version if complete(root, version, track) else None


def installed_models(root: Path) -> Path | None:
    """The folder of .tflite files the plate reader loads, when a models release is in use; its
    versioned folder rather than the link, so a switch meanwhile never mixes two releases' files."""
    version = current(root, MODELS)
    return None if version is None else root / MODELS.folder / version / "models"


def switch(root: Path, version: str, track: Track = FIRMWARE) -> None:
    _link(root, track.link, f"{track.folder}/{version}")
    if track is FIRMWARE and not (root / "venv").is_symlink():
        _link(root, "venv", "current/venv")


def _unlink(root: Path, track: Track) -> None:
    """No models release in use: the reader loads the firmware's own models again."""
    (root / track.link).unlink(missing_ok=True)
    _fsync_dir(root)


def install(root: Path, archive: Path, version: str, python: str, track: Track = FIRMWARE) -> None:
    """Install ``archive`` (a firmware target: wheels and their lock; or a models target) as
    ``version`` beside the running release and switch to it on trial. The caller restarts the
    service afterwards."""
    build(root, archive, version, python, track)
    previous = current(root, track)
    if previous == version:
        return
    _say("switch", version)
    _write_json(root / track.state, {"state": "switching", "release": version, "previous": previous, "starts": 0})
    switch(root, version, track)
    _say("trial", version)
    # A first firmware has nothing to fall back to; first models fall back to the firmware's own.
    state = "trial" if previous or track is MODELS else "healthy"
    _write_json(root / track.state, {"state": state, "release": version, "previous": previous, "starts": 0})


def build(root: Path, archive: Path, version: str, python: str, track: Track = FIRMWARE) -> None:
    """``archive`` unpacked (and for firmware its virtualenv made) under its versioned folder and
    checked, ``.complete`` written last; nothing switched. Done already: nothing to do."""
    folder = root / track.folder / version
    if folder.exists() and not complete(root, version, track):
        shutil.rmtree(folder)  # an earlier try was cut off: start it again from the archive
    if complete(root, version, track):
        return
    _say("unpack", version)
    folder.mkdir(parents=True)
    try:
        _extract(archive, folder)
        if track is MODELS:
            _check_models(archive, folder / "models")
        elif not (folder / LOCK).is_file():
            raise InstallError(f"{archive} holds no {LOCK}: not a firmware release")
    except InstallError:
        shutil.rmtree(folder)
        raise
    if track is FIRMWARE:
        _say("venv", version)
        # apt's picamera2, lgpio, PyAudio and NumPy are seen through the system's site-packages;
        # pip comes from Python's own bundled copy (ensurepip), so nothing is fetched.
        venv = folder / "venv"
        _run([python, "-m", "venv", "--system-site-packages", str(venv)])
        _say("pip", version)
        # Exactly the locked wheels, each checked against its hash in the lock.
        _run(
            [
                str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--no-index", "--no-deps", "--require-hashes", "--find-links", str(folder / "wheels"),
                "--requirement", str(folder / LOCK),
            ]
        )  # fmt: skip
        _say("check", version)
        _check_firmware(folder, version)
    _mark_complete(folder, version)


def _check_firmware(folder: Path, version: str) -> None:
    """The release's own python runs its kuaichu (as the service starts it: ``python -m``, which
    works wherever the virtualenv was built, an OS image's mount point included)."""
    said = _run([str(folder / "venv" / "bin" / "python"), "-P", "-m", "kuaichu.cli", "--version"]).strip()
    if said != f"kuaichu {version}":
        raise InstallError(f"the installed release says {said!r}, not kuaichu {version}")


def _check_models(archive: Path, models: Path) -> None:
    """Every model the reader loads is there and is a TFLite file; that they read plates is the
    trial's self-test."""
    for name in MODEL_FILES:
        try:
            with open(models / name, "rb") as f:
                head = f.read(8)
        except OSError:
            raise InstallError(f"{archive} lacks models/{name}: not a plate models release") from None
        if head[4:8] != TFLITE_MAGIC:
            raise InstallError(f"{archive}: models/{name} is not a TFLite model")


def _mark_complete(folder: Path, version: str) -> None:
    subprocess.run(["sync"], check=False)
    (folder / COMPLETE).write_text(version)
    _fsync_dir(folder)


def adopt(root: Path, version: str) -> None:
    """Make the firmware the Pi installer built in ``releases/VERSION`` the one in use, healthy:
    the technician is there to see it run, and a unit without ``[update]`` has no agent that would
    confirm a trial. A virtualenv of the layout before releases/ (a plain ``venv`` folder) goes."""
    folder = root / FIRMWARE.folder / version
    if not complete(root, version):
        _check_firmware(folder, version)
        _mark_complete(folder, version)
    old = root / "venv"
    retired = root / ".venv.old"
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(old, retired)  # the service now starts through current, which the guard repairs
    previous = current(root)
    state = read_state(root)
    if previous != version or not (root / "venv").is_symlink():
        switch(root, version)
    if previous != version or state.get("state") != "healthy" or state.get("release") != version:
        _write_json(root / STATE, {"state": "healthy", "release": version, "previous": previous, "starts": 0})
    shutil.rmtree(retired, ignore_errors=True)


def _extract(archive: Path, folder: Path) -> None:
    """Plain files and folders inside ``folder`` only (Bookworm's Python 3.11.2 predates tarfile's
    extraction filters, so the check is made here)."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                path = Path(member.name)
                if not (member.isfile() or member.isdir()) or path.is_absolute() or ".." in path.parts:
                    raise InstallError(f"{archive}: unexpected member {member.name!r}")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(folder, members, filter="data")
            else:
                tar.extractall(folder, members)
    except (tarfile.TarError, OSError) as exc:
        raise InstallError(f"{archive} cannot be unpacked: {exc}") from None


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InstallError(f"{Path(command[0]).name} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout


def guard(root: Path) -> str | None:
    """Before each start: count a trial release's starts (firmware's and models') and fall back
    when it has had its chances; repair a link that names no complete release. Returns the
    firmware the service will run."""
    for track in TRACKS.values():
        state = read_state(root, track)
        if state.get("state") in ("switching", "trial"):
            starts = int(str(state.get("starts", 0))) + 1
            if starts > MAX_TRIAL_STARTS:
                rollback(
                    root,
                    f"新版本试运行中启动了 {starts - 1} 次仍未确认正常，已退回 (not healthy after {starts - 1} starts)",
                    track,
                )
            else:
                _write_json(root / track.state, {**state, "state": "trial", "starts": starts})
    if (root / MODELS.link).is_symlink() and current(root, MODELS) is None:
        _unlink(root, MODELS)
    running = current(root)
    if running is None:
        installed = sorted(
            (p.name for p in (root / "releases").glob("*") if complete(root, p.name)),
            key=lambda v: tuple(int(x) for x in v.split(".")),
        )
        if installed:
            switch(root, installed[-1])
            running = installed[-1]
    return running


def confirm(root: Path, track: Track = FIRMWARE) -> None:
    """The trial release proved healthy: keep it, and only it and the one before it."""
    state = read_state(root, track)
    if state.get("state") != "trial":
        return
    _write_json(root / track.state, {**state, "state": "healthy"})
    keep = {state.get("release"), state.get("previous")}
    for folder in (root / track.folder).iterdir():
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def rollback(root: Path, reason: str, track: Track = FIRMWARE) -> None:
    """Back to the release before the trial one (for first models, to the firmware's own), with
    why; the caller restarts the service."""
    state = read_state(root, track)
    previous = state.get("previous")
    if isinstance(previous, str) and complete(root, previous, track):
        switch(root, previous, track)
    elif track is MODELS and previous is None:
        _unlink(root, track)
    else:
        return
    _write_json(root / track.state, {**state, "state": "rolled_back", "reason": reason, "starts": 0})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="releases.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["install", "build", "adopt", "guard", "confirm", "rollback"])
    parser.add_argument("--root", type=Path, default=Path("/opt/kuaichu"))
    parser.add_argument("--kind", choices=sorted(TRACKS), default=FIRMWARE.kind, help="firmware or models")
    parser.add_argument("--archive", type=Path, help="install, build: the downloaded target")
    parser.add_argument("--version", help="install, build, adopt: its version")
    parser.add_argument("--python", default="/usr/bin/python3", help="install, build: the python the venv is made from")
    parser.add_argument("--reason", default="", help="rollback: why")
    args = parser.parse_args(argv)
    track = TRACKS[args.kind]
    try:
        if args.action in ("install", "build"):
            if args.archive is None or args.version is None:
                parser.error(f"{args.action} needs --archive and --version")
            (install if args.action == "install" else build)(args.root, args.archive, args.version, args.python, track)
        elif args.action == "adopt":
            if args.version is None:
                parser.error("adopt needs --version")
            adopt(args.root, args.version)
        elif args.action == "guard":
            running = guard(args.root)
            print(f"models {current(args.root, MODELS) or 'firmware'}")
            print(f"running {running}")
        elif args.action == "confirm":
            confirm(args.root, track)
        else:
            rollback(args.root, args.reason, track)
    except InstallError as exc:
        print(f"releases.py {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
