"""The worker's one way out over its intake connection: commands to a unit's cmd topic, a case's
new state to every console, answers to the devices.

It is built before everything that sends (casework, plates, the SMS outbox, the intake) and handed
to each of them, so that nothing is wired in once built and no part has to ask whether the link
exists yet: whether the broker is reachable at this moment is this object's concern alone.

With several brokers (a fleet sharded over them, ``[broker] others``) the worker holds a connection
to each. A unit is on one of them at a time, so what goes to a unit goes on the broker it was last
heard on (``Whereabouts``), or on every one while that is not known: an answer thus leaves by the
broker its report came in on. Sending every command on every broker would be as cheap, but a
broker keeps a QoS 1 message for a unit's session there for an hour after the unit left, and would
hand an old command to a unit that fails back to it. A case event goes on one broker only: every
worker is subscribed on each, so one copy reaches each worker once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import aiomqtt

from protocol import ProtocolError
from protocol.messages import Command, Presence, encode
from protocol.topics import CASE_EVENTS, Channel, device_topic, parse_device_topic
from runtime.mqtt_session import MqttSession, NotConnected
from server.live_feed import CaseHub

logger = logging.getLogger(__name__)
# Commands whose PUBACKs are awaited together: within the connection's in-flight window (the
# intake's max_inflight), so that none queues in the client past its PUBACK timeout.
COMMANDS_AT_ONCE = 100


class Outward(Protocol):
    """What casework needs of the link: the parts that use it know nothing of MQTT."""

    async def command(self, device_id: str | None, command: Command) -> bool: ...

    async def case_changed(self, summary: dict[str, Any]) -> None: ...


async def command_each(outbound: Outward, device_ids: Sequence[str], command: Command) -> list[str]:
    """``command`` to each of many units (a rollout's batch, a share of the fleet), their PUBACKs
    awaited together a window at a time rather than one after another; returns the units the broker
    did not take."""
    not_taken: list[str] = []
    for start in range(0, len(device_ids), COMMANDS_AT_ONCE):
        window = device_ids[start : start + COMMANDS_AT_ONCE]
        taken = await asyncio.gather(*(outbound.command(device_id, command) for device_id in window))
        not_taken += [device_id for device_id, ok in zip(window, taken, strict=True) if not ok]
    return not_taken


class Whereabouts:
    """Which broker each unit is on, by its index in the worker's list of brokers.

    Every message from a unit says where it is, except its presence: each broker keeps the last one
    the unit left there (retained), so a worker that connects, or a broker restarted with its
    persistence, hands over an "online" or an "offline" from a broker the unit has since left.
    "Online" moves the unit only if it is newer than the one it last said; "offline" counts only
    from the broker it is on. The unit's clock orders its own "online"s: one from the same broker
    always counts, as it did with one broker, so only a failover right after a clock jumped back
    is mis-placed, until the unit's next message puts it right.
    """

    def __init__(self, brokers: int) -> None:
        self.brokers = brokers
        self._on: dict[str, int] = {}
        self._online_at: dict[str, datetime] = {}

    def heard(self, device_id: str, broker: int) -> None:
        if self.brokers > 1:
            self._on[device_id] = broker

    def presence(self, device_id: str, broker: int, presence: Presence) -> bool:
        """Whether ``presence``, from ``broker``, is the unit's news rather than a leftover."""
        if self.brokers == 1:
            return True
        current = self._on.get(device_id)
        if presence.state == "offline":
            return current is None or current == broker
        last = self._online_at.get(device_id)
        newer = presence.at is not None and (last is None or presence.at > last)
        if current is not None and current != broker and not newer:
            return False
        self._on[device_id] = broker
        if presence.at is not None and newer:
            self._online_at[device_id] = presence.at
        return True

    def of(self, device_id: str) -> range:
        """The brokers to reach the unit on: the one it is on, or all while that is not known."""
        on = self._on.get(device_id)
        return range(self.brokers) if on is None else range(on, on + 1)


class Outbound:
    def __init__(self, sessions: list[MqttSession], hub: CaseHub) -> None:
        # The intake's connections, one per broker: the intake receives on them, this sends on them.
        self.sessions = sessions
        self.where = Whereabouts(len(sessions))
        self._hub = hub

    def down(self) -> list[str]:
        """The brokers this worker is not connected to now."""
        return [s.broker.address for s in self.sessions if not s.connected.is_set()]

    async def case_changed(self, summary: dict[str, Any]) -> None:
        """A case's new state to every console that serves its unit, on this worker and the others."""
        event = json.dumps({"type": "case.update", "case": summary}, ensure_ascii=False)
        self._hub.deliver(summary["unit"]["adcode"], event)
        self.send([(CASE_EVENTS, event.encode(), 1)])

    async def command(self, device_id: str | None, command: Command) -> bool:
        """``command`` to the device on its cmd topic (QoS 1, the broker keeps it for a unit that is
        briefly away); False when the broker did not take it, or there is no unit (a phone's report)."""
        if device_id is None:
            logger.info("%s for case %s not sent: reported from a phone, no unit", command.type, command.case_no)
            return False
        taken = False
        for broker in self.where.of(device_id):
            try:
                await self.sessions[broker].publish(device_topic(device_id, Channel.CMD), encode(command), qos=1)
            except NotConnected:
                continue
            except aiomqtt.MqttError as exc:
                logger.warning("device %s: %s not sent (%s)", device_id, command.type, exc)
                continue
            taken = True
        return taken

    def send(self, sends: list[tuple[str, bytes, int]]) -> None:
        """Each (topic, payload, QoS) without waiting for its PUBACK: a device that misses its answer
        re-sends and gets the same answer again."""
        for topic, payload, qos in sends:
            for session in self._sessions_for(topic):
                try:
                    session.publish_nowait(topic, payload, qos)
                except NotConnected:
                    logger.warning("broker down: %s not sent; the device will retry and get it again", topic)
                except aiomqtt.MqttError as exc:
                    logger.warning("could not publish %s (%s); the device will retry", topic, exc)

    def _sessions_for(self, topic: str) -> list[MqttSession]:
        if len(self.sessions) == 1:
            return self.sessions
        if topic == CASE_EVENTS:
            up = [s for s in self.sessions if s.connected.is_set()]
            return up[:1] or self.sessions[:1]
        try:
            device_id, _ = parse_device_topic(topic)
        except ProtocolError:
            return self.sessions
        return [self.sessions[broker] for broker in self.where.of(device_id)]
