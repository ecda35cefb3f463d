"""The fleet CA and what provisioning writes, read back with the same libraries a verifier uses."""

from __future__ import annotations

import datetime as dt
import os
import stat
import tarfile
from pathlib import Path

import pytest
import qrcode  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from PIL import Image

from device.config import load_device_config
from protocol.messages import DeviceKind
from protocol.topics import Channel
from provisioning import broker, bundle, fleet
from provisioning.ca import common_name, fingerprint, load_authority, load_cert
from provisioning.errors import ProvisioningError
from provisioning.ledger import Status, load_ledger
from runtime.configfile import ConfigError

PASSPHRASE = b"a long test passphrase"
CAR = bundle.Placement(DeviceKind.IN_CAR, plate="云A5H821", vin="LSVAU2180N2183294")
KIOSK = bundle.Placement(DeviceKind.KIOSK, site_name="翠湖南路", lon=102.7041, lat=25.0487)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    fleet.init(root, PASSPHRASE, "broker.example.cn", 8883, None)
    return root


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ca_key_is_encrypted_and_opens_only_with_its_passphrase(root: Path) -> None:
    key_pem = (root / "ca" / "ca.key").read_bytes()
    assert b"ENCRYPTED" in key_pem
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(key_pem, password=None)
    with pytest.raises(ProvisioningError, match="passphrase"):
        load_authority(root / "ca" / "ca.crt", root / "ca" / "ca.key", b"not the passphrase")
    ca = load_authority(root / "ca" / "ca.crt", root / "ca" / "ca.key", PASSPHRASE)
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_private_keys_and_bundles_are_owner_only(root: Path) -> None:
    archive = fleet.add_device(root, PASSPHRASE, "car-0001", CAR)
    keys = [
        root / "ca" / "ca.key",
        root / "broker" / "server.key",
        root / "server" / "client.key",
        root / "devices" / "car-0001" / "device.key",
        archive,
        root / "registry.json",
    ]
    assert [mode(k) for k in keys] == [0o600] * len(keys)
    assert mode(root / "ca") == mode(root / "devices") == mode(root / "server") == 0o700


