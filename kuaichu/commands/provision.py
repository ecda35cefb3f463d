"""``kuaichu provision init | server-cert | device | revoke | rotate | crl | sync | list``: the fleet's identities.

The CA passphrase comes from ``KUAICHU_CA_PASSPHRASE`` or ``--passphrase-file``, never from the
command line, where it would sit in the shell history and in every ``ps`` listing. Likewise the
console admin the station registers devices as (``KUAICHU_SERVER_USER``/``KUAICHU_SERVER_PASSWORD``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.configfile import ConfigError

if TYPE_CHECKING:
    from provisioning.bundle import Placement

PASSPHRASE_ENV = "KUAICHU_CA_PASSPHRASE"
RELOAD_HINT = (
    "Reload the broker so that it rereads the CRL: `systemctl reload mosquitto` (or `kill -HUP <pid>`).\n"
    "A device connected at this moment may keep its session until it disconnects; "
    "`systemctl restart mosquitto` cuts it off at once (every device reconnects by itself)."
)


def register(commands: Any) -> None:
    parser = commands.add_parser("provision", help="fleet CA, broker TLS/ACL and device bundles")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    init = sub.add_parser("init", help="create the fleet CA, broker certificate and config, server certificate")
    init.add_argument(
        "--broker-host",
        action="append",
        help="name or IP devices connect to (default localhost); once per broker where the fleet is "
        "sharded over several (docs/scaling.md)",
    )
    init.add_argument("--broker-port", type=int, default=8883, help="the devices' TLS listener port (default 8883)")
    init.add_argument(
        "--server-port",
        type=int,
        default=None,
        help="the server workers' own TLS listener port (default: the devices' port + 1, 8884)",
    )
    init.add_argument(
        "--stun",
        action="append",
        default=[],
        metavar="URL",
        help="a STUN server for the live video, e.g. stun:stun.kuaichu.example.cn:3478 (repeatable)",
    )
    init.add_argument(
        "--broker-user",
        help="user Mosquitto runs as, given the broker folder (default: mosquitto when run as root)",
    )
    init.set_defaults(handler=_init)

    server = sub.add_parser(
        "server-cert", help="a client certificate for another server worker, or --renew one before it expires"
    )
    server.add_argument(
        "name",
        nargs="?",
        help="worker name; the certificate's CN is kuaichu-server-NAME (with --renew and no name: kuaichu-server)",
    )
    server.add_argument(
        "--renew",
        action="store_true",
        help="a new key and certificate for an existing server; the old one stays valid until it expires",
    )
    server.set_defaults(handler=_server_cert)

    device = sub.add_parser("device", help="issue a device's certificate, device.toml, QR code and archive")
    device.add_argument("device_id", help="e.g. car-0001 or kiosk-kmz-017")
    device.add_argument("--kind", required=True, choices=["in-car", "kiosk"])
    device.add_argument("--plate", help="in-car: the vehicle's plate, e.g. 云A5H821 or 使014·578")
    device.add_argument("--vin", help="in-car: the vehicle's VIN (17 characters)")
    device.add_argument("--site", help="kiosk: surveyed WGS-84 position as LON,LAT, e.g. 102.7123,25.0406")
    device.add_argument("--site-name", help="kiosk: name the dispatcher sees (default: the device id)")
    device.set_defaults(handler=_device)

    revoke = sub.add_parser("revoke", help="revoke a device's certificate and retire it")
    revoke.add_argument("device_id")
    revoke.set_defaults(handler=_revoke)

    rotate = sub.add_parser("rotate", help="a new key and certificate for a device; the old one is revoked")
    rotate.add_argument("device_id")
    rotate.set_defaults(handler=_rotate)

    crl = sub.add_parser("crl", help="re-sign the CRL with a fresh next-update")
    crl.set_defaults(handler=_crl)

    sync = sub.add_parser("sync", help="send queued device registrations and retirements to the server")
    sync.set_defaults(handler=_sync)

    listing = sub.add_parser("list", help="devices and server certificates, with status")
    listing.set_defaults(handler=_list)

    for p in (init, server, device, revoke, rotate, crl, sync, listing):
        p.allow_abbrev = False  # else `--passphrase SECRET` would be taken as --passphrase-file
        p.add_argument("--dir", type=Path, required=True, help="the provisioning folder")
    for p in (init, device, revoke, rotate, sync):
        p.add_argument(
            "--server-url",
            help="the console's base URL, e.g. https://kuaichu.example:8080; kept for later runs "
            "(credentials: $KUAICHU_SERVER_USER, $KUAICHU_SERVER_PASSWORD)",
        )
    for p in (init, server, device, revoke, rotate, crl):
        p.add_argument("--passphrase-file", type=Path, help=f"CA passphrase file (default: ${PASSPHRASE_ENV})")


def _passphrase(args: argparse.Namespace) -> bytes:
    from provisioning.errors import ProvisioningError

    value: bytes
    if args.passphrase_file is not None:
        try:
            value = args.passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ProvisioningError(f"cannot read {args.passphrase_file}: {exc.strerror}") from None
    elif os.environ.get(PASSPHRASE_ENV):
        value = os.environ[PASSPHRASE_ENV].encode()
    else:
        raise ProvisioningError(f"no CA passphrase: set {PASSPHRASE_ENV} or give --passphrase-file")
    if not value:
        raise ProvisioningError("the CA passphrase is empty")
    return value


def _guarded(args: argparse.Namespace, action: Any) -> int:
    from provisioning.errors import ProvisioningError

    try:
        action(args)
    except (ProvisioningError, ConfigError) as exc:
        print(f"kuaichu provision {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _init(args: argparse.Namespace) -> int:
    def act(args: argparse.Namespace) -> None:
        from provisioning import fleet

        # --broker-user "" leaves the broker folder to whoever runs this
        user = fleet.default_broker_user() if args.broker_user is None else args.broker_user or None
        first, *others = args.broker_host or ["localhost"]
        layout = fleet.init(
            args.dir.resolve(),
            _passphrase(args),
            first,
            args.broker_port,
            user,
            args.stun,
            server_port=args.server_port,
            other_hosts=others,
        )
        if args.server_url:
            from provisioning.server_sync import sync

            sync(layout.root, args.server_url)
        print(f"fleet CA created in {layout.root}")
        print(f"broker: mosquitto -c {layout.broker / 'mosquitto.conf'}")
        if others:
            hosts = ", ".join([first, *others])
            print(
                f"每台代理 ({hosts}) 运行同一份 {layout.broker} 的副本 (every broker runs a copy of it, the same files)"
            )
        print(f"server certificate: {layout.server(fleet.SERVER_CN)}")

    return _guarded(args, act)


def _server_cert(args: argparse.Namespace) -> int:
    def act(args: argparse.Namespace) -> None:
        from provisioning import fleet
        from provisioning.errors import ProvisioningError

        if args.renew:
            folder = fleet.renew_server(args.dir.resolve(), _passphrase(args), args.name)
            print(f"新的服务器证书在 {folder}；旧证书到期前仍然有效")
            print("(new server certificate; the old one stays valid until it expires)")
            print(
                "请在旧证书到期前再运行一次 install-server.sh --pki，它替换 /etc/kuaichu/pki/ 并重启服务进程 "
                "(install it where the workers read it before the old one expires)."
            )
            return
        if args.name is None:
            raise ProvisioningError(
                "请给出服务器名称 NAME (证书名为 kuaichu-server-NAME)，或用 --renew 更新已有的证书 "
                "(which server? give its NAME, or --renew an existing one)"
            )
        folder = fleet.add_server(args.dir.resolve(), _passphrase(args), args.name)
        print(f"server certificate in {folder}; the broker ACL now names it.")
        print("Reload the broker so that it rereads the ACL: `systemctl reload mosquitto`.")

    return _guarded(args, act)


def _placement(args: argparse.Namespace) -> Placement:
    from protocol.messages import DeviceKind
    from protocol.plates import stored_text
    from provisioning.bundle import Placement
    from provisioning.errors import ProvisioningError

    kind = DeviceKind(args.kind)
    if kind is DeviceKind.IN_CAR:
        if args.plate is None or args.site is not None:
            raise ProvisioningError("an in-car unit needs --plate (and usually --vin), not --site")
        return Placement(kind, plate=stored_text(args.plate), vin=args.vin)
    if args.site is None or args.plate is not None or args.vin is not None:
        raise ProvisioningError("a kiosk needs --site LON,LAT, not --plate or --vin")
    try:
        lon, lat = (float(v) for v in args.site.split(","))
    except ValueError:
        raise ProvisioningError(f"--site must be LON,LAT in decimal degrees, not {args.site!r}") from None
    return Placement(kind, site_name=args.site_name, lon=lon, lat=lat)


def _device(args: argparse.Namespace) -> int:
    def act(args: argparse.Namespace) -> None:
        from provisioning import fleet

        fleet.check_device_id(args.device_id)
        placement = _placement(args)
        archive = fleet.add_device(args.dir.resolve(), _passphrase(args), args.device_id, placement)
        print(f"device {args.device_id}: {archive}")
        _report_sync(args)

    return _guarded(args, act)


def _revoke(args: argparse.Namespace) -> int:
    def act(args: argparse.Namespace) -> None:
        from provisioning import fleet

        fleet.revoke_device(args.dir.resolve(), _passphrase(args), args.device_id)
        print(f"device {args.device_id} revoked and retired.")
        print(RELOAD_HINT)
        _report_sync(args)

    return _guarded(args, act)


def _rotate(args: argparse.Namespace) -> int:
    def act(args: argparse.Namespace) -> None:
        from provisioning import fleet

        archive = fleet.rotate_device(args.dir.resolve(), _passphrase(args), args.device_id)
        print(f"device {args.device_id}: new certificate in {archive}; install it, then reload the broker.")
        print(RELOAD_HINT)
        _report_sync(args)

    return _guarded(args, act)


def _crl(args: argparse.Namespace) -> int:
    def act(args: argparse.Namespace) -> None:
        from provisioning import fleet

        crl = fleet.renew_crl(args.dir.resolve(), _passphrase(args))
        print(f"CRL re-signed, valid until {crl.next_update_utc:%Y-%m-%d}.")
        print("Reload the broker: `systemctl reload mosquitto`.")

    return _guarded(args, act)


def _report_sync(args: argparse.Namespace) -> bool:
    """Send what is queued for the server and say what happened; True when nothing is left queued."""
    from provisioning.server_sync import sync

    result = sync(args.dir.resolve(), args.server_url)
    for device_id in result.synced:
        print(f"server: device {device_id} up to date")
    for device_id, reason in result.refused.items():
        print(f"server: device {device_id} refused: {reason}", file=sys.stderr)
    if result.pending:
        why = f" ({result.problem})" if result.problem else ""
        print(
            f"server: queued, not yet sent{why}: {', '.join(result.pending)}; "
            "run `kuaichu provision sync` when the server is reachable",
            file=sys.stderr,
        )
    return not result.pending


def _sync(args: argparse.Namespace) -> int:
    outcome: list[bool] = []
    code = _guarded(args, lambda a: outcome.append(_report_sync(a)))
    return code or (0 if outcome[0] else 1)


def _list(args: argparse.Namespace) -> int:
    def act(args: argparse.Namespace) -> None:
        from provisioning import fleet
        from provisioning.ledger import load_ledger

        root = args.dir.resolve()
        ledger = load_ledger(root)
        for host in (ledger.broker_host, *ledger.broker_others):
            print(f"broker {host}:{ledger.broker_port}")
            if ledger.server_port is not None:
                print(f"broker {host}:{ledger.server_port} (server workers)")
        for name, certs in sorted(ledger.servers.items()):
            print(
                f"server  {name:<32} serial {certs[-1].serial}  until {certs[-1].not_after:%Y-%m-%d}"
                f"  certificates {len(certs)}"
            )
        for device_id, record in sorted(ledger.devices.items()):
            cert = record.current
            print(
                f"device  {device_id:<32} {record.kind.value:<7} {record.status.value:<8} "
                f"serial {cert.serial}  until {cert.not_after:%Y-%m-%d}  certificates {len(record.certs)}"
                f"{'' if record.synced else '  (not yet on the server)'}"
            )
        next_update = fleet.load_crl(root).next_update_utc
        if next_update is not None:
            print(f"CRL valid until {next_update:%Y-%m-%d}")
            if next_update - dt.datetime.now(dt.UTC) < dt.timedelta(days=30):
                print("CRL expires within 30 days: run `kuaichu provision crl` and reload the broker")

    return _guarded(args, act)
