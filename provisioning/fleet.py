"""The provisioning folder and the operations on it: init, server and device certificates,
revocation, rotation and CRL renewal. The ``kuaichu provision`` commands are thin wrappers.

Layout of ``DIR``::

    registry.json        the ledger: every certificate issued, its holder and status (owner-only)
    ca/ca.crt, ca/ca.key   the fleet CA; the key is encrypted and never leaves this folder
    ca/workers.crt, .key   the workers' CA: signs the server workers' client certificates only
    broker/                mosquitto.conf, acl, ca.crt, workers-ca.crt, server.crt, server.key, crl.pem
    server/                the central server's ca.crt, client.crt, client.key (CN kuaichu-server)
    server-NAME/           more server workers (CN kuaichu-server-NAME)
    devices/ID/            one device's bundle; devices/ID.tar.gz is what the technician carries
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from device.config import load_device_config
from protocol.topics import SERVER_SHARE_GROUP, is_device_id
from provisioning import broker, bundle
from provisioning.ca import (
    Authority,
    Usage,
    build_crl,
    create_authority,
    fingerprint,
    issue,
    load_authority,
    now,
    replace_file,
    write_cert,
    write_crl,
    write_key,
)
from provisioning.errors import ProvisioningError
from provisioning.ledger import CertRecord, DeviceRecord, Event, Ledger, Status, load_ledger, save_ledger
from provisioning.release import TRUSTED_ROOT_NAME, layout_of

logger = logging.getLogger(__name__)
_STUN_URL = re.compile(r"stuns?:[A-Za-z0-9.-]+(:\d{1,5})?")

SERVER_CN = SERVER_SHARE_GROUP  # "kuaichu-server": the ACL's server user
# Device ids may not start with this, so that no device certificate can carry a server's name.
RESERVED_PREFIX = "kuaichu-"
MIN_PASSPHRASE = 12


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca" / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca" / "ca.key"

    @property
    def workers_ca_cert(self) -> Path:
        return self.root / "ca" / "workers.crt"

    @property
    def workers_ca_key(self) -> Path:
        return self.root / "ca" / "workers.key"

    @property
    def broker(self) -> Path:
        return self.root / "broker"

    @property
    def crl(self) -> Path:
        return self.broker / broker.CRL_NAME

    @property
    def devices(self) -> Path:
        return self.root / "devices"

    def server(self, common_name: str) -> Path:
        return self.root / ("server" if common_name == SERVER_CN else common_name.removeprefix("kuaichu-"))

    def device(self, device_id: str) -> Path:
        return self.devices / device_id

    def archive(self, device_id: str) -> Path:
        return self.devices / f"{device_id}.tar.gz"


def _record(cert: x509.Certificate) -> CertRecord:
    return CertRecord(
        serial=f"{cert.serial_number:x}",
        fingerprint=fingerprint(cert),
        issued_at=now(),
        not_after=cert.not_valid_after_utc,
    )


def _private_dir(path: Path, mode: int = 0o700) -> None:
    path.mkdir(mode=mode)
    os.chmod(path, mode)


def give_to(path: Path, user: str) -> None:
    """Hand the broker folder to the user Mosquitto drops to when started as root, so that it can
    read its key, ACL and CRL after dropping privileges (it reads the ACL only then)."""
    pw = pwd.getpwnam(user)
    for item in [path, *path.iterdir()]:
        os.chown(item, pw.pw_uid, pw.pw_gid)


def default_broker_user() -> str | None:
    """``mosquitto`` when this runs as root on a machine that has that user, as a broker host does."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        return None
    return "mosquitto"


def check_passphrase(passphrase: bytes) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise ProvisioningError(f"the CA passphrase must be at least {MIN_PASSPHRASE} characters")