def test_certificates_name_their_holder_and_chain_to_the_fleet_ca(root: Path) -> None:
    fleet.add_device(root, PASSPHRASE, "car-0001", CAR)
    ca = load_cert(root / "ca" / "ca.crt")
    device = load_cert(root / "devices" / "car-0001" / "device.crt")
    server = load_cert(root / "server" / "client.crt")
    broker_cert = load_cert(root / "broker" / "server.crt")
    for cert in (device, broker_cert):
        cert.verify_directly_issued_by(ca)
    # The workers' CA signs the server workers only: their own listener takes no device certificate.
    workers = load_cert(root / "ca" / "workers.crt")
    server.verify_directly_issued_by(workers)
    assert load_cert(root / "broker" / "workers-ca.crt") == workers and workers.subject != ca.subject
    with pytest.raises(ValueError):  # another issuer
        device.verify_directly_issued_by(workers)
    for cert in (device, server, broker_cert):
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert common_name(device) == "car-0001"
    assert common_name(server) == "kuaichu-server"
    eku = x509.ExtendedKeyUsage
    assert list(device.extensions.get_extension_for_class(eku).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert list(broker_cert.extensions.get_extension_for_class(eku).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = broker_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example.cn", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    lifetime = device.not_valid_after_utc - device.not_valid_before_utc
    assert dt.timedelta(days=700) < lifetime < dt.timedelta(days=800)


def test_device_toml_is_what_the_firmware_loads(root: Path) -> None:
    fleet.add_device(root, PASSPHRASE, "car-0001", CAR)
    fleet.add_device(root, PASSPHRASE, "kiosk-kmz-017", KIOSK)
    car = load_device_config(root / "devices" / "car-0001" / "device.toml")
    assert (car.device.id, car.device.kind) == ("car-0001", DeviceKind.IN_CAR)
    assert car.vehicle is not None
    assert (car.vehicle.plate, car.vehicle.vin) == ("云A5H821", "LSVAU2180N2183294")
    assert (car.broker.host, car.broker.port) == ("broker.example.cn", 8883)
    assert car.broker.tls is not None
    assert str(car.broker.tls.key_file) == "/etc/kuaichu/device.key"
    assert car.gpio.hazard_pin == 27
    kiosk = load_device_config(root / "devices" / "kiosk-kmz-017" / "device.toml")
    assert kiosk.site is not None
    assert (kiosk.site.name, kiosk.site.lon, kiosk.site.lat) == ("翠湖南路", 102.7041, 25.0487)
    assert kiosk.gpio.hazard_pin is None


def test_a_bad_plate_is_refused_by_the_config_model_and_leaves_nothing(root: Path) -> None:
    with pytest.raises(ConfigError, match=r"vehicle\.plate"):
        fleet.add_device(root, PASSPHRASE, "car-0002", bundle.Placement(DeviceKind.IN_CAR, plate="ABC123"))
    assert not (root / "devices" / "car-0002").exists()
    assert "car-0002" not in load_ledger(root).devices


@pytest.mark.parametrize("device_id", ["Car-01", "c", "car_01", "car/01", "-car", "kuaichu-server"])
def test_bad_or_reserved_device_ids_are_refused(root: Path, device_id: str) -> None:
    with pytest.raises(ProvisioningError):
        fleet.add_device(root, PASSPHRASE, device_id, CAR)
    assert list((root / "devices").iterdir()) == []


def test_the_archive_holds_the_bundle_and_never_the_ca_key(root: Path) -> None:
    archive = fleet.add_device(root, PASSPHRASE, "car-0001", CAR)
    ca_key = (root / "ca" / "ca.key").read_bytes()
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        contents = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        modes = {m.name: m.mode for m in tar.getmembers()}
    files = ["ca.crt", "device.crt", "device.key", "device.toml", "qr.png"]
    assert names == ["car-0001", *(f"car-0001/{n}" for n in files)]
    assert ca_key not in contents.values()
    assert all(b"ENCRYPTED PRIVATE KEY" not in data for data in contents.values())
    assert modes["car-0001/device.key"] == 0o600


def test_the_qr_code_encodes_the_device_and_its_certificate_fingerprint(root: Path) -> None:
    fleet.add_device(root, PASSPHRASE, "car-0001", CAR)
    folder = root / "devices" / "car-0001"
    payload = bundle.qr_payload("car-0001", fingerprint(load_cert(folder / "device.crt")))
    assert "car-0001" in payload
    expected = qrcode.QRCode(border=4)
    expected.add_data(payload)
    expected.make(fit=True)
    matrix = expected.get_matrix()
    image = Image.open(folder / "qr.png").convert("L")
    module = image.width // len(matrix)
    assert image.width == module * len(matrix)
    seen = [
        [image.getpixel((x * module + module // 2, y * module + module // 2)) == 0 for x in range(len(matrix))]
        for y in range(len(matrix))
    ]
    assert seen == matrix


def test_revoke_and_rotate_keep_history_and_fill_the_crl(root: Path) -> None:
    fleet.add_device(root, PASSPHRASE, "car-0001", CAR)
    fleet.add_device(root, PASSPHRASE, "car-0002", CAR)
    crl = fleet.load_crl(root)
    assert len(list(crl)) == 0
    first = load_cert(root / "devices" / "car-0001" / "device.crt")
    fleet.rotate_device(root, PASSPHRASE, "car-0001")
    second = load_cert(root / "devices" / "car-0001" / "device.crt")
    assert second.serial_number != first.serial_number
    fleet.revoke_device(root, PASSPHRASE, "car-0002")
    revoked_b = load_cert(root / "devices" / "car-0002" / "device.crt")

    crl = fleet.load_crl(root)
    ca = load_cert(root / "ca" / "ca.crt")
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert {r.serial_number for r in crl} == {first.serial_number, revoked_b.serial_number}
    assert crl.next_update_utc is not None and crl.next_update_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)

    ledger = load_ledger(root)
    car1, car2 = ledger.devices["car-0001"], ledger.devices["car-0002"]
    assert [e.action for e in car1.history] == ["issued", "revoked", "rotated"]
    assert (car1.status, len(car1.certs), car1.current.revoked_at) == (Status.ACTIVE, 2, None)
    assert [e.action for e in car2.history] == ["issued", "revoked"]
    assert car2.status is Status.RETIRED
    assert not (root / "devices" / "car-0002" / "device.key").exists()
    assert not (root / "devices" / "car-0002.tar.gz").exists()
    with pytest.raises(ProvisioningError, match="retired"):
        fleet.rotate_device(root, PASSPHRASE, "car-0002")
    with pytest.raises(ProvisioningError, match="already exists"):
        fleet.add_device(root, PASSPHRASE, "car-0002", CAR)


def test_init_refuses_a_folder_in_use_and_a_short_passphrase(root: Path, tmp_path: Path) -> None:
    before = (root / "ca" / "ca.key").read_bytes()
    with pytest.raises(ProvisioningError, match="never overwritten"):
        fleet.init(root, PASSPHRASE, "localhost", 8883, None)
    assert (root / "ca" / "ca.key").read_bytes() == before
    with pytest.raises(ProvisioningError, match="at least"):
        fleet.init(tmp_path / "other", b"short", "localhost", 8883, None)
    assert not (tmp_path / "other").exists()


def test_the_acl_covers_every_channel_by_pattern_and_names_each_server(root: Path) -> None:
    assert set(broker.DEVICE_ACCESS) == set(Channel)
    fleet.add_server(root, PASSPHRASE, "w2")
    acl = (root / "broker" / "acl").read_text()
    assert "pattern read kc/v1/dev/%u/ack" in acl
    assert "pattern write kc/v1/dev/%u/report" in acl
    assert "user kuaichu-server\ntopic readwrite kc/v1/#" in acl
    assert "user kuaichu-server-w2\ntopic readwrite kc/v1/#" in acl
    assert "car-" not in acl  # no line per device
    assert os.access(root / "server-w2" / "client.key", os.R_OK)
