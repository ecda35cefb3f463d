"""One broker connection kept up for as long as its owner runs: the device's link, the server's
intake and the media worker's call signalling each hold one.

A session connects with the shared client settings (``runtime.mqtt.make_client``), subscribes
again on every connect (a broker restarted without its persistence has forgotten the
subscriptions), hands each message to its owner, and after a drop retries with the fleet's
jittered backoff. Given several brokers (``BrokerSection.others``) it fails over: after
``FAILOVER_AFTER`` tries in a row that did not connect it moves to the next broker, round the list.
What differs between owners is what they subscribe to, their will, what they
say once connected and before leaving, and who hears that the link went up or down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from runtime.backoff import Backoff
from runtime.mqtt import BrokerSection, make_client, publish_nowait

FIRST_RETRY_S = 0.5
PUBLISH_TIMEOUT_S = 10  # for the broker's PUBACK; then the message counts as not taken
# Tries in a row that did not connect before a session with several brokers moves to the next one:
# enough that a broker restarting (seconds) keeps its units, few enough that a dead one costs a unit
# only a few back-off steps (0.5 + 1 + 2 s, jittered) before it is on the next.
FAILOVER_AFTER = 3

# A message's topic and payload; a handler that returns an awaitable is awaited before the next.
Handler = Callable[[str, bytes], Awaitable[None] | None]


@dataclass(frozen=True)
class Subscription:
    topic: str
    qos: int
    no_local: bool = False  # not sent back what this client published itself


class NotConnected(aiomqtt.MqttError):
    """The session is between connections: nothing was sent."""


class MqttSession:
    def __init__(
        self,
        broker: BrokerSection,
        identifier: str,
        subscriptions: Sequence[Subscription],
        *,
        logger: logging.Logger,
        label: str,
        lost: str = "broker connection lost",
        retry_most_s: float = 10.0,
        will: aiomqtt.Will | None = None,
        max_inflight: int | None = None,
        on_connect: Callable[[aiomqtt.Client], Awaitable[None]] | None = None,
        on_change: Callable[[bool], Awaitable[None]] | None = None,
        farewell: Callable[[aiomqtt.Client], Awaitable[None]] | None = None,
    ) -> None:
        """``on_connect`` runs after subscribing and before anyone may publish (a device announces
        itself there); ``on_change`` hears the link come up and, after it was up, go down;
        ``farewell`` runs on the open connection when the session is cancelled while up, because a
        clean disconnect does not fire the will. A drop is logged on ``logger`` as
        "``label``: ``lost`` (why); retrying in N s"."""
        self._brokers = broker.each()
        self._current = 0
        self.identifier = identifier
        self._subscriptions = tuple(subscriptions)
        self._logger = logger
        self._label = label
        self._lost = lost
        self._retry_most_s = retry_most_s
        self._will = will
        self._max_inflight = max_inflight
        self._on_connect = on_connect
        self._on_change = on_change
        self._farewell = farewell
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()

    async def run(self, handler: Handler) -> None:
        """Keep the connection until cancelled, giving every message to ``handler``."""
        backoff = Backoff(FIRST_RETRY_S, self._retry_most_s)
        failed = 0  # tries in a row on the current broker that did not connect
        while True:
            try:
                client = make_client(self.broker, self.identifier, will=self._will, max_inflight=self._max_inflight)
                async with client:
                    await self._subscribe(client)
                    if self._on_connect is not None:
                        await self._on_connect(client)
                    self._client = client
                    self.connected.set()
                    backoff.reset()
                    failed = 0
                    if self._on_change is not None:
                        await self._on_change(True)
                    await self._receive(client, handler)
            except aiomqtt.MqttError as exc:
                delay = backoff.next()
                if not self.connected.is_set():
                    failed += 1
                where = self.broker.address
                if failed >= FAILOVER_AFTER and len(self._brokers) > 1:
                    # The back-off goes on growing: a dead broker's units reach the next one spread
                    # out, not as one storm.
                    failed = 0
                    self._current = (self._current + 1) % len(self._brokers)
                    where = f"{where}, moving to {self.broker.address}"
                self._logger.warning("%s: %s (%s, %s); retrying in %.1fs", self._label, self._lost, exc, where, delay)
            else:
                delay = backoff.next()
            finally:
                was_up = self.connected.is_set()
                self._client = None
                self.connected.clear()
                if was_up and self._on_change is not None:
                    await self._on_change(False)
            await asyncio.sleep(delay)

    @property
    def broker(self) -> BrokerSection:
        """The broker this session is on, or tries next."""
        return self._brokers[self._current]

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        for sub in self._subscriptions:
            if sub.no_local:
                await client.subscribe(sub.topic, options=SubscribeOptions(qos=sub.qos, noLocal=True))
            else:
                await client.subscribe(sub.topic, qos=sub.qos)

    async def _receive(self, client: aiomqtt.Client, handler: Handler) -> None:
        try:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                try:
                    pending = handler(message.topic.value, payload)
                    if pending is not None:
                        await pending
                except aiomqtt.MqttError:
                    raise  # the connection itself: reconnect
                except Exception:
                    # One message its owner could not handle must not stop every message after it (a
                    # hostile payload would otherwise stop a server worker): its sender hears nothing
                    # back and sends again, as a unit's outbox does until its report is acknowledged.
                    self._logger.exception("%s: a message on %s was not handled", self._label, message.topic.value)
        except asyncio.CancelledError:
            if self._farewell is not None:
                await self._farewell(client)
            raise

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Send and, for QoS 1, wait for the broker's PUBACK. NotConnected while the link is down,
        another MqttError when the broker did not take it."""
        client = self._client
        if client is None:
            raise NotConnected("not connected")
        await client.publish(topic, payload, qos=qos, timeout=PUBLISH_TIMEOUT_S)

    def publish_nowait(self, topic: str, payload: bytes, qos: int) -> None:
        """Hand a message to the connection without waiting for its PUBACK (``runtime.mqtt.publish_nowait``)."""
        client = self._client
        if client is None:
            raise NotConnected("not connected")
        publish_nowait(client, topic, payload, qos)


async def any_connected(sessions: Sequence[MqttSession]) -> None:
    """Return once one of ``sessions`` is up: a worker with a connection to each of several brokers
    serves while one of them is away."""
    waits = [asyncio.ensure_future(session.connected.wait()) for session in sessions]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
