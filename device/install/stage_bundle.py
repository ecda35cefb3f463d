"""Check a device bundle (``kuaichu provision device``'s ``ID.tar.gz``) and copy its files out.

Run by ``install-pi.sh`` with the system's python3 before anything on the unit is changed, so it
uses the standard library only: the firmware's own config model lives in the virtualenv that the
installer has not built yet (it checks ``device.toml`` with that model later). What is checked here
is what would otherwise fail only once the service runs: a damaged or foreign archive, a key that
does not belong to the certificate, and a ``device.toml`` that expects its files somewhere other
than where the installer puts them.

    python3 stage_bundle.py BUNDLE.tar.gz STAGING_DIR   prints the device id
"""

from __future__ import annotations

import os
import ssl
import sys
import tarfile
import tomllib
import zlib
from pathlib import Path, PurePosixPath

CONFIG_DIR = PurePosixPath("/etc/kuaichu")  # where the unit's ExecStart reads device.toml
DATA_DIR = PurePosixPath("/var/lib/kuaichu")  # the unit's StateDirectory, its only writable place
TLS_FILES = {"ca_file": "ca.crt", "cert_file": "device.crt", "key_file": "device.key"}
REQUIRED = {*TLS_FILES.values(), "device.toml"}
OPTIONAL = {"qr.png", "root.json"}  # root.json: the release signers the unit trusts (docs/updates.md)
MAX_FILE = 1 << 20  # a bundle's files are a few kB; anything bigger is not one


class BundleError(Exception):
    pass


def read_members(bundle: Path) -> tuple[str, dict[str, bytes]]:
    """The device id (the archive's one folder) and its files, refusing anything a bundle never holds."""
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            members = tar.getmembers()  # reads to the end: a truncated archive fails here
            folders = [m for m in members if m.isdir()]
            if len(folders) != 1 or "/" in folders[0].name:
                raise BundleError("it should hold exactly one folder, named after the device")
            device_id = folders[0].name
            files: dict[str, bytes] = {}
            for member in members:
                if member.isdir():
                    continue
                path = PurePosixPath(member.name)
                if path.parent != PurePosixPath(device_id) or path.name not in REQUIRED | OPTIONAL:
                    raise BundleError(f"unexpected member {member.name!r}")
                if not member.isreg():
                    raise BundleError(f"{member.name!r} is not a plain file")
                if member.size > MAX_FILE:
                    raise BundleError(f"{member.name!r} is {member.size} bytes; no bundle file is that big")
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file always has contents
                files[path.name] = extracted.read()
    except FileNotFoundError:
        raise BundleError("no such file") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BundleError(f"not a readable .tar.gz ({exc})") from None
    missing = REQUIRED - files.keys()
    if missing:
        raise BundleError(f"{device_id}/ lacks {', '.join(sorted(missing))}")
    return device_id, files


def check_config(device_id: str, text: bytes) -> None:
    try:
        config = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BundleError(f"device.toml is not valid TOML: {exc}") from None
    device = config.get("device", {})
    if device.get("id") != device_id:
        raise BundleError(f"device.toml: device.id is {device.get('id')!r}, the bundle is {device_id!r}")
    data_dir = PurePosixPath(str(device.get("data_dir", "")))
    if data_dir != DATA_DIR and DATA_DIR not in data_dir.parents:
        raise BundleError(
            f"device.toml: device.data_dir is {str(data_dir)!r}; the service can only write in {DATA_DIR}"
        )
    tls = config.get("broker", {}).get("tls", {})
    for key, name in TLS_FILES.items():
        if tls.get(key) != str(CONFIG_DIR / name):
            raise BundleError(
                f"device.toml: broker.tls.{key} is {tls.get(key)!r}; the installer puts the file at {CONFIG_DIR / name}"
            )


def check_keys(folder: Path) -> None:
    """The certificates parse and the key is the certificate's: what the TLS handshake will load."""
    for name in (TLS_FILES["ca_file"], TLS_FILES["cert_file"]):
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(folder / name)
        except ssl.SSLError:
            raise BundleError(f"{name} is not a PEM certificate") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            folder / TLS_FILES["cert_file"], folder / TLS_FILES["key_file"]
        )
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise BundleError("device.key does not belong to device.crt") from None
        raise BundleError("device.key is not a PEM private key") from None


def stage(bundle: Path, staging: Path) -> str:
    device_id, files = read_members(bundle)
    check_config(device_id, files["device.toml"])
    for name, data in files.items():
        fd = os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    check_keys(staging)
    return device_id


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    bundle = Path(argv[1])
    try:
        print(stage(bundle, Path(argv[2])))
    except BundleError as exc:
        print(f"install-pi.sh: bundle {bundle}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
