"""runtime.mqtt_session against a real Mosquitto (the fleet's configuration, persistence off): what
the device's link, the server's intake and call signalling all rely on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiomqtt
import pytest

from protocol.topics import Channel, device_filter, device_topic
from runtime.mqtt import BrokerSection
from runtime.mqtt_session import MqttSession, NotConnected, Subscription
from tests.pki import FleetPki
from tests.services import Mosquitto
from tests.wire import mqtt_client

DEVICE = "car-session-01"
logger = logging.getLogger(__name__)


class Owner:
    """What a session's owner hears, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.messages: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.changes: asyncio.Queue[bool] = asyncio.Queue()

    def handle(self, topic: str, payload: bytes) -> None:
        self.messages.put_nowait((topic, payload))

    async def on_connect(self, client: aiomqtt.Client) -> None:
        self.events.append("connect")

    async def on_change(self, up: bool) -> None:
        self.events.append("up" if up else "down")
        self.changes.put_nowait(up)


def server_session(broker: Mosquitto, pki: FleetPki, owner: Owner) -> MqttSession:
    cfg = BrokerSection(host="127.0.0.1", port=pki.server_port(broker.port), tls=pki.server_tls())
    return MqttSession(
        cfg,
        "kuaichu-server-session-test",
        [Subscription(device_filter(Channel.REPORT), qos=1)],
        logger=logger,
        label="session test",
        on_connect=owner.on_connect,
        on_change=owner.on_change,
    )


@asynccontextmanager
async def running(session: MqttSession, owner: Owner) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(session.run(owner.handle))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def report_from_device(broker: Mosquitto, pki: FleetPki, payload: bytes) -> None:
    async with mqtt_client(broker.port, DEVICE, pki.device_tls(DEVICE)) as device:
        await device.publish(device_topic(DEVICE, Channel.REPORT), payload, qos=1)


async def test_messages_reach_the_handler_and_the_subscription_is_renewed_after_a_broker_restart(
    broker: Mosquitto, fleet_pki: FleetPki
) -> None:
    owner = Owner()
    session = server_session(broker, fleet_pki, owner)
    async with running(session, owner):
        assert await asyncio.wait_for(owner.changes.get(), 10) is True
        await report_from_device(broker, fleet_pki, b"before")
        assert await asyncio.wait_for(owner.messages.get(), 10) == (device_topic(DEVICE, Channel.REPORT), b"before")

        broker.restart()  # persistence is off: the broker forgets the session and its subscription
        assert await asyncio.wait_for(owner.changes.get(), 10) is False
        assert await asyncio.wait_for(owner.changes.get(), 10) is True
        await report_from_device(broker, fleet_pki, b"after")
        assert await asyncio.wait_for(owner.messages.get(), 10) == (device_topic(DEVICE, Channel.REPORT), b"after")
        # on_connect runs on every connection, before the session counts as up
        assert owner.events == ["connect", "up", "down", "connect", "up"]
    assert owner.events[-1] == "down"  # stopping while up is a change too


async def test_publishing_waits_for_the_broker_and_says_when_the_link_is_down(
    broker: Mosquitto, fleet_pki: FleetPki
) -> None:
    owner = Owner()
    session = server_session(broker, fleet_pki, owner)
    with pytest.raises(NotConnected):
        await session.publish(device_topic(DEVICE, Channel.CMD), b"early", 1)
    with pytest.raises(NotConnected):
        session.publish_nowait(device_topic(DEVICE, Channel.CMD), b"early", 1)
    async with running(session, owner):
        assert await asyncio.wait_for(owner.changes.get(), 10) is True
        async with mqtt_client(broker.port, DEVICE, fleet_pki.device_tls(DEVICE)) as device:
            await device.subscribe(device_topic(DEVICE, Channel.CMD), qos=1)
            await session.publish(device_topic(DEVICE, Channel.CMD), b"awaited", 1)
            session.publish_nowait(device_topic(DEVICE, Channel.CMD), b"handed over", 1)
            got: list[object] = []
            async with asyncio.timeout(10):
                async for message in device.messages:
                    got.append(message.payload)
                    if len(got) == 2:
                        break
        assert got == [b"awaited", b"handed over"]

        broker.stop()
        assert await asyncio.wait_for(owner.changes.get(), 10) is False
        assert not session.connected.is_set()
        with pytest.raises(NotConnected):
            await session.publish(device_topic(DEVICE, Channel.CMD), b"while down", 1)
        broker.start()
        assert await asyncio.wait_for(owner.changes.get(), 15) is True


async def test_a_clean_stop_says_its_farewell_on_the_open_connection_instead_of_the_will(
    broker: Mosquitto, fleet_pki: FleetPki
) -> None:
    state = device_topic(DEVICE, Channel.STATE)
    cfg = BrokerSection(host="127.0.0.1", port=broker.port, tls=fleet_pki.device_tls(DEVICE))

    async def farewell(client: aiomqtt.Client) -> None:
        await client.publish(state, b"said goodbye", qos=1, retain=True, timeout=2)

    owner = Owner()
    session = MqttSession(
        cfg,
        DEVICE,
        [Subscription(device_topic(DEVICE, Channel.CMD), qos=1)],
        logger=logger,
        label=f"device {DEVICE}",
        will=aiomqtt.Will(state, b"gone", qos=1, retain=True),
        on_change=owner.on_change,
        farewell=farewell,
    )
    async with mqtt_client(
        fleet_pki.server_port(broker.port), "kuaichu-server-watch", fleet_pki.server_tls()
    ) as watcher:
        await watcher.subscribe(device_filter(Channel.STATE), qos=1)
        async with running(session, owner):
            assert await asyncio.wait_for(owner.changes.get(), 10) is True
        assert owner.events == ["up", "down"]
        payloads: list[object] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                async for message in watcher.messages:
                    payloads.append(message.payload)
    assert payloads == [b"said goodbye"]  # a clean disconnect: the broker does not send the will


async def test_a_message_its_owner_fails_on_leaves_the_session_handling_the_next(
    broker: Mosquitto, fleet_pki: FleetPki, caplog: pytest.LogCaptureFixture
) -> None:
    owner = Owner()
    handled = owner.handle

    def fragile(topic: str, payload: bytes) -> None:
        if payload == b"poison":
            raise RecursionError("maximum recursion depth exceeded")
        handled(topic, payload)

    owner.handle = fragile  # type: ignore[method-assign]
    session = server_session(broker, fleet_pki, owner)
    async with running(session, owner) as task:
        assert await asyncio.wait_for(owner.changes.get(), 10) is True
        await report_from_device(broker, fleet_pki, b"poison")
        await report_from_device(broker, fleet_pki, b"next")
        assert await asyncio.wait_for(owner.messages.get(), 10) == (device_topic(DEVICE, Channel.REPORT), b"next")
        assert not task.done()
        assert owner.events == ["connect", "up"]  # the same connection carried on
    assert any("was not handled" in r.getMessage() and r.exc_info for r in caplog.records)
