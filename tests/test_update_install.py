"""A release installed beside the running one on a unit's disk (``device/update/releases.py``, run
as the unit runs it: a separate process with the standard library only), killed with SIGKILL as
each step starts (the process kills itself the moment it announces the step, so the kill lands
there every time): the unit still boots a release that runs. A trial release that never proves
healthy is rolled back by the boot guard; one confirmed healthy is kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from device.update import releases
from provisioning.release import firmware_archive, models_archive
from tests.commands import ROOT
from tests.releases import release_base, wheelhouse

SCRIPT = Path(releases.__file__)
STEPS = ["unpack", "venv", "pip", "check", "switch", "trial"]


# Each install makes a virtualenv and installs some thirty megabytes of wheels into it.
pytestmark = pytest.mark.timeout(600)
__all__ = ["release_base"]  # the fixture


@pytest.fixture(scope="module")
def archives(release_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The firmware targets the station signs, for 0.1.0 and 0.2.0, as a unit downloads them."""
    folder = tmp_path_factory.mktemp("archives")
    found: dict[str, Path] = {}
    for version in ("0.1.0", "0.2.0"):
        said, data = firmware_archive(wheelhouse(release_base, version, folder / f"wh-{version}"))
        assert said == version
        found[version] = folder / f"kuaichu-{version}.tar"
        found[version].write_bytes(data)
    return found


# The installer, killed with SIGKILL by itself the moment it announces the step named in argv[2].
KILLED_AT = """
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location("releases", sys.argv[1])
releases = importlib.util.module_from_spec(spec)
sys.modules["releases"] = releases  # as an import would: its dataclasses look themselves up there
spec.loader.exec_module(releases)
say = releases._say
def say_and_die(step, version):
    say(step, version)
    if step == sys.argv[2]:
        os.kill(os.getpid(), signal.SIGKILL)
releases._say = say_and_die
sys.exit(releases.main(sys.argv[3:]))
"""


def command(root: Path, action: str, *args: str) -> list[str]:
    # -I: no user site, no PYTHON* variables: the script must stand on the standard library.
    return [sys.executable, "-I", str(SCRIPT), action, "--root", str(root), *args]


def install(root: Path, archive: Path, version: str) -> list[str]:
    return command(root, "install", "--archive", str(archive), "--version", version, "--python", sys.executable)


def boot(root: Path) -> str:
    """What a start of the service runs: the guard, then the kuaichu that ``venv`` leads to."""
    guard = subprocess.run(command(root, "guard"), capture_output=True, text=True, timeout=30, check=True)
    running = guard.stdout.split()[-1]
    said = subprocess.run([str(root / "venv" / "bin" / "kuaichu"), "--version"], capture_output=True, text=True)
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == f"kuaichu {running}"
    return running


def state(root: Path) -> dict[str, object]:
    return dict(json.loads((root / "update.json").read_text()))


