"""The generated broker configuration, run as written by a real Mosquitto: who may connect, and
what each identity may publish and read."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import signal
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from device.config import load_device_config
from protocol.messages import DeviceKind
from protocol.topics import Channel, device_filter, device_topic, shared
from provisioning import bundle, fleet
from provisioning.ca import Usage, create_authority, issue, load_authority, write_cert, write_key
from runtime.mqtt import BrokerSection, TlsSection, make_client, tls_context
from tests.services import Mosquitto, free_port

PASSPHRASE = b"a long test passphrase"
CAR = bundle.Placement(DeviceKind.IN_CAR, plate="云A5H821", vin="LSVAU2180N2183294")


@dataclass
class Fleet:
    root: Path
    broker: Mosquitto

    def device(self, device_id: str) -> BrokerSection:
        """The device's own broker settings from its device.toml, its files read from the station."""
        folder = self.root / "devices" / device_id
        cfg = load_device_config(folder / "device.toml").broker
        return self.client_settings(cfg, folder / "device.crt", folder / "device.key")

    def server(self, folder: str = "server") -> BrokerSection:
        return self.client_settings(None, self.root / folder / "client.crt", self.root / folder / "client.key")

    def client_settings(self, base: BrokerSection | None, cert: Path, key: Path) -> BrokerSection:
        tls = TlsSection(ca_file=self.root / "ca" / "ca.crt", cert_file=cert, key_file=key)
        if base is None:
            assert self.broker.server_port is not None
            return BrokerSection(host="localhost", port=self.broker.server_port, tls=tls)
        return base.model_copy(update={"tls": tls})

    def kept(self, cfg: BrokerSection) -> BrokerSection:
        """``cfg`` with a copy of its certificate and key, which the station's renewal, rotation or
        revocation then replaces or deletes: what a client still holding the old identity connects with."""
        assert cfg.tls is not None
        keep = self.root / "kept"
        keep.mkdir(mode=0o700)
        copies = {name: Path(shutil.copy(getattr(cfg.tls, name), keep)) for name in ("cert_file", "key_file")}
        return cfg.model_copy(update={"tls": cfg.tls.model_copy(update=copies)})

    def reload(self) -> None:
        assert self.broker.proc is not None
        self.broker.proc.send_signal(signal.SIGHUP)


@pytest.fixture
def tls_fleet() -> Iterator[Fleet]:
    """A fleet whose broker folder the broker's own user can reach: a pytest tmp_path is root-only,
    and Mosquitto started as root reads its ACL after dropping to the ``mosquitto`` user."""
    root = Path(tempfile.mkdtemp(prefix="kc-fleet-"))
    try:
        port, server_port = free_port(), free_port()
        fleet.init(root, PASSPHRASE, "localhost", port, fleet.default_broker_user(), server_port=server_port)
        for device_id in ("car-0001", "car-0002"):
            fleet.add_device(root, PASSPHRASE, device_id, CAR)
        broker = Mosquitto(port, root / "broker" / "mosquitto.conf", root / "mosquitto.log", server_port)
        broker.start()
        try:
            yield Fleet(root, broker)
        finally:
            broker.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def connected(cfg: BrokerSection, identifier: str) -> AsyncIterator[aiomqtt.Client]:
    async with make_client(cfg, identifier, clean_start=True) as client:
        yield client


def connect_packet(identifier: str) -> bytes:
    """An MQTT 5 CONNECT with clean start and no user name (the broker takes the certificate's CN)."""
    client_id = identifier.encode()
    body = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + len(client_id).to_bytes(2, "big") + client_id
    return bytes([0x10, len(body)]) + body


async def connack(port: int, context: ssl.SSLContext, identifier: str) -> int | None:
    """The CONNACK reason code the broker answers, or None when it ends the connection first, as it
    does when it refuses the client's certificate. Spoken at the byte level because a client
    library cannot tell such a refusal from a slow broker until its timeout."""
    try:
        async with asyncio.timeout(20):
            reader, writer = await asyncio.open_connection("localhost", port, ssl=context)
            try:
                writer.write(connect_packet(identifier))
                await writer.drain()
                head = await reader.readexactly(4)
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
        return None
    assert head[0] == 0x20, head  # CONNACK
    return head[3]


async def refused(cfg: BrokerSection, identifier: str) -> bool:
    assert cfg.tls is not None
    code = await connack(cfg.port, tls_context(cfg.tls), identifier)
    assert code in (None, 0), f"unexpected CONNACK reason {code}"
    return code is None


