"""The releases on a unit: each in its own folder with its own virtualenv, one ``current`` link.

::

    /opt/kuaichu/releases/0.2.0/   wheels/, requirements.lock, venv/, .complete (written last)
    /opt/kuaichu/current          -> releases/0.2.0   (replaced by renaming a new link over it)
    /opt/kuaichu/venv             -> current/venv     (what the service's ExecStart names)
    /opt/kuaichu/update.json      what the last update did: trial, healthy, rolled_back

Every step is written to disk before the next begins, and only a rename changes what the service
starts, so a power cut at any moment leaves ``current`` on a release that installed completely.
A new release starts on trial; ``guard``, meant to run before each start of the service (an
``ExecStartPre``, not yet in kuaichu-device.service: docs/updates.md), switches back to the
previous release when a trial release has already been started ``MAX_TRIAL_STARTS`` times without
being confirmed healthy (it crashed, hung or lost power during its trial).

The standard library only: ``guard`` runs with the system's python3 even when the release that
``current`` names cannot start at all. Run as ``python3 releases.py install|guard|confirm|rollback``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

MAX_TRIAL_STARTS = 2
STATE = "update.json"
COMPLETE = ".complete"
LOCK = "requirements.lock"


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


def read_state(root: Path) -> dict[str, object]:
    try:
        data = json.loads((root / STATE).read_text(encoding="utf-8"))
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


def complete(root: Path, version: str) -> bool:
    return (root / "releases" / version / COMPLETE).exists()


def current(root: Path) -> str | None:
    """The release ``current`` names, if it installed completely."""
    try:
        version = Path(os.readlink(root / "current")).name
    except OSError:
        return None
    return version if complete(root, version) else None


def switch(root: Path, version: str) -> None:
    _link(root, "current", f"releases/{version}")
    if not (root / "venv").is_symlink():
        _link(root, "venv", "current/venv")


def install(root: Path, archive: Path, version: str, python: str) -> None:
    """Install ``archive`` (a firmware target: wheels and their lock) as ``version`` beside the
    running release and switch to it on trial. The caller restarts the service afterwards."""
    folder = root / "releases" / version
    if folder.exists() and not complete(root, version):
        shutil.rmtree(folder)  # an earlier try was cut off: start it again from the archive
    if not complete(root, version):
        _say("unpack", version)
        folder.mkdir(parents=True)
        try:
            _extract(archive, folder)
            if not (folder / LOCK).is_file():
                raise InstallError(f"{archive} holds no {LOCK}: not a firmware release")
        except InstallError:
            shutil.rmtree(folder)
            raise
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
        said = _run([str(folder / "venv" / "bin" / "kuaichu"), "--version"]).strip()
        if said != f"kuaichu {version}":
            raise InstallError(f"the installed release says {said!r}, not kuaichu {version}")
        subprocess.run(["sync"], check=False)
        (folder / COMPLETE).write_text(version)
        _fsync_dir(folder)
    previous = current(root)
    if previous == version:
        return
    _say("switch", version)
    _write_json(root / STATE, {"state": "switching", "release": version, "previous": previous, "starts": 0})
    switch(root, version)
    _say("trial", version)
    state = "trial" if previous else "healthy"  # a first install has nothing to fall back to
    _write_json(root / STATE, {"state": state, "release": version, "previous": previous, "starts": 0})


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
    """Before each start: count a trial release's starts and fall back when it has had its chances;
    repair a ``current`` that names no complete release. Returns what the service will run."""
    state = read_state(root)
    if state.get("state") in ("switching", "trial"):
        starts = int(str(state.get("starts", 0))) + 1
        if starts > MAX_TRIAL_STARTS:
            rollback(
                root,
                f"新版本试运行中启动了 {starts - 1} 次仍未确认正常，已退回 (not healthy after {starts - 1} starts)",
            )
        else:
            _write_json(root / STATE, {**state, "state": "trial", "starts": starts})
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


def confirm(root: Path) -> None:
    """The trial release proved healthy: keep it, and only it and the one before it."""
    state = read_state(root)
    if state.get("state") != "trial":
        return
    _write_json(root / STATE, {**state, "state": "healthy"})
    keep = {state.get("release"), state.get("previous")}
    for folder in (root / "releases").iterdir():
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def rollback(root: Path, reason: str) -> None:
    """Back to the release before the trial one, with why; the caller restarts the service."""
    state = read_state(root)
    previous = state.get("previous")
    if not isinstance(previous, str) or not complete(root, previous):
        return
    switch(root, previous)
    _write_json(root / STATE, {**state, "state": "rolled_back", "reason": reason, "starts": 0})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="releases.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["install", "guard", "confirm", "rollback"])
    parser.add_argument("--root", type=Path, default=Path("/opt/kuaichu"))
    parser.add_argument("--archive", type=Path, help="install: the downloaded firmware target")
    parser.add_argument("--version", help="install: its version")
    parser.add_argument("--python", default="/usr/bin/python3", help="install: the python the venv is made from")
    parser.add_argument("--reason", default="", help="rollback: why")
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            if args.archive is None or args.version is None:
                parser.error("install needs --archive and --version")
            install(args.root, args.archive, args.version, args.python)
        elif args.action == "guard":
            print(f"running {guard(args.root)}")
        elif args.action == "confirm":
            confirm(args.root)
        else:
            rollback(args.root, args.reason)
    except InstallError as exc:
        print(f"releases.py {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
