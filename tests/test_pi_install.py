"""The Raspberry Pi install path: ``device/install/install-pi.sh`` run into an OS image's root with a
bundle made by ``kuaichu provision``, and its systemd unit checked by ``systemd-analyze verify``.

The script runs for real (bundle checks, ``useradd``/``usermod --root`` on the image's own user
database, file modes, ``systemctl --root enable``); only apt and pip from the network, which
install into the running system, are skipped with the flags an image builder uses. The firmware
goes in as a signed release (``--release``, real wheels offline) into the over-the-air layout, and
the image is then started as its installed unit starts it: the boot guard, then ``current``.
"""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from device.config import load_device_config
from device.update import releases
from provisioning.release import firmware_archive
from tests.commands import provision
from tests.images import PI_INSTALL, PI_SCRIPT, entry, image, install_pi, snapshot, unit_directives, verify_unit
from tests.releases import release_base, wheelhouse

UNIT = PI_INSTALL / "kuaichu-device.service"
SERVICE = UNIT.name
BUNDLE_FILES = ["ca.crt", "device.crt", "device.key", "device.toml", "qr.png"]
DEVICE_GROUPS = ["audio", "dialout", "gpio", "video"]

__all__ = ["image", "release_base"]  # the fixtures
EXEC_START_ARGS = ["-P", "-m", "kuaichu.cli", "device", "run", "--config", "/etc/kuaichu/device.toml"]
GUARD = "/usr/bin/python3 -I /usr/local/lib/kuaichu/releases.py guard --root /opt/kuaichu"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A provisioning folder with two in-car units and a kiosk, made by the operator's commands."""
    root = tmp_path_factory.mktemp("station") / "fleet"
    done = provision("init", "--dir", str(root), "--broker-host", "mqtt.kuaichu.example.cn", "--broker-user", "")
    assert done.returncode == 0, done.stderr
    for device_id in ("car-0001", "car-0002"):
        car = ["--kind", "in-car", "--plate", "云A5H821", "--vin", "LSVAU2180N2183294", "--dir", str(root)]
        done = provision("device", device_id, *car)
        assert done.returncode == 0, done.stderr
    kiosk = ["--kind", "kiosk", "--site", "102.7041,25.0487", "--site-name", "翠湖南路", "--dir", str(root)]
    done = provision("device", "kiosk-0001", *kiosk)
    assert done.returncode == 0, done.stderr
    return root


def test_the_unit_passes_systemd_analyze_verify_with_a_watchdog_and_restarts(tmp_path: Path) -> None:
    directives = unit_directives(UNIT.read_text())
    assert directives["Service.Type"] == ["notify"]
    assert directives["Service.NotifyAccess"] == ["main"]
    assert directives["Service.WatchdogSec"] == ["30s"]
    assert directives["Service.Restart"] == ["always"]
    assert directives["Service.RestartPreventExitStatus"] == ["2"]  # kuaichu's exit status for a bad config
    assert directives["Service.User"] == directives["Service.Group"] == ["kuaichu"]
    assert directives["Service.StateDirectory"] == ["kuaichu"]
    assert directives["Service.WorkingDirectory"] == ["/var/lib/kuaichu"]
    assert directives["Service.ProtectSystem"] == ["strict"]
    assert directives["Service.ReadWritePaths"] == ["/opt/kuaichu"]  # the updater's, and nothing else
    assert "Service.PrivateDevices" not in directives  # it would hide the camera
    assert directives["Service.ExecStartPre"] == [GUARD]
    [exec_start] = directives["Service.ExecStart"]
    binary, *args = exec_start.split()
    assert binary == "/opt/kuaichu/current/venv/bin/python"
    assert args == EXEC_START_ARGS

    copy = tmp_path / SERVICE
    done = verify_unit(UNIT.read_text(), binary, copy)
    assert done.returncode == 0
    assert done.stdout + done.stderr == ""  # an unknown key or a bad value is only a warning: none allowed

    # The check can fail: a misspelt directive is reported.
    done = verify_unit(copy.read_text().replace("WatchdogSec=", "WatchDogSec="), binary, copy)
    assert "Unknown key 'WatchDogSec'" in done.stderr


