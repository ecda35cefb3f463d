"""A fleet sharded over two brokers: a server worker connected to both takes reports from units on
either, and a unit whose broker is killed (SIGKILL) fails over to the other with its unacknowledged
report, which becomes exactly one case. Two real Mosquitto brokers with the fleet's TLS and ACL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from pydantic import ValidationError

from device.config import load_device_config
from protocol.messages import Presence, encode
from protocol.topics import Channel, device_topic
from provisioning import bundle, fleet
from runtime.mqtt import BrokerAddress, BrokerSection
from server.outbound import Whereabouts
from tests.commands import PASSPHRASE, provision
from tests.conftest import make_server_config, start_server
from tests.devices import device_config, outbox_rows, running_device
from tests.pki import PLACEMENT, FleetPki
from tests.reports import in_car_report
from tests.stored import cases_in
from tests.waiting import wait_for
from tests.wire import mqtt_client, publish_report, raw_device

UNIT = "car-failover-01"


def test_a_broker_listed_twice_or_without_tls_off_this_machine_is_refused() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        BrokerSection(host="127.0.0.1", port=1883, others=[BrokerAddress(host="127.0.0.1", port=1883)])
    with pytest.raises(ValidationError, match="tls is required"):
        BrokerSection(host="127.0.0.1", port=1883, others=[BrokerAddress(host="mqtt-b.example", port=8883)])
    one = BrokerSection(host="127.0.0.1", port=1883)
    assert one.each() == [one]
    two = BrokerSection(host="127.0.0.1", port=1883, others=[BrokerAddress(host="localhost", port=1884)])
    assert [b.address for b in two.each()] == ["127.0.0.1:1883", "localhost:1884"]


def test_a_presence_left_on_a_broker_the_unit_moved_off_is_not_news() -> None:
    where = Whereabouts(2)
    at = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
    assert list(where.of(UNIT)) == [0, 1]  # not known yet: every broker
    assert where.presence(UNIT, 0, Presence(state="online", at=at))
    assert list(where.of(UNIT)) == [0]
    # On broker 1 after a failover: its new "online" moves it; broker 0's will and its old
    # retained "online" (handed to a worker that connects again) are leftovers.
    assert where.presence(UNIT, 1, Presence(state="online", at=at + timedelta(seconds=5)))
    assert list(where.of(UNIT)) == [1]
    assert not where.presence(UNIT, 0, Presence(state="offline"))
    assert not where.presence(UNIT, 0, Presence(state="online", at=at))
    assert list(where.of(UNIT)) == [1]
    assert where.presence(UNIT, 1, Presence(state="offline"))
    # Whatever else it sends says where it is.
    where.heard(UNIT, 0)
    assert list(where.of(UNIT)) == [0]
    assert Whereabouts(1).presence(UNIT, 0, Presence(state="offline"))


def test_a_fleet_sharded_over_two_brokers_is_provisioned_for_both(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    hosts = ["mqtt-a.kuaichu.example.cn", "mqtt-b.kuaichu.example.cn"]
    init = ["init", "--dir", str(root), "--broker-user", ""]
    twice = provision(*init, "--broker-host", hosts[0], "--broker-host", hosts[0])
    assert twice.returncode == 1 and "named twice" in twice.stderr
    done = provision(*init, "--broker-host", hosts[0], "--broker-host", hosts[1])
    assert done.returncode == 0, done.stderr
    assert "the same files" in done.stdout
    # One broker certificate for both, as each runs a copy of the one broker folder.
    cert = x509.load_pem_x509_certificate((root / "broker" / "server.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert set(hosts) <= set(names)
    listed = provision("list", "--dir", str(root))
    assert all(f"broker {host}:8883" in listed.stdout for host in hosts), listed.stdout

    firsts = set()
    for n in range(8):
        device_id = f"car-shard-{n:02d}"
        fleet.add_device(root, PASSPHRASE.encode(), device_id, PLACEMENT)
        cfg = load_device_config(fleet.Layout(root).device(device_id) / bundle.CONFIG_NAME).broker
        assert sorted(b.host for b in cfg.each()) == hosts and all(b.port == 8883 for b in cfg.each())
        firsts.add(cfg.host)
    assert firsts == set(hosts)  # each broker is the first choice of some of the units


async def test_units_on_either_broker_are_served_and_a_unit_fails_over_with_its_report(
    fleet_pki: FleetPki, tmp_path: Path
) -> None:
    with fleet_pki.mosquitto(tmp_path / "a.log") as a, fleet_pki.mosquitto(tmp_path / "b.log") as b:
        cfg = make_server_config(tmp_path / "server", a.port)
        others = [BrokerAddress(host="127.0.0.1", port=fleet_pki.server_port(b.port))]
        cfg = cfg.model_copy(update={"broker": cfg.broker.model_copy(update={"others": others})})
        server = await start_server(cfg)
        try:
            await wait_for("the worker on both brokers", lambda: on_every_broker(server.url), within_s=20)
            # One raw unit on each broker: each report is answered on the broker it came in on.
            for port, unit in ((a.port, "car-shard-a"), (b.port, "car-shard-b")):
                async with raw_device(port, unit) as (client, acks):
                    await publish_report(client, unit, encode(in_car_report(unit)))
                    ack = await asyncio.wait_for(acks.get(), 15)
                    assert ack.status == "accepted" and ack.case_no, unit
        finally:
            await server.stop()

        # The server away, so that the unit's report is taken by broker A and never answered; then
        # A dies with it. The unit must move to B and send it again from its outbox.
        unit_cfg = device_config(
            tmp_path / "car", a.port, UNIT, broker={"others": [{"host": "127.0.0.1", "port": b.port}]}
        )
        async with (
            mqtt_client(fleet_pki.server_port(a.port), "kuaichu-server-observer", fleet_pki.server_tls()) as watch,
            running_device(unit_cfg) as device,
        ):
            await watch.subscribe(device_topic(UNIT, Channel.REPORT), qos=1)
            await asyncio.wait_for(device.app.link.connected.wait(), 10)
            assert device.app.link.broker.port == a.port
            await device.wait_fix()
            await device.press()
            seen = await asyncio.wait_for(anext(aiter(watch.messages)), 15)
            assert seen.topic.value == device_topic(UNIT, Channel.REPORT)
            assert a.proc is not None
            a.proc.kill()
            a.proc.wait()

            server = await start_server(cfg)
            try:
                rows = await wait_for(
                    "the report accepted through broker B",
                    lambda: accepted(unit_cfg.device.data_dir),
                    within_s=60,
                )
                assert device.app.link.broker.port == b.port and device.app.link.connected.is_set()
                await asyncio.sleep(2.0)  # a late resend must not open a second case
            finally:
                await server.stop()
        [(report_id, _, case_no)] = rows
        assert outbox_rows(unit_cfg.device.data_dir) == rows
        cases = await cases_in(cfg.database_url)
        assert sorted(str(c.device_id) for c in cases) == sorted(["car-shard-a", "car-shard-b", UNIT])
        [mine] = [c for c in cases if c.device_id == UNIT]
        assert (mine.report_id, mine.case_no) == (report_id, case_no)


async def on_every_broker(url: str) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        ready = (await http.get("/readyz")).json()
    return bool(ready["status"] == "ready" and ready["brokers_down"] == [])


async def accepted(data_dir: Path) -> list[tuple[str, str, str | None]] | None:
    rows = outbox_rows(data_dir)
    return rows if rows and all(state == "accepted" for _, state, _ in rows) else None
