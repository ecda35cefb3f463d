"""Firmware releases made as the provisioning station makes them: a real kuaichu wheel built from
this checkout, the wheels it is locked to, signed into a TUF repository by ``kuaichu release``.

The wheel is built once per session; other versions are that wheel relabelled (its dist-info and
RECORD rewritten), which pip installs like any other. The lock holds what ``kuaichu --version``
imports, so that a unit's new virtualenv runs it; the camera, WebRTC and OCR stacks are left out.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path

import pytest

from server.config import UpdatesSection
from tests.commands import ROOT
from tests.conftest import RunningServer, make_server_config, start_server
from tests.services import Mosquitto

SOURCES = (
    "pyproject.toml",
    "README.md",
    "protocol",
    "device",
    "server",
    "provisioning",
    "runtime",
    "kuaichu",
    "models",
)
# What the kuaichu command imports before it parses --version, as distributions.
CLOSURE = """
import sys
from importlib.metadata import packages_distributions
from kuaichu.cli import _parser
_parser()
found = packages_distributions()
names = {name for module in list(sys.modules) for name in found.get(module.partition(".")[0], [])}
print("\\n".join(sorted(names - {"kuaichu", "setuptools"})))
"""
PASSPHRASE = "release passphrase for tests"


def build_base(folder: Path) -> Path:
    """This checkout's wheel and the locked dependencies' wheels, in ``folder``."""
    source = folder / "source"
    source.mkdir(parents=True)
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", ".venv*", "work"))
        else:
            shutil.copy2(path, source / name)
    wheels = folder / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)], check=True, timeout=300)
    names = subprocess.run([sys.executable, "-c", CLOSURE], capture_output=True, text=True, check=True, timeout=60)
    pins = [f"{name}=={metadata.version(name)}" for name in names.stdout.split()]
    subprocess.run(
        [*pip, "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(wheels), *pins], check=True, timeout=300
    )
    return wheels


@pytest.fixture(scope="session")
def release_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once a session: the wheel takes a while."""
    return build_base(tmp_path_factory.mktemp("release-base"))


def wheelhouse(base: Path, version: str, folder: Path) -> Path:
    """A firmware wheelhouse: the locked dependencies and the kuaichu wheel as ``version``."""
    folder.mkdir(parents=True)
    for wheel in base.glob("*.whl"):
        if wheel.name.startswith("kuaichu-"):
            relabel(wheel, version, folder)
        else:
            shutil.copy2(wheel, folder / wheel.name)
    return folder


def relabel(wheel: Path, version: str, folder: Path) -> Path:
    old = wheel.name.split("-")[1]
    old_info, new_info = f"kuaichu-{old}.dist-info/", f"kuaichu-{version}.dist-info/"
    target = folder / wheel.name.replace(f"-{old}-", f"-{version}-")
    record: list[list[str]] = []
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            name = item.filename.replace(old_info, new_info)
            data = src.read(item)
            if name == f"{new_info}METADATA":
                data = data.replace(f"\nVersion: {old}\n".encode(), f"\nVersion: {version}\n".encode(), 1)
            if name == f"{new_info}RECORD":
                continue
            out.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append([name, f"sha256={digest}", str(len(data))])
        record.append([f"{new_info}RECORD", "", ""])
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(record)
        out.writestr(f"{new_info}RECORD", text.getvalue())
    return target


def release(station: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``kuaichu release ARGS --dir STATION`` as the station's operator runs it."""
    env = {**os.environ, "KUAICHU_RELEASE_PASSPHRASE": PASSPHRASE}
    return subprocess.run(
        [sys.executable, "-m", "kuaichu.cli", "release", *args, "--dir", str(station)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture(scope="session")
def published(release_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A station that signed firmware 0.2.0 and plate models 2026.12.1 and published them to
    ``served/`` beside it; made once a session (signing 30 MB takes a while), copied for each test."""
    folder = tmp_path_factory.mktemp("published")
    for args in (
        ["init"],
        ["sign", "--firmware", str(wheelhouse(release_base, "0.2.0", folder / "wh-0.2.0"))],
        ["sign", "--models", str(ROOT / "models"), "--version", "2026.12.1"],
        ["publish", "--to", str(folder / "served")],
    ):
        done = release(folder / "station", *args)
        assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture
def station(published: Path, tmp_path: Path) -> Path:
    """This test's copy of the published station, its repository served from ``tmp_path / "served"``."""
    for name in ("station", "served"):
        shutil.copytree(published / name, tmp_path / name, symlinks=True)
    return tmp_path / "station"


@pytest.fixture
async def update_server(tmp_path: Path, broker: Mosquitto, station: Path) -> AsyncIterator[RunningServer]:
    """A server worker serving the station's published repository under /updates/."""
    cfg = make_server_config(tmp_path / "server", broker.port)
    cfg = cfg.model_copy(update={"updates": UpdatesSection(repository=tmp_path / "served")})
    running = await start_server(cfg)
    yield running
    await running.stop()


def trusted_root(station: Path) -> Path:
    return station / "release" / "repository" / "metadata" / "1.root.json"
