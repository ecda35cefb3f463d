"""The worker's one way out over its intake connection: commands to a unit's cmd topic, a case's
new state to every console, answers to the devices.

It is built before everything that sends (casework, plates, the SMS outbox, the intake) and handed
to each of them, so that nothing is wired in once built and no part has to ask whether the link
exists yet: whether the broker is reachable at this moment is this object's concern alone.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

import aiomqtt

from protocol.messages import Command, encode
from protocol.topics import CASE_EVENTS, Channel, device_topic
from runtime.mqtt_session import MqttSession, NotConnected
from server.live_feed import CaseHub

logger = logging.getLogger(__name__)


class Outward(Protocol):
    """What casework needs of the link: the parts that use it know nothing of MQTT."""

    async def command(self, device_id: str | None, command: Command) -> bool: ...

    async def case_changed(self, summary: dict[str, Any]) -> None: ...


class Outbound:
    def __init__(self, session: MqttSession, hub: CaseHub) -> None:
        self.session = session  # the intake's connection: the intake receives on it, this sends on it
        self._hub = hub

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
        try:
            await self.session.publish(device_topic(device_id, Channel.CMD), encode(command), qos=1)
        except NotConnected:
            return False
        except aiomqtt.MqttError as exc:
            logger.warning("device %s: %s not sent (%s)", device_id, command.type, exc)
            return False
        return True

    def send(self, sends: list[tuple[str, bytes, int]]) -> None:
        """Each (topic, payload, QoS) without waiting for its PUBACK: a device that misses its answer
        re-sends and gets the same answer again."""
        for topic, payload, qos in sends:
            try:
                self.session.publish_nowait(topic, payload, qos)
            except NotConnected:
                logger.warning("broker down: %s not sent; the device will retry and get it again", topic)
            except aiomqtt.MqttError as exc:
                logger.warning("could not publish %s (%s); the device will retry", topic, exc)
