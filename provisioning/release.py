"""Signed releases for the units: a TUF repository kept on the provisioning station.

``kuaichu release init`` makes the four TUF keys and the first metadata, ``sign`` adds a firmware
release (the kuaichu wheel and the wheels it is locked to) or a plate-model release as a target,
``publish`` copies the repository to the folder the server serves under ``/updates/``.

The root and targets keys never leave the station (and are encrypted with its passphrase): a
server that is broken into can at worst withhold updates or replay what it already had, which
the units notice by the metadata's versions and expiry dates. Every unit trusts the root that its
provisioning bundle carries (``root.json``) and nothing else.

Firmware and models are separate targets so that a model update does not reinstall the firmware.
``latest.json`` (a target too, so signed like the rest) names the newest of each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from provisioning.ca import replace_file, write_key
from provisioning.errors import ProvisioningError

ROLES = ("root", "targets", "snapshot", "timestamp")
LATEST = "latest.json"
TRUSTED_ROOT_NAME = "root.json"  # in the device bundle, and so in /etc/kuaichu
LOCK = "requirements.lock"
VERSION = re.compile(r"^\d+(\.\d+){1,3}$")
WHEEL = re.compile(r"^kuaichu-(?P<version>[^-]+)-.+\.whl$")
# How long each role's signature holds. Timestamp is short: a unit offered stale metadata for
# longer than this refuses it (a freeze attack), so `publish` re-signs it every time.
EXPIRY_DAYS = {"root": 365, "targets": 90, "snapshot": 30, "timestamp": 7}
PRETTY = JSONSerializer(compact=False)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def version_key(version: str) -> tuple[int, ...]:
    """Release versions are dotted numbers, compared as numbers (0.10 is newer than 0.9)."""
    if not VERSION.match(version):
        raise ProvisioningError(f"release version {version!r}: use dotted numbers, e.g. 0.2.0")
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class Layout:
    root: Path  # the provisioning folder's release/

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def metadata(self) -> Path:
        return self.root / "repository" / "metadata"

    @property
    def targets(self) -> Path:
        return self.root / "repository" / "targets"

    def key(self, role: str) -> Path:
        return self.keys / f"{role}.pem"

    @property
    def trusted_root(self) -> Path:
        """The first root: what each unit's bundle carries as its trust anchor."""
        return self.metadata / "1.root.json"


def layout_of(provisioning_dir: Path) -> Layout:
    return Layout(provisioning_dir / "release")


def _signer(layout: Layout, role: str, passphrase: bytes) -> CryptoSigner:
    try:
        key = serialization.load_pem_private_key(layout.key(role).read_bytes(), password=passphrase)
    except FileNotFoundError:
        raise ProvisioningError(f"no {role} key in {layout.keys}; run `kuaichu release init` first") from None
    except (ValueError, TypeError):
        raise ProvisioningError(f"the {role} key cannot be opened: wrong passphrase?") from None
    return CryptoSigner(key)


def _write(layout: Layout, md: Metadata[Root] | Metadata[Targets] | Metadata[Snapshot] | Metadata[Timestamp]) -> None:
    role = md.signed.type
    data = md.to_bytes(PRETTY)
    if role == "root":
        replace_file(layout.metadata / f"{md.signed.version}.root.json", data)
    replace_file(layout.metadata / f"{role}.json", data)


def init(provisioning_dir: Path, passphrase: bytes) -> Layout:
    """The four keys and version 1 of every role, with no release yet."""
    layout = layout_of(provisioning_dir)
    if layout.metadata.exists():
        raise ProvisioningError(f"{layout.root} already holds a release repository; refusing to replace its keys")
    for folder in (layout.keys, layout.metadata, layout.targets):
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    signers: dict[str, CryptoSigner] = {}
    root = Metadata(Root(expires=now() + dt.timedelta(days=EXPIRY_DAYS["root"]), consistent_snapshot=False))
    for role in ROLES:
        key = Ed25519PrivateKey.generate()
        write_key(layout.key(role), key, passphrase)
        signers[role] = CryptoSigner(key)
        root.signed.add_key(signers[role].public_key, role)
    root.sign(signers["root"])
    _write(layout, root)
    targets = Metadata(Targets(expires=now() + dt.timedelta(days=EXPIRY_DAYS["targets"])))
    targets.signed.targets[LATEST] = _add_target(layout, LATEST, json.dumps({}).encode())
    targets.sign(signers["targets"])
    _write(layout, targets)
    _resign_snapshot_and_timestamp(layout, passphrase, targets.signed.version)
    return layout


def _add_target(layout: Layout, name: str, data: bytes, custom: dict[str, object] | None = None) -> TargetFile:
    path = layout.targets / name
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, data)
    target = TargetFile.from_data(name, data, ["sha256"])
    if custom:
        target.unrecognized_fields["custom"] = custom
    return target


