"""The firmware as a unit installs it: ``install-pi.sh`` pip-installs the source tree into a
virtualenv, so the plate models must travel in the wheel, where ``device/ocr/reader.py`` looks for
them. Without them every unit would come up with its plate reader failed. The wheel is built from
a copy of the tree (its build folders stay out of the checkout), installed into a folder of its
own, and the self-test's plate check is run from there, as a technician runs it on the unit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(
    ".git", ".venv", ".venv-train", "work", "build", "*.egg-info", "__pycache__", ".*_cache", "var", ".kuaichu"
)
CHECK = """
import asyncio, json
import device
from device.config import PlatesSection
from device.ocr.reader import MODELS_DIR
from device.selftest.plates import check_plate_reader
outcome = asyncio.run(check_plate_reader(PlatesSection()))
found = {"device": device.__file__, "models": str(MODELS_DIR)}
print(json.dumps(found | {"status": outcome.status.value, "detail": outcome.detail}))
"""


def test_a_pip_installed_firmware_carries_its_models_and_reads_the_reference_plate(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=SKIP)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(wheels)],
        check=True,
        timeout=300,
    )
    [wheel] = wheels.glob("kuaichu-*.whl")
    shipped = {p.name for p in (REPO / "models").glob("*.tflite")}
    assert shipped, "no models in the source tree"
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {Path(n).name for n in archive.namelist() if n.startswith("models/") and n.endswith(".tflite")}
    assert in_wheel == shipped

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    env = os.environ | {"PYTHONPATH": str(target)}  # before the checkout's editable install
    run = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(result["device"]).is_relative_to(target) and Path(result["models"]).is_relative_to(target), result
    assert result["status"] == "pass", result["detail"]