def test_install_into_an_image_lays_out_the_bundle_user_and_service(fleet: Path, image: Path) -> None:
    bundle = fleet / "devices" / "car-0001.tar.gz"
    done = install_pi(image, bundle)
    assert done.returncode == 0, done.stderr
    assert "kuaichu device selftest" in done.stdout and "systemctl stop kuaichu-device" in done.stdout

    # The service's user: a system account without a login, in the device groups.
    user = entry(image, "passwd", "kuaichu")
    uid, gid = int(user[2]), int(user[3])
    assert uid < 1000 and user[5:] == ["/var/lib/kuaichu", "/usr/sbin/nologin"]
    assert int(entry(image, "group", "kuaichu")[2]) == gid
    for group in DEVICE_GROUPS:
        assert entry(image, "group", group)[3].split(",") == ["pi", "kuaichu"]

    # The bundle: the provisioned files, root:kuaichu, no file or folder open to others.
    config_dir = image / "etc" / "kuaichu"
    assert sorted(p.name for p in config_dir.iterdir()) == BUNDLE_FILES
    info = config_dir.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o750, 0, gid)
    for name in BUNDLE_FILES:
        info = (config_dir / name).stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 0, gid), name
        assert (config_dir / name).read_bytes() == (fleet / "devices" / "car-0001" / name).read_bytes()
    data_dir = image / "var" / "lib" / "kuaichu"
    info = data_dir.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o750, uid, gid)

    # The firmware's loader accepts the installed config, and it names the installed files.
    cfg = load_device_config(config_dir / "device.toml")
    assert cfg.device.id == "car-0001"
    assert cfg.device.data_dir == Path("/var/lib/kuaichu")
    assert cfg.broker.host == "mqtt.kuaichu.example.cn"
    assert cfg.broker.tls is not None
    for path, name in [(cfg.broker.tls.ca_file, "ca.crt"), (cfg.broker.tls.cert_file, "device.crt")]:
        assert path == Path("/etc/kuaichu") / name
    assert cfg.broker.tls.key_file == Path("/etc/kuaichu/device.key")
    assert (image / cfg.broker.tls.key_file.relative_to("/")).read_bytes().startswith(b"-----BEGIN")

    # The unit, enabled in the image, and `kuaichu` on the PATH running what ExecStart runs.
    units = image / "etc" / "systemd" / "system"
    assert (units / SERVICE).read_bytes() == UNIT.read_bytes()
    assert os.readlink(units / "multi-user.target.wants" / SERVICE) == f"/etc/systemd/system/{SERVICE}"
    [exec_start] = unit_directives(UNIT.read_text())["Service.ExecStart"]
    wrapper = (image / "usr" / "local" / "bin" / "kuaichu").read_text().splitlines()[-1]
    assert wrapper == f'exec {exec_start.split()[0]} -P -m kuaichu.cli "$@"'

    # The over-the-air layout, empty (no firmware asked for), the service user's; the guard beside.
    opt = image / "opt" / "kuaichu"
    assert [p.name for p in opt.iterdir()] == ["releases"] and not any((opt / "releases").iterdir())
    assert (opt.stat().st_uid, opt.stat().st_gid) == (uid, gid)
    guard = image / "usr" / "local" / "lib" / "kuaichu" / "releases.py"
    assert guard.read_bytes() == Path(releases.__file__).read_bytes()
    assert "the service starts once one is installed" in done.stdout

    # Again, with the same bundle: nothing changes.
    before = snapshot(image)
    again = install_pi(image, bundle)
    assert again.returncode == 0, again.stderr
    assert "creating system user" not in again.stdout and "adding kuaichu" not in again.stdout
    assert snapshot(image) == before