def _resign_snapshot_and_timestamp(layout: Layout, passphrase: bytes, targets_version: int) -> None:
    snapshot_path = layout.metadata / "snapshot.json"
    if snapshot_path.exists():
        snapshot = Metadata[Snapshot].from_file(str(snapshot_path))
        snapshot.signed.version += 1
    else:
        snapshot = Metadata(Snapshot())
    snapshot.signed.meta["targets.json"] = MetaFile(version=targets_version)
    snapshot.signed.expires = now() + dt.timedelta(days=EXPIRY_DAYS["snapshot"])
    snapshot.signatures.clear()
    snapshot.sign(_signer(layout, "snapshot", passphrase))
    _write(layout, snapshot)
    refresh_timestamp(layout, passphrase, snapshot.signed.version)


def refresh_timestamp(
    layout: Layout, passphrase: bytes, snapshot_version: int | None = None, days: float | None = None
) -> Metadata[Timestamp]:
    """A new timestamp: the units' proof that what they are offered is current."""
    path = layout.metadata / "timestamp.json"
    timestamp = Metadata[Timestamp].from_file(str(path)) if path.exists() else Metadata(Timestamp())
    if path.exists():
        timestamp.signed.version += 1
    if snapshot_version is None:
        snapshot_version = Metadata[Snapshot].from_file(str(layout.metadata / "snapshot.json")).signed.version
    timestamp.signed.snapshot_meta = MetaFile(version=snapshot_version)
    timestamp.signed.expires = now() + dt.timedelta(days=EXPIRY_DAYS["timestamp"] if days is None else days)
    timestamp.signatures.clear()
    timestamp.sign(_signer(layout, "timestamp", passphrase))
    _write(layout, timestamp)
    return timestamp


def firmware_archive(wheelhouse: Path) -> tuple[str, bytes]:
    """The firmware's version and its archive: every wheel in the folder and a lock naming each
    by its SHA-256, so that the unit installs exactly these files with ``--require-hashes``."""
    wheels = sorted(wheelhouse.glob("*.whl"))
    own = [m for m in (WHEEL.match(w.name) for w in wheels) if m]
    if len(own) != 1:
        raise ProvisioningError(
            f"{wheelhouse} must hold exactly one kuaichu wheel (found {len(own)}); "
            "make it with `pip wheel --wheel-dir DIR '.[device]'` in the firmware's source"
        )
    version = own[0]["version"]
    version_key(version)
    lines = []
    for wheel in wheels:
        name, wheel_version = wheel.name.split("-")[:2]
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{name}=={wheel_version} --hash=sha256:{digest}")
    files = {f"wheels/{w.name}": w.read_bytes() for w in wheels}
    files[LOCK] = ("\n".join(lines) + "\n").encode()
    return version, _tar(files)


def models_archive(folder: Path) -> bytes:
    models = sorted(folder.glob("*.tflite"))
    if not models:
        raise ProvisioningError(f"{folder} holds no .tflite model")
    return _tar({f"models/{m.name}": m.read_bytes() for m in models})


def _tar(files: dict[str, bytes]) -> bytes:
    """A reproducible tar: the same files give the same bytes, so re-signing changes no hash."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    return out.getvalue()


def sign(provisioning_dir: Path, passphrase: bytes, kind: str, version: str, archive: bytes) -> str:
    """Add a release (``firmware`` or ``models``) as a signed target and make it the latest of its
    kind; returns the target's name. A version not newer than the latest is refused."""
    layout = layout_of(provisioning_dir)
    targets_path = layout.metadata / "targets.json"
    if not targets_path.exists():
        raise ProvisioningError(f"no release repository in {layout.root}; run `kuaichu release init` first")
    targets = Metadata[Targets].from_file(str(targets_path))
    latest = json.loads((layout.targets / LATEST).read_bytes())
    if kind in latest and version_key(version) <= version_key(latest[kind]["version"]):
        raise ProvisioningError(f"{kind} {version} is not newer than the latest signed, {latest[kind]['version']}")
    version_key(version)
    name = f"{kind}/{'kuaichu' if kind == 'firmware' else 'plates'}-{version}.tar"
    targets.signed.targets[name] = _add_target(layout, name, archive, {"kind": kind, "version": version})
    latest[kind] = {"version": version, "target": name, "length": len(archive)}
    targets.signed.targets[LATEST] = _add_target(layout, LATEST, json.dumps(latest, sort_keys=True).encode())
    targets.signed.version += 1
    targets.signed.expires = now() + dt.timedelta(days=EXPIRY_DAYS["targets"])
    targets.signatures.clear()
    targets.sign(_signer(layout, "targets", passphrase))
    _write(layout, targets)
    _resign_snapshot_and_timestamp(layout, passphrase, targets.signed.version)
    return name


def publish(provisioning_dir: Path, passphrase: bytes, to: Path, timestamp_days: float | None = None) -> None:
    """Copy the repository to the server's folder with a fresh timestamp: targets first, then the
    metadata, timestamp.json last, each file replaced whole, so that a unit reading meanwhile sees
    the old release or the new one."""
    layout = layout_of(provisioning_dir)
    refresh_timestamp(layout, passphrase, days=timestamp_days)
    for source in sorted(layout.targets.rglob("*")):
        if source.is_file():
            _copy(source, to / "targets" / source.relative_to(layout.targets))
    names = sorted(p.name for p in layout.metadata.iterdir() if p.name != "timestamp.json")
    for name in [*names, "timestamp.json"]:
        _copy(layout.metadata / name, to / "metadata" / name)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and target.read_bytes() == source.read_bytes():
        return
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