def init(
    root: Path,
    passphrase: bytes,
    broker_host: str,
    broker_port: int,
    broker_user: str | None,
    stun: Sequence[str] = (),
    server_port: int | None = None,
    other_hosts: Sequence[str] = (),
) -> Layout:
    """A new fleet: CA, broker certificate and configuration, the server's client certificate.
    The server workers' listener is on ``server_port`` (the devices' port + 1 unless given).
    ``other_hosts`` are further brokers the fleet is sharded over: each runs a copy of the one broker
    folder (its certificate names every host), and each unit's bundle lists them all."""
    check_passphrase(passphrase)
    if broker_host in other_hosts or len(set(other_hosts)) < len(other_hosts):
        raise ProvisioningError(
            "代理主机名重复了，每台代理只写一次 --broker-host (a broker host is named twice: name each broker once)"
        )
    # Checked before anything is written: a refused init leaves no half-made fleet that a second try
    # would find "not empty".
    server_port = broker_port + 1 if server_port is None else server_port
    if server_port == broker_port:
        raise ProvisioningError(
            "服务器进程的监听端口不能与设备端口相同，请换一个 --server-port "
            "(the server workers' listener needs a port of its own, not the devices' port)"
        )
    bad = [url for url in stun if not _STUN_URL.fullmatch(url)]
    if bad:
        raise ProvisioningError(f"not a STUN URL (stun:HOST[:PORT] or stuns:…): {', '.join(bad)}")
    if root.exists() and any(root.iterdir()):
        raise ProvisioningError(f"{root} is not empty; a fleet CA is never overwritten")
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o711)  # the broker's user must pass through to broker/, and see nothing else
    layout = Layout(root)
    for folder in (layout.ca_cert.parent, layout.devices):
        _private_dir(folder)
    _private_dir(layout.broker)

    ca = create_authority()
    write_cert(layout.ca_cert, ca.cert)
    write_key(layout.ca_key, ca.key, passphrase)
    workers = create_authority("Kuaichu server workers CA")
    write_cert(layout.workers_ca_cert, workers.cert)
    write_key(layout.workers_ca_key, workers.key, passphrase)

    names = dict.fromkeys([broker_host, *other_hosts, "localhost", "127.0.0.1"])
    cert, key = issue(ca, broker_host, Usage.SERVER, hosts=list(names))
    write_cert(layout.broker / broker.CA_NAME, ca.cert)
    write_cert(layout.broker / broker.WORKERS_CA_NAME, workers.cert)
    write_cert(layout.broker / broker.CERT_NAME, cert)
    write_key(layout.broker / broker.KEY_NAME, key)
    write_crl(layout.crl, build_crl(ca, {}))
    broker.write_conf(layout.broker, broker_port, server_port)
    broker.write_acl(layout.broker, [SERVER_CN])
    if broker_user is not None:
        give_to(layout.broker, broker_user)

    ledger = Ledger(
        broker_host=broker_host,
        broker_port=broker_port,
        broker_others=list(other_hosts),
        server_port=server_port,
        stun=list(stun),
        created_at=now(),
    )
    ledger.servers[SERVER_CN] = [_issue_server(ca, workers, layout, SERVER_CN)]
    save_ledger(root, ledger)
    logger.info("fleet created in %s for broker %s:%s", root, broker_host, broker_port)
    return layout


def _issue_server(ca: Authority, workers: Authority, layout: Layout, common_name: str) -> CertRecord:
    """Signed by the workers' CA, which only the server workers' listener trusts; ``ca.crt`` is the
    fleet CA that signed the broker's certificate."""
    folder = layout.server(common_name)
    _private_dir(folder)
    cert, key = issue(workers, common_name, Usage.CLIENT)
    write_cert(folder / "ca.crt", ca.cert)
    write_cert(folder / "client.crt", cert)
    write_key(folder / "client.key", key)
    return _record(cert)


def _open(root: Path, passphrase: bytes) -> tuple[Layout, Ledger, Authority]:
    layout = Layout(root)
    ledger = load_ledger(root)
    return layout, ledger, load_authority(layout.ca_cert, layout.ca_key, passphrase)


