"""``kuaichu release init | sign | publish``: signed over-the-air releases (docs/updates.md).

The keys' passphrase comes from ``KUAICHU_RELEASE_PASSPHRASE`` or ``--passphrase-file``, never
from the command line, for the same reasons as the CA's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

PASSPHRASE_ENV = "KUAICHU_RELEASE_PASSPHRASE"


def register(commands: Any) -> None:
    parser = commands.add_parser("release", help="signed firmware and model releases for the units (TUF)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    init = sub.add_parser("init", help="the release keys (root, targets, snapshot, timestamp) and first metadata")
    init.set_defaults(handler=_init)

    sign = sub.add_parser("sign", help="add a firmware or model release and sign it")
    what = sign.add_mutually_exclusive_group(required=True)
    what.add_argument("--firmware", type=Path, metavar="WHEELHOUSE", help="folder of the kuaichu wheel and its deps")
    what.add_argument("--models", type=Path, metavar="FOLDER", help="folder of the plate models (*.tflite)")
    sign.add_argument("--version", help="the models' release version, e.g. 2026.12.1 (firmware: the wheel's)")
    sign.set_defaults(handler=_sign)

    publish = sub.add_parser("publish", help="copy the repository, freshly time-stamped, to the server's folder")
    publish.add_argument("--to", type=Path, required=True, help="the server's [updates] repository folder")
    publish.add_argument("--timestamp-days", type=float, help="how long the timestamp holds (default 7)")
    publish.set_defaults(handler=_publish)

    for p in (init, sign, publish):
        p.allow_abbrev = False
        p.add_argument("--dir", type=Path, required=True, help="the provisioning folder")
        p.add_argument(
            "--passphrase-file", type=Path, help=f"the release keys' passphrase (default: ${PASSPHRASE_ENV})"
        )


def _passphrase(args: argparse.Namespace) -> bytes:
    from provisioning.errors import ProvisioningError

    if args.passphrase_file is not None:
        try:
            value: bytes = args.passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ProvisioningError(f"cannot read {args.passphrase_file}: {exc.strerror}") from None
    else:
        value = os.environ.get(PASSPHRASE_ENV, "").encode()
    if not value:
        raise ProvisioningError(f"no release passphrase: set {PASSPHRASE_ENV} or give --passphrase-file")
    return value


def _guarded(args: argparse.Namespace, action: Any) -> int:
    from provisioning.errors import ProvisioningError

    try:
        action(args)
    except ProvisioningError as exc:
        print(f"kuaichu release {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _init(args: argparse.Namespace) -> int:
    def act(args: argparse.Namespace) -> None:
        from provisioning import release

        layout = release.init(args.dir.resolve(), _passphrase(args))
        print(f"release keys in {layout.keys} (keep root.pem and targets.pem offline)")
        print(f"trusted root for the units' bundles: {layout.trusted_root}")

    return _guarded(args, act)


def _sign(args: argparse.Namespace) -> int:
    def act(args: argparse.Namespace) -> None:
        from provisioning import release
        from provisioning.errors import ProvisioningError

        if args.firmware is not None:
            version, archive = release.firmware_archive(args.firmware)
            if args.version not in (None, version):
                raise ProvisioningError(f"--version {args.version} differs from the wheel's {version}")
            name = release.sign(args.dir.resolve(), _passphrase(args), "firmware", version, archive)
        else:
            if args.version is None:
                raise ProvisioningError("--models needs --version")
            archive = release.models_archive(args.models)
            name = release.sign(args.dir.resolve(), _passphrase(args), "models", args.version, archive)
        print(f"signed {name} ({len(archive)} bytes); `kuaichu release publish` puts it on the server")

    return _guarded(args, act)


def _publish(args: argparse.Namespace) -> int:
    def act(args: argparse.Namespace) -> None:
        from provisioning import release

        release.publish(args.dir.resolve(), _passphrase(args), args.to.resolve(), args.timestamp_days)
        print(f"published to {args.to}")

    return _guarded(args, act)
