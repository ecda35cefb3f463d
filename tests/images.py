"""An OS image's root as the installers read it, and the Raspberry Pi installer run into one:
shared by the Pi, server and update-bundle install tests, with what they read back (the image's
user database, every file's mode and owner, a systemd unit's directives and ``systemd-analyze verify``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PI_INSTALL = Path(__file__).resolve().parents[1] / "device" / "install"
PI_SCRIPT = PI_INSTALL / "install-pi.sh"

Snapshot = dict[str, tuple[int, int, int, bytes]]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """The root of a Bookworm image as far as the installer reads it: os-release and the user
    database, with the device groups Raspberry Pi OS has (gpio only exists there)."""
    root = tmp_path / "image"
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n'
    )
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:pi\naudio:x:29:pi\nvideo:x:44:pi\ngpio:x:997:pi\npi:x:1000:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\npi:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\ndialout:*::pi\naudio:*::pi\nvideo:*::pi\ngpio:!::pi\npi:!::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o640)
    return root


def install_pi(root: Path, bundle: Path, *flags: str, release: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Without ``release``, the bundle and the unit only (``--skip-venv``)."""
    firmware = ["--skip-venv"] if release is None else ["--release", str(release)]
    return subprocess.run(
        ["bash", str(PI_SCRIPT), "--root", str(root), "--skip-apt", *firmware, *flags, str(bundle)],
        capture_output=True,
        text=True,
        timeout=600 if release else 60,
    )


def snapshot(root: Path) -> Snapshot:
    """Every path under root with its mode, owner and contents (a link's target)."""
    found: Snapshot = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes() if path.is_file() else b""
        found[str(path.relative_to(root))] = (info.st_mode, info.st_uid, info.st_gid, data)
    return found


def entry(root: Path, database: str, name: str) -> list[str]:
    [line] = [line for line in (root / "etc" / database).read_text().splitlines() if line.split(":")[0] == name]
    return line.split(":")


def unit_directives(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> every value given, in order (systemd allows a key more than once)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, value = line.split("=", 1)
        found.setdefault(f"{section}.{key}", []).append(value)
    return found


def verify_unit(text: str, binary: str, copy: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on the unit ``text`` written to ``copy``, its ExecStart's ``binary``
    replaced by this checkout's python: verify checks that the program exists."""
    copy.write_text(text.replace(f"ExecStart={binary}", f"ExecStart={sys.executable}"))
    return subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
