"""``kuaichu provision`` as an operator types it."""

from __future__ import annotations

from pathlib import Path

from provisioning.ledger import Status, load_ledger
from tests.commands import PASSPHRASE, provision


def test_init_needs_a_passphrase_and_never_takes_it_on_the_command_line(tmp_path: Path) -> None:
    done = provision("init", "--dir", str(tmp_path / "fleet"), passphrase=None)
    assert done.returncode == 1
    assert "KUAICHU_CA_PASSPHRASE" in done.stderr
    assert not (tmp_path / "fleet").exists()
    done = provision("init", "--dir", str(tmp_path / "fleet"), "--passphrase", PASSPHRASE, passphrase=None)
    assert done.returncode == 2  # no such option
    assert not (tmp_path / "fleet").exists()


def test_init_from_a_passphrase_file_then_refuses_to_run_again(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    root = tmp_path / "fleet"
    args = ["init", "--dir", str(root), "--broker-host", "10.8.0.1", "--broker-port", "18883"]
    same_port = provision(*args, "--server-port", "18883", "--passphrase-file", str(secret), passphrase=None)
    assert same_port.returncode == 1 and "--server-port" in same_port.stderr
    assert not root.exists()  # refused before anything was written, so the init below goes ahead
    done = provision(*args, "--passphrase-file", str(secret), "--broker-user", "", passphrase=None)
    assert done.returncode == 0, done.stderr
    assert "mosquitto -c" in done.stdout
    conf = (root / "broker" / "mosquitto.conf").read_text()
    for line in (
        "listener 18883",
        "require_certificate true",
        "use_identity_as_username true",
        "allow_anonymous false",
    ):
        assert line in conf.splitlines()
    ca_key = (root / "ca" / "ca.key").read_bytes()
    again = provision(*args)
    assert again.returncode == 1
    assert "never overwritten" in again.stderr
    assert (root / "ca" / "ca.key").read_bytes() == ca_key


def test_device_revoke_rotate_and_list(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    assert provision("init", "--dir", str(root), "--broker-user", "").returncode == 0
    car = ["--kind", "in-car", "--plate", "云A5H821", "--vin", "LSVAU2180N2183294", "--dir", str(root)]
    done = provision("device", "car-0001", *car)
    assert done.returncode == 0, done.stderr
    assert (root / "devices" / "car-0001.tar.gz").is_file()
    kiosk = ["--kind", "kiosk", "--site", "102.7041,25.0487", "--site-name", "翠湖南路", "--dir", str(root)]
    assert provision("device", "kiosk-017", *kiosk).returncode == 0

    refusals = {
        "bad id": provision("device", "Car_01", *car),
        "bad plate": provision("device", "car-0002", "--kind", "in-car", "--plate", "ABC123", "--dir", str(root)),
        "kiosk without site": provision("device", "kiosk-018", "--kind", "kiosk", "--dir", str(root)),
        "existing id": provision("device", "car-0001", *car),
        "wrong passphrase": provision("device", "car-0003", *car, passphrase="not the passphrase!"),
    }
    for name, refusal in refusals.items():
        assert refusal.returncode == 1, name
    assert "vehicle.plate" in refusals["bad plate"].stderr
    assert "rotate" in refusals["existing id"].stderr
    assert sorted(p.name for p in (root / "devices").iterdir()) == [
        "car-0001",
        "car-0001.tar.gz",
        "kiosk-017",
        "kiosk-017.tar.gz",
    ]

    assert provision("rotate", "car-0001", "--dir", str(root)).returncode == 0
    revoked = provision("revoke", "kiosk-017", "--dir", str(root))
    assert revoked.returncode == 0
    assert "reload mosquitto" in revoked.stdout
    ledger = load_ledger(root)
    assert ledger.devices["kiosk-017"].status is Status.RETIRED
    assert len(ledger.devices["car-0001"].certs) == 2

    listing = provision("list", "--dir", str(root), passphrase=None)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert any(line.split()[:4] == ["device", "car-0001", "in-car", "active"] for line in lines)
    assert any(line.split()[:4] == ["device", "kiosk-017", "kiosk", "retired"] for line in lines)
    assert any(line.split()[:2] == ["server", "kuaichu-server"] for line in lines)


def test_the_fleet_stun_servers_reach_every_device_toml(tmp_path: Path) -> None:
    from device.config import load_device_config

    root = tmp_path / "fleet"
    bad = provision("init", "--dir", str(root), "--stun", "turn:relay.example.cn:3478", "--broker-user", "")
    assert bad.returncode == 1 and "not a STUN URL" in bad.stderr and not root.exists()
    stun = ["stun:stun.kuaichu.example.cn:3478", "stun:10.8.0.1"]
    done = provision("init", "--dir", str(root), "--stun", stun[0], "--stun", stun[1], "--broker-user", "")
    assert done.returncode == 0, done.stderr
    done = provision("device", "kiosk-ice-01", "--kind", "kiosk", "--site", "102.7123,25.0406", "--dir", str(root))
    assert done.returncode == 0, done.stderr
    cfg = load_device_config(root / "devices" / "kiosk-ice-01" / "device.toml")
    assert [server.urls for server in cfg.webrtc.ice_servers] == [[stun[0]], [stun[1]]]


def test_turn_credentials_written_by_hand_survive_the_toml_writer(tmp_path: Path) -> None:
    from device.config import DeviceConfig, load_device_config
    from protocol.messages import DeviceKind
    from provisioning import bundle

    placement = bundle.Placement(DeviceKind.IN_CAR, plate="云A5H821")
    data = bundle.device_config("car-ice-02", placement, "mqtt.kuaichu.example.cn", 8883).model_dump()
    turn = {"urls": ["turn:relay.example.cn:3478?transport=tcp"], "username": "car-ice-02", "credential": 'p"w\\x'}
    data["webrtc"]["ice_servers"] = [turn]
    cfg = DeviceConfig.model_validate(data)
    bundle.write_config(tmp_path, cfg)  # refuses a file that does not read back as written
    assert load_device_config(tmp_path / "device.toml").webrtc.ice_servers[0].credential == 'p"w\\x'


def test_an_embassy_car_is_provisioned_with_its_plate_written_either_way(tmp_path: Path) -> None:
    from device.config import load_device_config
    from device.reports import vehicle_of
    from protocol.messages import Vehicle, decode, encode

    root = tmp_path / "fleet"
    assert provision("init", "--dir", str(root), "--broker-user", "").returncode == 0
    for device_id, written in (("car-embassy-1", "使014578"), ("car-embassy-2", "使014·578")):
        done = provision("device", device_id, "--kind", "in-car", "--plate", written, "--dir", str(root))
        assert done.returncode == 0, done.stderr
        cfg = load_device_config(root / "devices" / device_id / "device.toml")
        vehicle = vehicle_of(cfg)
        assert vehicle is not None and vehicle.plate == "使014578"
        assert decode(Vehicle, encode(vehicle)) == vehicle  # what its reports will carry


def test_server_certificates_are_added_and_renewed_with_the_ledger_keeping_each(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    assert provision("init", "--dir", str(root), "--broker-user", "").returncode == 0
    assert provision("server-cert", "w2", "--dir", str(root)).returncode == 0
    first_key = (root / "server" / "client.key").read_bytes()
    w2_key = (root / "server-w2" / "client.key").read_bytes()

    renewed = provision("server-cert", "--renew", "--dir", str(root))  # no name: kuaichu-server itself
    assert renewed.returncode == 0, renewed.stderr
    assert "stays valid until it expires" in renewed.stdout and "install-server.sh" in renewed.stdout
    assert (root / "server" / "client.key").read_bytes() != first_key
    assert (root / "server-w2" / "client.key").read_bytes() == w2_key
    assert provision("server-cert", "w2", "--renew", "--dir", str(root)).returncode == 0
    assert (root / "server-w2" / "client.key").read_bytes() != w2_key

    ledger = load_ledger(root)
    for name in ("kuaichu-server", "kuaichu-server-w2"):
        certs = ledger.servers[name]
        assert len(certs) == 2 and certs[0].serial != certs[1].serial, name
        assert all(cert.revoked_at is None for cert in certs), name  # the old one still connects
    assert ledger.revoked() == {}

    refusals = {
        "unknown": provision("server-cert", "w9", "--renew", "--dir", str(root)),
        "no name": provision("server-cert", "--dir", str(root)),
        "existing": provision("server-cert", "w2", "--dir", str(root)),
        "wrong passphrase": provision("server-cert", "--renew", "--dir", str(root), passphrase="not the passphrase!"),
    }
    for case, refusal in refusals.items():
        assert refusal.returncode == 1, case
    assert "no server kuaichu-server-w9" in refusals["unknown"].stderr
    assert "--renew" in refusals["no name"].stderr
    assert load_ledger(root) == ledger
    listing = provision("list", "--dir", str(root), passphrase=None).stdout.splitlines()
    assert any(line.split()[:2] == ["server", "kuaichu-server"] and line.endswith("certificates 2") for line in listing)