def test_a_rotated_bundle_replaces_the_certificate_and_keeps_local_edits(fleet: Path, image: Path) -> None:
    bundle = fleet / "devices" / "car-0002.tar.gz"
    assert install_pi(image, bundle).returncode == 0
    config = image / "etc" / "kuaichu" / "device.toml"
    edited = config.read_text().replace("led_pin = 22", "led_pin = 24")  # rewired on the unit
    assert edited != config.read_text()
    config.write_text(edited)
    old_cert = (image / "etc" / "kuaichu" / "device.crt").read_bytes()

    assert provision("rotate", "car-0002", "--dir", str(fleet)).returncode == 0
    done = install_pi(image, bundle)
    assert done.returncode == 0, done.stderr
    assert "device.toml.previous" in done.stdout
    installed = image / "etc" / "kuaichu"
    assert (installed / "device.crt").read_bytes() != old_cert
    for name in ("device.crt", "device.key", "device.toml"):
        assert (installed / name).read_bytes() == (fleet / "devices" / "car-0002" / name).read_bytes()
    assert (installed / "device.toml.previous").read_text() == edited
    assert stat.S_IMODE((installed / "device.toml.previous").stat().st_mode) == 0o640


def test_a_kiosk_shows_its_screen_in_chromium_when_the_desktop_starts(fleet: Path, image: Path, tmp_path: Path) -> None:
    done = install_pi(image, fleet / "devices" / "kiosk-0001.tar.gz")
    assert done.returncode == 0, done.stderr
    autostart = image / "etc" / "xdg" / "autostart" / "kuaichu-screen.desktop"
    launcher = image / "usr" / "local" / "bin" / "kuaichu-screen"
    entry = unit_directives(autostart.read_text())
    assert entry["Desktop Entry.Type"] == ["Application"]
    assert entry["Desktop Entry.Exec"] == ["/usr/local/bin/kuaichu-screen"]
    assert stat.S_IMODE(launcher.stat().st_mode) == 0o755

    # The launcher, run with a stand-in Chromium that notes how it was started and then ends the loop.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "chromium").write_text('#!/bin/sh\necho "$@" > "$NOTED"\nkill $PPID\n')
    (fake / "chromium").chmod(0o755)
    noted = tmp_path / "args"
    env = {"PATH": f"{fake}:/usr/bin:/bin", "NOTED": str(noted)}
    subprocess.run(["sh", str(launcher)], env=env, timeout=10, check=False)
    args = noted.read_text().split()
    screen = load_device_config(image / "etc" / "kuaichu" / "device.toml").screen
    assert screen.backend == "browser"
    assert "--kiosk" in args and args[-1] == f"http://{screen.host}:{screen.port}/"

    # The same unit re-installed as an in-car unit (no screen): the kiosk's autostart goes.
    assert install_pi(image, fleet / "devices" / "car-0001.tar.gz").returncode == 0
    assert not autostart.exists() and not launcher.exists()


