"""Once the station has release keys, every device bundle carries their root (``root.json``), and
the Pi installer puts it in ``/etc/kuaichu`` with the rest of the bundle: the one thing a unit
trusts its updates by."""

from __future__ import annotations

import stat
from pathlib import Path

from device.config import UpdateSection
from tests.commands import provision
from tests.images import image, install_pi
from tests.releases import release

__all__ = ["image"]  # the fixture


def test_a_bundle_made_after_release_init_carries_the_trusted_root_to_the_unit(image: Path, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    done = provision("init", "--dir", str(fleet), "--broker-host", "mqtt.kuaichu.example.cn", "--broker-user", "")
    assert done.returncode == 0, done.stderr
    car = ["--kind", "in-car", "--plate", "云A5H821", "--vin", "LSVAU2180N2183294", "--dir", str(fleet)]
    assert provision("device", "car-0001", *car).returncode == 0
    assert not (fleet / "devices" / "car-0001" / "root.json").exists()  # no release keys yet

    assert release(fleet, "init").returncode == 0
    assert release(fleet, "init").returncode == 1  # the keys are never replaced by a second init
    assert provision("device", "car-0002", *car).returncode == 0
    trusted = (fleet / "release" / "repository" / "metadata" / "1.root.json").read_bytes()
    assert (fleet / "devices" / "car-0002" / "root.json").read_bytes() == trusted

    done = install_pi(image, fleet / "devices" / "car-0002.tar.gz")
    assert done.returncode == 0, done.stderr
    installed = image / "etc" / "kuaichu" / "root.json"
    assert installed.read_bytes() == trusted
    assert stat.S_IMODE(installed.stat().st_mode) == 0o640
    assert Path("/") / installed.relative_to(image) == UpdateSection().trusted_root  # where the firmware looks

    # A unit provisioned before the keys existed gets the root with its next bundle.
    assert provision("rotate", "car-0001", "--dir", str(fleet)).returncode == 0
    assert (fleet / "devices" / "car-0001" / "root.json").read_bytes() == trusted