async def refused_within(cfg: BrokerSection, identifier: str, seconds: float = 15) -> bool:
    """Whether the broker starts refusing ``cfg`` (after a reload) before the deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await refused(cfg, identifier):
            return True
        await asyncio.sleep(0.2)
    return False


async def next_message(client: aiomqtt.Client, timeout: float = 10) -> aiomqtt.Message:
    async with asyncio.timeout(timeout):
        return await anext(aiter(client.messages))


async def test_a_device_connects_with_its_own_bundle(tls_fleet: Fleet) -> None:
    async with connected(tls_fleet.device("car-0001"), "car-0001") as client:
        await client.publish(device_topic("car-0001", Channel.HEARTBEAT), b"{}", qos=1)


async def test_clients_without_a_valid_fleet_certificate_are_refused(tls_fleet: Fleet, tmp_path: Path) -> None:
    own = tls_fleet.device("car-0001")
    assert own.tls is not None
    ca = load_authority(tls_fleet.root / "ca" / "ca.crt", tls_fleet.root / "ca" / "ca.key", PASSPHRASE)
    other_ca = create_authority("Kuaichu fleet CA")  # the same name, another key
    self_signed = create_authority("car-0001")
    expired_start = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    strangers = {
        "other-ca": issue(other_ca, "car-0001", Usage.CLIENT),
        "self-signed": (self_signed.cert, self_signed.key),
        "expired": issue(ca, "car-0001", Usage.CLIENT, not_before=expired_start, days=30),
    }
    for name, (cert, key) in strangers.items():
        write_cert(tmp_path / f"{name}.crt", cert)
        write_key(tmp_path / f"{name}.key", key)
        tls = own.tls.model_copy(update={"cert_file": tmp_path / f"{name}.crt", "key_file": tmp_path / f"{name}.key"})
        assert await refused(own.model_copy(update={"tls": tls}), "car-0001"), name

    # No certificate at all: TLS to the right broker, but nothing to show.
    assert await connack(own.port, ssl.create_default_context(cafile=str(own.tls.ca_file)), "car-0001") is None
    # The real one still gets in: the refusals above were about the certificates.
    assert not await refused(own, "car-0001")


async def test_a_device_cannot_knock_another_off_the_broker_with_its_client_id(tls_fleet: Fleet) -> None:
    """Found probing the demo: the kiosk's certificate with the car's client id closed the car's
    connection, and the two kept evicting each other. The devices' listener now forces the id to
    the certificate's CN, and the server workers' listener takes no device certificate at all."""
    async with (
        connected(tls_fleet.server(), "kuaichu-server-test") as server,
        connected(tls_fleet.device("car-0001"), "car-0001") as car,
    ):
        await car.subscribe(device_topic("car-0001", Channel.ACK), qos=1)
        async with connected(tls_fleet.device("car-0002"), "car-0001") as intruder:
            # It is car-0002 to the broker, whatever id it asked for: its own topics only.
            await server.subscribe(shared(device_filter(Channel.REPORT)), qos=1)
            await intruder.publish(device_topic("car-0001", Channel.REPORT), b"forged", qos=1)
            await intruder.publish(device_topic("car-0002", Channel.REPORT), b"from car-0002", qos=1)
            message = await next_message(server)
            assert (str(message.topic), message.payload) == (device_topic("car-0002", Channel.REPORT), b"from car-0002")
            # The car is still connected: it gets what the server sends it.
            await server.publish(device_topic("car-0001", Channel.ACK), b"ack for car-0001", qos=1)
            assert (await next_message(car)).payload == b"ack for car-0001"
    # The server workers' port refuses a device's certificate, and the devices' port a worker's.
    device, worker = tls_fleet.device("car-0002"), tls_fleet.server()
    assert await refused(device.model_copy(update={"port": worker.port}), "kuaichu-server-w1")
    assert await refused(worker.model_copy(update={"port": device.port}), "kuaichu-server-w1")
    assert not await refused(worker, "kuaichu-server-w1")


async def test_a_device_cannot_report_in_another_devices_name(tls_fleet: Fleet) -> None:
    async with (
        connected(tls_fleet.server(), "kuaichu-server-test") as server,
        connected(tls_fleet.device("car-0001"), "car-0001") as a,
        connected(tls_fleet.device("car-0002"), "car-0002") as b,
    ):
        await server.subscribe(shared(device_filter(Channel.REPORT)), qos=1)
        await a.publish(device_topic("car-0002", Channel.REPORT), b"forged by car-0001", qos=1)
        await a.publish("kc/v1/srv/case-events", b"forged by car-0001", qos=1)
        await b.publish(device_topic("car-0002", Channel.REPORT), b"from car-0002", qos=1)
        message = await next_message(server)
        assert (str(message.topic), message.payload) == (device_topic("car-0002", Channel.REPORT), b"from car-0002")


async def test_a_device_reads_only_its_own_acks_and_cannot_forge_them(tls_fleet: Fleet) -> None:
    async with (
        connected(tls_fleet.server(), "kuaichu-server-test") as server,
        connected(tls_fleet.device("car-0001"), "car-0001") as a,
        connected(tls_fleet.device("car-0002"), "car-0002") as b,
    ):
        await a.subscribe(device_topic("car-0001", Channel.ACK), qos=1)
        for snoop in (device_filter(Channel.REPORT), device_filter(Channel.ACK), "kc/v1/#", "#"):
            await a.subscribe(snoop, qos=1)
        await a.publish(device_topic("car-0001", Channel.ACK), b"forged ack", qos=1)
        await a.publish(device_topic("car-0001", Channel.CMD), b"forged cmd", qos=1)
        await b.publish(device_topic("car-0002", Channel.REPORT), b"car-0002 report", qos=1)
        await server.publish(device_topic("car-0002", Channel.ACK), b"ack for car-0002", qos=1)
        await server.publish(device_topic("car-0001", Channel.ACK), b"ack for car-0001", qos=1)
        message = await next_message(a)
        assert (str(message.topic), message.payload) == (device_topic("car-0001", Channel.ACK), b"ack for car-0001")


async def test_the_server_certificate_reads_reports_by_shared_subscription_and_acks_devices(tls_fleet: Fleet) -> None:
    async with (
        connected(tls_fleet.server(), "kuaichu-server-test") as server,
        connected(tls_fleet.device("car-0001"), "car-0001") as device,
    ):
        await server.subscribe(shared(device_filter(Channel.REPORT)), qos=1)
        await device.subscribe(device_topic("car-0001", Channel.ACK), qos=1)
        await device.publish(device_topic("car-0001", Channel.REPORT), b"report", qos=1)
        report = await next_message(server)
        assert (str(report.topic), report.payload) == (device_topic("car-0001", Channel.REPORT), b"report")
        await server.publish(device_topic("car-0001", Channel.ACK), b"ack", qos=1)
        ack = await next_message(device)
        assert ack.payload == b"ack"


async def test_another_server_worker_is_admitted_after_a_reload(tls_fleet: Fleet) -> None:
    fleet.add_server(tls_fleet.root, PASSPHRASE, "w2")
    tls_fleet.reload()
    deadline = time.monotonic() + 15
    async with connected(tls_fleet.device("car-0001"), "car-0001") as device:
        while True:  # until the broker has reread the ACL
            async with connected(tls_fleet.server("server-w2"), "kuaichu-server-w2") as worker:
                await worker.subscribe(shared(device_filter(Channel.REPORT)), qos=1)
                await device.publish(device_topic("car-0001", Channel.REPORT), b"report", qos=1)
                with contextlib.suppress(TimeoutError):
                    message = await next_message(worker, timeout=1)
                    assert message.payload == b"report"
                    return
            assert time.monotonic() < deadline, "worker w2 never received a report"


async def test_a_renewed_server_certificate_connects_and_the_old_one_still_does(tls_fleet: Fleet) -> None:
    """Renewal costs no outage: workers still holding the old certificate keep connecting to the
    workers' listener while the new one is installed and each restarted in turn."""
    old = tls_fleet.kept(tls_fleet.server())
    assert old.tls is not None

    fleet.renew_server(tls_fleet.root, PASSPHRASE, None)
    assert old.tls.cert_file.read_bytes() != (tls_fleet.root / "server" / "client.crt").read_bytes()
    tls_fleet.broker.restart()  # all it reads at start, read again
    assert not await refused(old, "kuaichu-server-old")
    assert not await refused(tls_fleet.server(), "kuaichu-server-new")


async def test_a_revoked_device_is_refused_after_a_reload_and_others_still_connect(tls_fleet: Fleet) -> None:
    revoked = tls_fleet.kept(tls_fleet.device("car-0001"))  # revoke deletes the station's key
    assert not await refused(revoked, "car-0001")

    fleet.revoke_device(tls_fleet.root, PASSPHRASE, "car-0001")
    tls_fleet.reload()
    assert await refused_within(revoked, "car-0001")
    assert not await refused(tls_fleet.device("car-0002"), "car-0002")
    tls_fleet.broker.restart()
    assert await refused(revoked, "car-0001")


async def test_after_rotation_the_old_certificate_is_refused_and_the_new_one_works(tls_fleet: Fleet) -> None:
    old = tls_fleet.kept(tls_fleet.device("car-0001"))

    fleet.rotate_device(tls_fleet.root, PASSPHRASE, "car-0001")
    tls_fleet.reload()
    assert await refused_within(old, "car-0001")
    assert not await refused(tls_fleet.device("car-0001"), "car-0001")