def test_a_kill_at_every_step_of_an_install_leaves_a_unit_that_boots_a_working_release(
    archives: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "opt-kuaichu"
    root.mkdir()
    first = subprocess.run(install(root, archives["0.1.0"], "0.1.0"), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert os.readlink(root / "current") == "releases/0.1.0" and os.readlink(root / "venv") == "current/venv"
    assert state(root)["state"] == "healthy"  # the first release has nothing to fall back to
    assert boot(root) == "0.1.0"

    for step in STEPS:
        killed = subprocess.run(
            [sys.executable, "-I", "-c", KILLED_AT, str(SCRIPT), step, *install(root, archives["0.2.0"], "0.2.0")[3:]],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert killed.returncode == -signal.SIGKILL, (step, killed.stderr)
        assert killed.stdout.splitlines()[-1] == f"step {step} 0.2.0"
        running = boot(root)
        before_switch = STEPS.index(step) < STEPS.index("switch")
        assert running == "0.1.0" if before_switch else running in ("0.1.0", "0.2.0"), step
        if step == "trial":
            assert running == "0.2.0" and state(root)["previous"] == "0.1.0"

    # The trial release is started again and again without ever being confirmed healthy (it
    # crashes, or the self-test keeps failing): the guard puts 0.1.0 back and says why.
    for _ in range(releases.MAX_TRIAL_STARTS):
        boot(root)
    assert boot(root) == "0.1.0"
    rolled = state(root)
    assert rolled["state"] == "rolled_back" and rolled["release"] == "0.2.0"
    assert str(rolled["reason"]).startswith("新版本试运行中启动了")
    continue_with_a_failed_and_a_confirmed_trial(root, archives, tmp_path)


def continue_with_a_failed_and_a_confirmed_trial(root: Path, archives: dict[str, Path], tmp_path: Path) -> None:
    """On from the unit above (0.1.0 running, 0.2.0 installed and rolled back)."""
    done = subprocess.run(install(root, archives["0.2.0"], "0.2.0"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "step switch 0.2.0"  # installed already: only the switch
    assert state(root)["state"] == "trial"
    assert boot(root) == "0.2.0"

    # The self-test fails during the trial: the agent rolls back at once with the checks' reason.
    reason = "自检未通过：摄像头 failed (self-test failed)"
    subprocess.run(command(root, "rollback", "--reason", reason), check=True, timeout=30)
    assert boot(root) == "0.1.0"
    assert state(root) == {
        "state": "rolled_back",
        "release": "0.2.0",
        "previous": "0.1.0",
        "reason": reason,
        "starts": 0,
    }

    # Offered again, and this time confirmed healthy: kept.
    done = subprocess.run(install(root, archives["0.2.0"], "0.2.0"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "step switch 0.2.0"
    assert boot(root) == "0.2.0"
    subprocess.run(command(root, "confirm"), check=True, timeout=30)
    for _ in range(releases.MAX_TRIAL_STARTS + 1):
        assert boot(root) == "0.2.0"  # healthy: no longer counted
    assert state(root)["state"] == "healthy"

    # A damaged archive changes nothing: the running release stays.
    broken = tmp_path / "broken.tar"
    broken.write_bytes(archives["0.2.0"].read_bytes()[:4096])
    done = subprocess.run(install(root, broken, "0.3.0"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "releases.py install:" in done.stderr
    assert boot(root) == "0.2.0"
    assert not (root / "releases" / "0.3.0").exists()


def test_models_go_in_beside_the_firmwares_own_and_a_kill_or_a_dying_trial_falls_back(tmp_path: Path) -> None:
    """A plate models release: unpacked and checked under models/VERSION, switched by the link
    ``current-models`` (none: the firmware's own models), counted and rolled back by the same guard."""
    root = tmp_path / "opt-kuaichu"
    root.mkdir()
    archive = tmp_path / "plates.tar"
    archive.write_bytes(models_archive(ROOT / "models"))
    models = ["--kind", "models", "--archive", str(archive), "--python", sys.executable]

    def guard() -> Path | None:
        subprocess.run(command(root, "guard"), capture_output=True, timeout=30, check=True)
        return releases.installed_models(root)

    for step in ["unpack", "switch", "trial"]:
        killed = subprocess.run(
            [sys.executable, "-I", "-c", KILLED_AT, str(SCRIPT), step, "install", "--root", str(root), *models,
             "--version", "2026.12.1"],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, (step, killed.stderr)
        loaded = guard()
        assert loaded is None if step != "trial" else loaded == root / "models" / "2026.12.1" / "models", step
    # What the reader loads: the release's files, whole.
    assert loaded is not None
    assert sorted(p.name for p in loaded.iterdir()) == sorted(p.name for p in (ROOT / "models").glob("*.tflite"))
    assert (loaded / "recogniser.tflite").read_bytes() == (ROOT / "models" / "recogniser.tflite").read_bytes()

    # Started again and again without proving healthy: back to the firmware's own models.
    for _ in range(releases.MAX_TRIAL_STARTS - 1):
        assert guard() == loaded
    assert guard() is None and not (root / "current-models").is_symlink()
    assert releases.read_state(root, releases.MODELS)["state"] == "rolled_back"
    assert releases.read_state(root) == {}  # the firmware's own state untouched

    # Kept once healthy; the next release that fails its self-test goes back to the kept one.
    install_models = [*command(root, "install"), *models]
    subprocess.run([*install_models, "--version", "2026.12.1"], check=True, capture_output=True, timeout=60)
    subprocess.run([*command(root, "confirm"), "--kind", "models"], check=True, timeout=30)
    assert releases.read_state(root, releases.MODELS)["state"] == "healthy"
    subprocess.run([*install_models, "--version", "2026.12.2"], check=True, capture_output=True, timeout=60)
    assert guard() == root / "models" / "2026.12.2" / "models"
    reason = "自检未通过 (self-test failed): plate_reader: the reference plate 云CD95211 read as no plate"
    subprocess.run([*command(root, "rollback"), "--kind", "models", "--reason", reason], check=True, timeout=30)
    assert guard() == loaded
    assert releases.read_state(root, releases.MODELS)["reason"] == reason

    # An archive without every model the reader loads is refused, and nothing changes.
    broken = tmp_path / "broken.tar"
    with tarfile.open(broken, "w") as tar:
        tar.add(ROOT / "models" / "detector.tflite", "models/detector.tflite")
    done = subprocess.run(
        [*command(root, "install"), "--kind", "models", "--archive", str(broken), "--version", "2026.12.3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "lacks models/refiner.tflite" in done.stderr
    assert not (root / "models" / "2026.12.3").exists() and guard() == loaded
