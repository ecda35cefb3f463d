"""The device's broker connection: presence, acknowledgements in, reports and heartbeats out.

paho does not queue for us across reconnects in a way that survives a restart, so nothing of value
relies on it: reports wait in the outbox and are re-sent by ``device.app`` whenever the link comes
back; this module only keeps a connection, announces presence, and hands incoming answers over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiomqtt

from protocol import ProtocolError
from protocol.messages import Ack, Command, Presence, decode, encode
from protocol.topics import Channel, device_topic
from runtime.backoff import Backoff
from runtime.mqtt import BrokerSection, make_client

logger = logging.getLogger(__name__)


class Link:
    def __init__(
        self,
        broker: BrokerSection,
        device_id: str,
        firmware: str,
        on_ack: Callable[[Ack], Awaitable[None]],
        on_change: Callable[[bool], Awaitable[None]],
        on_command: Callable[[Command], None],
    ) -> None:
        self._broker = broker
        self._device_id = device_id
        self._firmware = firmware
        self._on_ack = on_ack
        self._on_change = on_change
        self._on_command = on_command
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()

    def topic(self, channel: Channel) -> str:
        return device_topic(self._device_id, channel)

    async def run(self) -> None:
        will = aiomqtt.Will(self.topic(Channel.STATE), encode(Presence(state="offline")), qos=1, retain=True)
        backoff = Backoff(0.5, 30.0)
        while True:
            try:
                async with make_client(self._broker, self._device_id, will=will) as client:
                    await client.subscribe(self.topic(Channel.ACK), qos=1)
                    await client.subscribe(self.topic(Channel.CMD), qos=1)
                    online = Presence(state="online", at=datetime.now(UTC), firmware=self._firmware)
                    await client.publish(self.topic(Channel.STATE), encode(online), qos=1, retain=True)
                    self._client = client
                    self.connected.set()
                    backoff.reset()
                    logger.info("device %s: connected to %s:%d", self._device_id, self._broker.host, self._broker.port)
                    await self._on_change(True)
                    try:
                        async for message in client.messages:
                            await self._on_message(message)
                    except asyncio.CancelledError:
                        # A clean stop does not fire the will: say offline ourselves before leaving.
                        offline = Presence(state="offline", at=datetime.now(UTC), firmware=self._firmware)
                        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                            await client.publish(
                                self.topic(Channel.STATE), encode(offline), qos=1, retain=True, timeout=2
                            )
                        raise
            except aiomqtt.MqttError as exc:
                delay = backoff.next()
                logger.warning("device %s: broker link down (%s); retrying in %.1fs", self._device_id, exc, delay)
            else:
                delay = backoff.next()
            finally:
                was_up = self.connected.is_set()
                self._client = None
                self.connected.clear()
                if was_up:
                    await self._on_change(False)
            await asyncio.sleep(delay)

    async def _on_message(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        if topic == self.topic(Channel.ACK):
            try:
                ack = decode(Ack, payload)
            except ProtocolError as exc:
                logger.error("device %s: unreadable ack refused: %s (%s)", self._device_id, exc.reason, exc.detail)
                return
            await self._on_ack(ack)
        elif topic == self.topic(Channel.CMD):
            try:
                command = decode(Command, payload)
            except ProtocolError as exc:
                logger.error("device %s: command refused: %s (%s)", self._device_id, exc.reason, exc.detail)
                return
            self._on_command(command)
        else:
            logger.info("device %s: message on %s not expected; ignored", self._device_id, topic)

    async def publish(self, channel: Channel, payload: bytes, qos: int = 1) -> bool:
        """Send and, for QoS 1, wait for the broker's PUBACK; False if the link is down or drops."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(self.topic(channel), payload, qos=qos, timeout=10)
        except aiomqtt.MqttError as exc:
            logger.warning("device %s: publish on %s failed: %s", self._device_id, channel.value, exc)
            return False
        return True
