"""Call signalling over MQTT: the devices' offers and hang-ups in, answers and ends out; and the
stills and clips a dispatcher asked for, in chunks (``server.calls.uploads``).

A connection of its own, apart from the report intake: an SDP is a few kilobytes that must not
queue behind a burst of reports, nor a report behind a call. The subscription is a plain one,
because every offer of one call must reach the one worker that holds the call's media; only the
worker with ``[calls] media`` on opens it.
"""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from protocol import ProtocolError
from protocol.messages import CallSignal, decode
from protocol.topics import Channel, device_filter, parse_device_topic
from runtime.backoff import Backoff
from runtime.mqtt import make_client
from server.calls.degraded import SceneReceiver
from server.calls.manager import CallManager
from server.calls.uploads import UploadReceiver
from server.config import ServerConfig

logger = logging.getLogger(__name__)


class CallLink:
    """The way out of the signalling connection, built before the calls and uploads that answer
    through it, so that each is given it when built."""

    def __init__(self) -> None:
        self._client: aiomqtt.Client | None = None

    def attach(self, client: aiomqtt.Client | None) -> None:
        """The signalling connection while it is up, None while it is down."""
        self._client = client

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        client = self._client
        if client is None:
            logger.warning("broker down: %s not sent; the device will offer again", topic)
            return
        try:
            await client.publish(topic, payload, qos=qos, timeout=10)
        except aiomqtt.MqttError as exc:
            logger.warning("could not publish %s (%s); the device will offer again", topic, exc)


class Signalling:
    def __init__(
        self,
        cfg: ServerConfig,
        link: CallLink,
        manager: CallManager,
        uploads: UploadReceiver,
        scenes: SceneReceiver,
    ) -> None:
        self._cfg = cfg
        self._link = link
        self._manager = manager
        self._uploads = uploads
        self._scenes = scenes
        self.connected = asyncio.Event()
        self._handling: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        identifier = f"kuaichu-server-{self._cfg.server.worker_id}-calls"
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                async with make_client(self._cfg.broker, identifier) as client:
                    await client.subscribe(device_filter(Channel.CALL), qos=1)
                    await client.subscribe(device_filter(Channel.SCENE), qos=1)
                    await client.subscribe(device_filter(Channel.UPLOAD), qos=1)
                    self._link.attach(client)
                    self.connected.set()
                    backoff.reset()
                    async for message in client.messages:
                        self._on_message(message)
            except aiomqtt.MqttError as exc:
                delay = backoff.next()
                logger.warning("call signalling: broker connection lost (%s); retrying in %.1fs", exc, delay)
            else:
                delay = backoff.next()
            finally:
                self._link.attach(None)
                self.connected.clear()
            await asyncio.sleep(delay)

    def _on_message(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        try:
            device_id, channel = parse_device_topic(message.topic.value)
            if channel is Channel.SCENE:
                self._scenes.on_message(device_id, payload)
                return
            if channel is Channel.UPLOAD:
                self._uploads.on_message(device_id, payload)
                return
            signal = decode(CallSignal, payload)
        except ProtocolError as exc:
            logger.warning("call signal on %s refused: %s (%s)", message.topic.value, exc.reason, exc.detail)
            return
        task = asyncio.create_task(self._manager.on_signal(device_id, signal))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("call signal handling failed", exc_info=task.exception())
