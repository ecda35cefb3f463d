"""The device's broker connection: presence, acknowledgements in, reports and heartbeats out.

paho does not queue for us across reconnects in a way that survives a restart, so nothing of value
relies on it: reports wait in the outbox and are re-sent by ``device.app`` whenever the link comes
back; this module only keeps a connection, announces presence, and hands incoming answers over.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiomqtt

from protocol import ProtocolError
from protocol.messages import Ack, Command, Presence, decode, encode
from protocol.topics import Channel, device_topic
from runtime.mqtt import BrokerSection
from runtime.mqtt_session import MqttSession, NotConnected, Subscription

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
        self._device_id = device_id
        self._firmware = firmware
        self._on_ack = on_ack
        self._on_change = on_change
        self._on_command = on_command
        will = aiomqtt.Will(self.topic(Channel.STATE), encode(Presence(state="offline")), qos=1, retain=True)
        self._session = MqttSession(
            broker,
            device_id,
            [Subscription(self.topic(Channel.ACK), qos=1), Subscription(self.topic(Channel.CMD), qos=1)],
            logger=logger,
            label=f"device {device_id}",
            lost="broker link down",
            retry_most_s=30.0,
            will=will,
            on_connect=self._announce,
            on_change=self._changed,
            farewell=self._leave,
        )
        self.connected = self._session.connected

    @property
    def broker(self) -> BrokerSection:
        """The broker the unit is on, or tries next: with several it fails over (runtime.mqtt_session)."""
        return self._session.broker

    def topic(self, channel: Channel) -> str:
        return device_topic(self._device_id, channel)

    async def run(self) -> None:
        await self._session.run(self._on_message)

    async def _announce(self, client: aiomqtt.Client) -> None:
        online = Presence(state="online", at=datetime.now(UTC), firmware=self._firmware)
        await client.publish(self.topic(Channel.STATE), encode(online), qos=1, retain=True)

    async def _changed(self, up: bool) -> None:
        if up:
            logger.info("device %s: connected to %s", self._device_id, self.broker.address)
        await self._on_change(up)

    async def _leave(self, client: aiomqtt.Client) -> None:
        """A clean stop does not fire the will: say offline ourselves before leaving."""
        offline = Presence(state="offline", at=datetime.now(UTC), firmware=self._firmware)
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            await client.publish(self.topic(Channel.STATE), encode(offline), qos=1, retain=True, timeout=2)

    async def _on_message(self, topic: str, payload: bytes) -> None:
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
        try:
            await self._session.publish(self.topic(channel), payload, qos)
        except NotConnected:
            return False
        except aiomqtt.MqttError as exc:
            logger.warning("device %s: publish on %s failed: %s", self._device_id, channel.value, exc)
            return False
        return True
