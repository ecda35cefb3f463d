"""The test session's fleet PKI, made by ``provisioning`` exactly as ``kuaichu provision init`` makes
a real one, so that every test that talks to a broker does so over mutual TLS with the pattern ACL
and the CRL of a real fleet.

Device certificates are issued on first use of an id (an EC P-256 signature: milliseconds), so a
test may name any device it likes. Each broker gets its own copy of the broker folder (the same CA,
certificate, ACL and CRL) with a configuration for its own ports, because tests start many brokers.
A broker has two listeners: devices connect to ``port`` (their client id forced to their
certificate's CN), the server to ``server_port``; ``server_port(port)`` finds the second from the
first for helpers that are handed only the devices' port.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from protocol.messages import DeviceKind
from provisioning import broker, bundle, fleet
from runtime.mqtt import TlsSection
from tests.services import Mosquitto, free_port

PASSPHRASE = b"the test fleet's CA passphrase"
BROKER_HOST = "127.0.0.1"
# Only the certificate matters to the broker; the placement just has to be a valid one.
PLACEMENT = bundle.Placement(DeviceKind.IN_CAR, plate="云A5H821", vin="LSVAM4187C2184521")


class FleetPki:
    """A fleet folder plus the per-broker copies made from it; all under one 0o711 temp dir, because
    Mosquitto started as root reads its ACL after dropping to the ``mosquitto`` user."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # The port recorded here only reaches the bundles' device.toml, which the tests do not load;
        # every broker writes its configuration for its own port (broker_conf).
        self.layout = fleet.init(root / "fleet", PASSPHRASE, BROKER_HOST, 8883, fleet.default_broker_user())
        self._brokers = root / "brokers"
        self._brokers.mkdir(mode=0o711)
        self._issued: set[str] = set()
        self._server_ports: dict[int, int] = {}

    def server_tls(self) -> TlsSection:
        folder = self.layout.server(fleet.SERVER_CN)
        return TlsSection(ca_file=folder / "ca.crt", cert_file=folder / "client.crt", key_file=folder / "client.key")

    def device_tls(self, device_id: str) -> TlsSection:
        """The device's bundle files, issuing its certificate the first time the id is seen."""
        if device_id not in self._issued:
            fleet.add_device(self.layout.root, PASSPHRASE, device_id, PLACEMENT)
            self._issued.add(device_id)
        folder = self.layout.device(device_id)
        return TlsSection(
            ca_file=folder / bundle.CA_NAME, cert_file=folder / bundle.CERT_NAME, key_file=folder / bundle.KEY_NAME
        )

    def server_port(self, port: int) -> int:
        """The server workers' listener of the broker whose devices' listener is ``port``; a port
        that no broker of this fleet has (a configuration only read, never connected) as it is."""
        return self._server_ports.get(port, port)

    def broker_conf(self, port: int, server_port: int) -> Path:
        """A copy of the fleet's broker folder configured for these ports; returns its mosquitto.conf."""
        folder = Path(tempfile.mkdtemp(prefix=f"{port}-", dir=self._brokers))
        names = (broker.ACL_NAME, broker.CA_NAME, broker.WORKERS_CA_NAME, broker.CERT_NAME, broker.KEY_NAME)
        for name in (*names, broker.CRL_NAME):
            shutil.copy2(self.layout.broker / name, folder / name)
        broker.write_conf(folder, port, server_port)
        self._server_ports[port] = server_port
        user = fleet.default_broker_user()
        if user is not None:
            fleet.give_to(folder, user)
        return folder / broker.CONF_NAME

    @contextlib.contextmanager
    def mosquitto(self, log: Path) -> Iterator[Mosquitto]:
        """A private broker on a free port running the fleet's generated configuration."""
        port, server_port = free_port(), free_port()
        running = Mosquitto(port, self.broker_conf(port, server_port), log, server_port)
        running.start()
        try:
            yield running
        finally:
            running.stop()


def tls_table(tls: TlsSection) -> str:
    """``tls`` as the ``[broker.tls]`` table of a device.toml or server.toml."""
    files = {"ca_file": tls.ca_file, "cert_file": tls.cert_file, "key_file": tls.key_file}
    return "[broker.tls]\n" + "".join(f"{key} = {json.dumps(str(path))}\n" for key, path in files.items()) + "\n"


_current: FleetPki | None = None


@contextlib.contextmanager
def session_pki() -> Iterator[FleetPki]:
    """The PKI that ``current()`` returns while this lasts; removed afterwards."""
    global _current
    root = Path(tempfile.mkdtemp(prefix="kc-test-pki-"))
    root.chmod(0o711)
    try:
        _current = FleetPki(root)
        yield _current
    finally:
        _current = None
        shutil.rmtree(root, ignore_errors=True)


def current() -> FleetPki:
    """The session's PKI, for helpers called with only a port and a device id."""
    if _current is None:
        raise RuntimeError("no test PKI: use the broker fixture (or tests.pki.session_pki())")
    return _current