def _workers_authority(layout: Layout, passphrase: bytes) -> Authority:
    if not layout.workers_ca_key.exists():
        raise ProvisioningError(
            "这个车队建于服务器进程有自己的 CA (ca/workers.key) 之前：请用 `kuaichu provision init` 新建车队，"
            "见 docs/provisioning.md (this fleet was made before the server workers had a CA of their own: "
            "make a new fleet with `kuaichu provision init`)"
        )
    return load_authority(layout.workers_ca_cert, layout.workers_ca_key, passphrase)


def add_server(root: Path, passphrase: bytes, name: str) -> Path:
    """A client certificate for another server worker, CN ``kuaichu-server-NAME``, and its ACL entry."""
    common_name = f"{SERVER_CN}-{name}"
    if not is_device_id(common_name):  # the same rules as a device id: it is an MQTT user name
        raise ProvisioningError(f"not a valid server name: {name!r} (up to 17 lowercase letters, digits, hyphens)")
    layout, ledger, ca = _open(root, passphrase)
    if common_name in ledger.servers or layout.server(common_name).exists():
        raise ProvisioningError(f"server {common_name} already exists")
    workers = _workers_authority(layout, passphrase)
    ledger.servers[common_name] = [_issue_server(ca, workers, layout, common_name)]
    broker.write_acl(layout.broker, ledger.servers)
    save_ledger(root, ledger)
    return layout.server(common_name)


def renew_server(root: Path, passphrase: bytes, name: str | None) -> Path:
    """A new key and certificate for a server worker (``name`` None: the first one, kuaichu-server),
    into its folder; returns the folder. The old certificate is not revoked: every worker keeps
    connecting with it until it expires, while the new files are installed and each worker restarted
    in turn, so a renewal costs no outage. For the same reason (the workers' listener reads no CRL)
    a renewal does not shut out a key that may have been copied."""
    common_name = SERVER_CN if name is None else f"{SERVER_CN}-{name}"
    layout, ledger, ca = _open(root, passphrase)
    certs = ledger.servers.get(common_name)
    if certs is None:
        raise ProvisioningError(
            f"车队里没有服务器 {common_name}，`kuaichu provision list` 列出已有的；新的服务器进程用 "
            f"`server-cert NAME` 领证书，不加 --renew (no server {common_name} in this fleet; "
            "a new worker gets its certificate with `server-cert NAME`, without --renew)"
        )
    workers = _workers_authority(layout, passphrase)
    folder = layout.server(common_name)
    if folder.exists():
        shutil.rmtree(folder)
    certs.append(_issue_server(ca, workers, layout, common_name))
    save_ledger(root, ledger)
    logger.info("server %s renewed, certificate serial %s", common_name, certs[-1].serial)
    return folder


def check_device_id(device_id: str) -> None:
    if not is_device_id(device_id):
        raise ProvisioningError(
            f"not a device id: {device_id!r} (3-32 lowercase letters, digits and inner hyphens, e.g. car-0001)"
        )
    if device_id.startswith(RESERVED_PREFIX):
        raise ProvisioningError(f"device ids starting with {RESERVED_PREFIX!r} are reserved for the server")


def _issue_device(ca: Authority, layout: Layout, device_id: str) -> tuple[CertRecord, Path]:
    """Key, certificate, CA, QR code and archive into the device's folder (its config is already there)."""
    folder = layout.device(device_id)
    cert, key = issue(ca, device_id, Usage.CLIENT)
    write_cert(folder / bundle.CA_NAME, ca.cert)
    write_cert(folder / bundle.CERT_NAME, cert)
    write_key(folder / bundle.KEY_NAME, key)
    record = _record(cert)
    bundle.write_qr(folder, bundle.qr_payload(device_id, record.fingerprint))
    trusted = layout_of(layout.root).trusted_root  # once `kuaichu release init` has run: what updates are checked by
    if trusted.exists():
        replace_file(folder / TRUSTED_ROOT_NAME, trusted.read_bytes())
    bundle.write_archive(folder, layout.archive(device_id))
    return record, layout.archive(device_id)


