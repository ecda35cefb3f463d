"""Call signalling over MQTT: the devices' offers and hang-ups in, answers and ends out; and the
stills and clips a dispatcher asked for, in chunks (``server.calls.uploads``).

A connection of its own, apart from the report intake: an SDP is a few kilobytes that must not
queue behind a burst of reports, nor a report behind a call. The subscription is a plain one,
because every offer of one call must reach the one worker that holds the call's media; only the
worker that runs media (``[server] runs``) opens it. With several brokers it is one connection to
each, and an answer goes back on the broker the unit last signalled on (``server.outbound``).
"""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from protocol import ProtocolError
from protocol.messages import CallSignal, decode
from protocol.topics import Channel, device_filter, parse_device_topic
from runtime.mqtt_session import MqttSession, NotConnected, Subscription, any_connected
from server.calls.degraded import SceneReceiver
from server.calls.manager import CallManager
from server.calls.uploads import UploadReceiver
from server.config import ServerConfig
from server.outbound import Whereabouts

logger = logging.getLogger(__name__)

SUBSCRIPTIONS = (
    Subscription(device_filter(Channel.CALL), qos=1),
    Subscription(device_filter(Channel.SCENE), qos=1),
    Subscription(device_filter(Channel.UPLOAD), qos=1),
)


class CallLink:
    """The signalling connection and its way out, built before the calls and uploads that answer
    through it, so that each is given it when built."""

    def __init__(self, cfg: ServerConfig) -> None:
        identifier = f"kuaichu-server-{cfg.server.worker_id}-calls"
        brokers = cfg.broker.each()
        self.sessions = [
            MqttSession(
                broker,
                identifier,
                SUBSCRIPTIONS,
                logger=logger,
                label="call signalling" if len(brokers) == 1 else f"call signalling ({broker.address})",
            )
            for broker in brokers
        ]
        self.where = Whereabouts(len(brokers))

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        device_id, _ = parse_device_topic(topic)
        for broker in self.where.of(device_id):
            try:
                await self.sessions[broker].publish(topic, payload, qos)
            except NotConnected:
                logger.warning("broker down: %s not sent; the device will offer again", topic)
            except aiomqtt.MqttError as exc:
                logger.warning("could not publish %s (%s); the device will offer again", topic, exc)


class Signalling:
    def __init__(self, link: CallLink, manager: CallManager, uploads: UploadReceiver, scenes: SceneReceiver) -> None:
        self._link = link
        self._manager = manager
        self._uploads = uploads
        self._scenes = scenes
        self._handling: set[asyncio.Task[None]] = set()

    async def wait_connected(self) -> None:
        await any_connected(self._link.sessions)

    async def run(self) -> None:
        await asyncio.gather(*(self._receive(i, s) for i, s in enumerate(self._link.sessions)))

    async def _receive(self, broker: int, session: MqttSession) -> None:
        await session.run(lambda topic, payload: self._on_message(topic, payload, broker))

    def _on_message(self, topic: str, payload: bytes, broker: int = 0) -> None:
        try:
            device_id, channel = parse_device_topic(topic)
            self._link.where.heard(device_id, broker)
            if channel is Channel.SCENE:
                self._scenes.on_message(device_id, payload)
                return
            if channel is Channel.UPLOAD:
                self._uploads.on_message(device_id, payload)
                return
            signal = decode(CallSignal, payload)
        except ProtocolError as exc:
            logger.warning("call signal on %s refused: %s (%s)", topic, exc.reason, exc.detail)
            return
        task = asyncio.create_task(self._manager.on_signal(device_id, signal))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("call signal handling failed", exc_info=task.exception())