def rebundle(source: Path, target: Path, change: dict[str, bytes | None], extra: tarfile.TarInfo | None = None) -> Path:
    """A copy of a device's bundle with files replaced (None: left out) and perhaps one member added."""
    with tarfile.open(target, "w:gz") as tar:
        tar.add(source, arcname=source.name, recursive=False)
        for path in sorted(source.iterdir()):
            data = change.get(path.name, path.read_bytes())
            if data is not None:
                info = tarfile.TarInfo(f"{source.name}/{path.name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            tar.addfile(extra, io.BytesIO(b"x" * extra.size))
    return target


def bad_bundles(fleet: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """Bundles the installer must refuse, each with what its message must say."""
    car1, car2 = fleet / "devices" / "car-0001", fleet / "devices" / "car-0002"
    good = (fleet / "devices" / "car-0001.tar.gz").read_bytes()
    config = (car1 / "device.toml").read_text()
    (folder / "not-an-archive.tar.gz").write_bytes(b"car-0001 bundle, honest" * 40)
    (folder / "truncated.tar.gz").write_bytes(good[: len(good) // 2])
    escaping = tarfile.TarInfo("car-0001/../../etc/cron.d/evil")
    escaping.size = 1
    link = tarfile.TarInfo("car-0001/device.key")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"

    def variant(name: str, change: dict[str, bytes | None], extra: tarfile.TarInfo | None = None) -> Path:
        return rebundle(car1, folder / f"{name}.tar.gz", change, extra)

    return {
        "missing": (folder / "nowhere.tar.gz", "no such file"),
        "not an archive": (folder / "not-an-archive.tar.gz", "not a readable .tar.gz"),
        "truncated": (folder / "truncated.tar.gz", "not a readable .tar.gz"),
        "no key": (variant("no-key", {"device.key": None}), "lacks device.key"),
        "another unit's key": (
            variant("other-key", {"device.key": (car2 / "device.key").read_bytes()}),
            "device.key does not belong to device.crt",
        ),
        "not a certificate": (
            variant("garbled", {"device.crt": b"-----BEGIN CERTIFICATE-----\nnope\n"}),
            "device.crt is not a PEM certificate",
        ),
        "not a key": (variant("garbled-key", {"device.key": b"secret"}), "device.key is not a PEM private key"),
        "member outside the folder": (variant("escaping", {}, escaping), "unexpected member"),
        "key as a link": (variant("link", {"device.key": None}, link), "not a plain file"),
        "another unit's config": (
            variant("other-config", {"device.toml": (car2 / "device.toml").read_bytes()}),
            "device.id is 'car-0002'",
        ),
        "key expected elsewhere": (
            variant("elsewhere", {"device.toml": config.replace("/etc/kuaichu/device.key", "/home/pi/k").encode()}),
            "broker.tls.key_file is '/home/pi/k'",
        ),
        "outbox outside the state directory": (
            variant("outbox", {"device.toml": config.replace('"/var/lib/kuaichu"', '"/home/pi/outbox"').encode()}),
            "device.data_dir is '/home/pi/outbox'",
        ),
        "not TOML": (variant("toml", {"device.toml": b"[device\n"}), "not valid TOML"),
    }


def test_a_bad_bundle_is_refused_by_name_and_changes_nothing(fleet: Path, image: Path, tmp_path: Path) -> None:
    bundles = bad_bundles(fleet, tmp_path)
    # Into a fresh image: not even the user is created.
    fresh = snapshot(image)
    done = install_pi(image, bundles["another unit's key"][0])
    assert done.returncode == 1
    assert snapshot(image) == fresh

    # Over an installed unit: what it runs on stays as it was.
    assert install_pi(image, fleet / "devices" / "car-0001.tar.gz").returncode == 0
    installed = snapshot(image)
    for case, (bundle, message) in bundles.items():
        done = install_pi(image, bundle)
        assert done.returncode == 1, case
        assert done.stderr.startswith(f"install-pi.sh: bundle {bundle}: "), (case, done.stderr)
        assert message in done.stderr, (case, done.stderr)
        assert done.stdout == "", case
        assert snapshot(image) == installed, case


def test_the_wrong_system_or_a_root_without_skips_is_refused(fleet: Path, image: Path) -> None:
    bundle = fleet / "devices" / "car-0001.tar.gz"
    fresh = snapshot(image)
    refusals = {
        "needs apt and pip skipped": subprocess.run(
            ["bash", str(PI_SCRIPT), "--root", str(image), "--skip-apt", str(bundle)], capture_output=True, text=True
        ),
        "one bundle": install_pi(image, bundle, str(bundle)),
        "unknown option": install_pi(image, bundle, "--force"),
        "no firmware and a firmware": install_pi(image, bundle, "--release", str(bundle)),
        "not a release": install_pi(image, bundle, release=bundle),
    }
    (image / "etc" / "os-release").write_text('VERSION_ID="11"\nVERSION_CODENAME=bullseye\nID=debian\n')
    refusals["bullseye"] = install_pi(image, bundle)
    (image / "etc" / "os-release").write_text(fresh["etc/os-release"][3].decode())
    for case, done in refusals.items():
        assert done.returncode == 1, case
        assert snapshot(image) == fresh, case
    assert "pass --skip-apt, and --skip-venv or --release" in refusals["needs apt and pip skipped"].stderr
    assert "pass one of them" in refusals["no firmware and a firmware"].stderr
    assert "is not a firmware release" in refusals["not a release"].stderr
    assert "one bundle at a time" in refusals["one bundle"].stderr
    assert "unknown option --force" in refusals["unknown option"].stderr
    assert "bookworm" in refusals["bullseye"].stderr and "'bullseye'" in refusals["bullseye"].stderr


def in_image(image: Path, arg: str) -> str:
    """A path the unit names, as it lies in the image; the system's python3 is the host's."""
    return f"{image}{arg}" if arg.startswith(("/opt/kuaichu", "/usr/local/lib/kuaichu", "/etc/kuaichu")) else arg


def boot(image: Path) -> str:
    """One start of the service as the installed unit makes it: its ExecStartPre (the guard), then its
    ExecStart, killed with SIGKILL before any trial could be judged (a power cut, a hang the
    watchdog kills). Returns the release that started (its own python asked through ExecStart's)."""
    directives = unit_directives((image / "etc" / "systemd" / "system" / SERVICE).read_text())
    [pre], [start] = directives["Service.ExecStartPre"], directives["Service.ExecStart"]
    subprocess.run([in_image(image, arg) for arg in pre.split()], check=True, timeout=30, capture_output=True)
    command = [in_image(image, arg) for arg in start.split()]
    firmware = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    firmware.kill()
    assert firmware.wait(timeout=30) == -signal.SIGKILL
    said = subprocess.run(
        [command[0], "-P", "-m", "kuaichu.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert said.returncode == 0, said.stderr
    return said.stdout.split()[-1]


def test_a_release_installed_into_an_image_boots_through_the_guard_and_a_dying_trial_is_switched_back(
    fleet: Path, image: Path, release_base: Path, tmp_path: Path
) -> None:
    archives = {}
    for version in ("0.1.0", "0.2.0"):
        said, data = firmware_archive(wheelhouse(release_base, version, tmp_path / f"wh-{version}"))
        assert said == version
        archives[version] = tmp_path / f"kuaichu-{version}.tar"
        archives[version].write_bytes(data)
    # The image had the layout before releases/: a plain virtualenv where the link now goes.
    opt = image / "opt" / "kuaichu"
    (opt / "venv" / "bin").mkdir(parents=True)
    (opt / "venv" / "pyvenv.cfg").write_text("include-system-site-packages = true\n")
    bundle = fleet / "devices" / "car-0001.tar.gz"
    done = install_pi(image, bundle, release=archives["0.1.0"])
    assert done.returncode == 0, done.stderr
    assert "firmware 0.1.0 is current" in done.stdout

    assert os.readlink(opt / "current") == "releases/0.1.0" and os.readlink(opt / "venv") == "current/venv"
    assert (opt / "releases" / "0.1.0" / ".complete").exists() and not (opt / ".venv.old").exists()
    assert releases.read_state(opt) == {"state": "healthy", "release": "0.1.0", "previous": None, "starts": 0}
    uid = int(entry(image, "passwd", "kuaichu")[2])
    assert {path.lstat().st_uid for path in [opt, *opt.rglob("*")]} == {uid}  # the updater's to change
    assert boot(image) == "0.1.0"

    # Again with the same release: nothing is built again, nothing changes.
    before = snapshot(image)
    again = install_pi(image, bundle, release=archives["0.1.0"])
    assert again.returncode == 0, again.stderr
    assert snapshot(image) == before

    # The updater installs 0.2.0 on trial (as the agent runs it); each start of it is killed before
    # it proves healthy. The installed unit's guard switches back to 0.1.0 at the next boot.
    update = [sys.executable, "-I", releases.__file__, "install", "--root", str(opt), "--version", "0.2.0"]
    done = subprocess.run(
        [*update, "--archive", str(archives["0.2.0"]), "--python", sys.executable],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for _ in range(releases.MAX_TRIAL_STARTS):
        assert boot(image) == "0.2.0"
    assert boot(image) == "0.1.0"
    rolled = releases.read_state(opt)
    assert (rolled["state"], rolled["release"], rolled["previous"]) == ("rolled_back", "0.2.0", "0.1.0")

    # Offered again and kept this time; the bundle installed again later (a rotated certificate,
    # with the release the unit first had) leaves the newer firmware current.
    subprocess.run([*update, "--archive", str(archives["0.2.0"])], check=True, capture_output=True, timeout=60)
    subprocess.run([sys.executable, "-I", releases.__file__, "confirm", "--root", str(opt)], check=True, timeout=30)
    done = install_pi(image, bundle, release=archives["0.1.0"])
    assert done.returncode == 0, done.stderr
    assert "firmware 0.2.0 (newer, from an update) stays current" in done.stdout
    assert boot(image) == "0.2.0" and releases.read_state(opt)["state"] == "healthy"