def add_device(root: Path, passphrase: bytes, device_id: str, placement: bundle.Placement) -> Path:
    """A new device's bundle; returns the archive. An id that exists, even retired, is refused."""
    check_device_id(device_id)
    layout, ledger, ca = _open(root, passphrase)
    if device_id in ledger.devices or layout.device(device_id).exists():
        raise ProvisioningError(f"device {device_id} already exists; use `rotate` to renew its certificate")
    cfg = bundle.device_config(
        device_id, placement, ledger.broker_host, ledger.broker_port, ledger.stun, ledger.broker_others
    )
    folder = layout.device(device_id)
    _private_dir(folder)
    try:
        bundle.write_config(folder, cfg)
        record, archive = _issue_device(ca, layout, device_id)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        layout.archive(device_id).unlink(missing_ok=True)
        raise
    ledger.devices[device_id] = DeviceRecord(
        kind=placement.kind, certs=[record], history=[Event(at=record.issued_at, action="issued", serial=record.serial)]
    )
    save_ledger(root, ledger)
    logger.info("device %s issued, certificate serial %s", device_id, record.serial)
    return archive


def _active(ledger: Ledger, device_id: str) -> DeviceRecord:
    record = ledger.devices.get(device_id)
    if record is None:
        raise ProvisioningError(f"no device {device_id} in this fleet")
    if record.status is Status.RETIRED:
        raise ProvisioningError(f"device {device_id} is retired; provision a replacement under a new id")
    return record


def _revoke_current(record: DeviceRecord) -> None:
    at = now()
    cert = record.current
    record.certs[-1] = cert.model_copy(update={"revoked_at": at})
    record.history.append(Event(at=at, action="revoked", serial=cert.serial))


def revoke_device(root: Path, passphrase: bytes, device_id: str) -> None:
    """Put the device's certificate on the CRL and retire it. Its key and archive are deleted here:
    nothing on the station can connect as it any more."""
    layout, ledger, ca = _open(root, passphrase)
    record = _active(ledger, device_id)
    _revoke_current(record)
    record.status = Status.RETIRED
    record.synced = False
    write_crl(layout.crl, build_crl(ca, ledger.revoked()))
    save_ledger(root, ledger)
    (layout.device(device_id) / bundle.KEY_NAME).unlink(missing_ok=True)
    layout.archive(device_id).unlink(missing_ok=True)
    logger.info("device %s revoked (serial %s)", device_id, record.current.serial)


def rotate_device(root: Path, passphrase: bytes, device_id: str) -> Path:
    """A new key and certificate for a device, the old certificate revoked; returns the new archive."""
    layout, ledger, ca = _open(root, passphrase)
    record = _active(ledger, device_id)
    folder = layout.device(device_id)
    cfg = load_device_config(folder / bundle.CONFIG_NAME)  # what the technician may have adjusted
    _revoke_current(record)
    for name in (bundle.CA_NAME, bundle.CERT_NAME, bundle.KEY_NAME, bundle.QR_NAME):
        (folder / name).unlink(missing_ok=True)
    bundle.write_config(folder, cfg)
    new, archive = _issue_device(ca, layout, device_id)
    record.certs.append(new)
    record.history.append(Event(at=new.issued_at, action="rotated", serial=new.serial))
    record.synced = False  # the server learns the new certificate's fingerprint
    write_crl(layout.crl, build_crl(ca, ledger.revoked()))
    save_ledger(root, ledger)
    logger.info("device %s rotated to serial %s", device_id, new.serial)
    return archive


def renew_crl(root: Path, passphrase: bytes) -> x509.CertificateRevocationList:
    """Re-sign the CRL with a fresh next-update; a broker whose CRL expires refuses every client."""
    layout, ledger, ca = _open(root, passphrase)
    crl = build_crl(ca, ledger.revoked())
    write_crl(layout.crl, crl)
    return crl


def load_crl(root: Path) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(Layout(root).crl.read_bytes())
