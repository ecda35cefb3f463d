"""The MQTT topic tree, version 1.

Everything a device sends or receives lives under ``kc/v1/dev/{device_id}/`` so that the broker
can confine each device to its own subtree with one pattern ACL (``kc/v1/dev/%u/#``).
The server's own fan-out between its workers lives under ``kc/v1/srv/``, which no device may touch.
"""

from __future__ import annotations

import re
from enum import StrEnum

from protocol.errors import ProtocolError

PREFIX = "kc/v1"
DEVICE_ROOT = f"{PREFIX}/dev"
SERVER_ROOT = f"{PREFIX}/srv"

# Lowercase letters, digits and inner hyphens: safe as an MQTT topic level, a certificate CN,
# a file name and a URL path segment, and it cannot contain a wildcard.
DEVICE_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{1,30}[a-z0-9])$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)

# Workers of the server share one subscription so that each report is handled by one of them.
SERVER_SHARE_GROUP = "kuaichu-server"


class Channel(StrEnum):
    """The last level of a device topic, and who publishes on it."""

    REPORT = "report"  # device -> server, QoS 1: a report (real or test)
    ACK = "ack"  # server -> device, QoS 1: report accepted (with case number) or refused
    STATE = "state"  # device (and its last will) -> all, QoS 1, retained: online / offline
    HEARTBEAT = "heartbeat"  # device -> server, QoS 0: periodic health and position
    CMD = "cmd"  # server -> device, QoS 1: commands for a device (call answers, evidence requests, upload acks)
    SELFTEST = "selftest"  # device -> server, QoS 1: the result of `kuaichu device selftest`
    CALL = "call"  # device -> server, QoS 1: live-call signalling (offers, hang-ups)
    SCENE = "scene"  # device -> server, QoS 1: stills and sound while a call's video cannot connect
    UPLOAD = "upload"  # device -> server, QoS 1: stills and clips the server asked for, in chunks
    PLATES = "plates"  # device -> server, QoS 1: plates read on the device, after a report or when asked


def is_device_id(value: str) -> bool:
    return bool(_DEVICE_ID_RE.fullmatch(value))


def device_topic(device_id: str, channel: Channel) -> str:
    if not is_device_id(device_id):
        raise ProtocolError("bad_device_id", f"not a device id: {device_id!r}")
    return f"{DEVICE_ROOT}/{device_id}/{channel.value}"


def device_filter(channel: Channel) -> str:
    """The filter matching one channel of every device."""
    return f"{DEVICE_ROOT}/+/{channel.value}"


def shared(topic_filter: str, group: str = SERVER_SHARE_GROUP) -> str:
    return f"$share/{group}/{topic_filter}"


def parse_device_topic(topic: str) -> tuple[str, Channel]:
    """Split ``kc/v1/dev/{id}/{channel}``; anything else is a ProtocolError."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != DEVICE_ROOT:
        raise ProtocolError("bad_topic", f"not a device topic: {topic!r}")
    device_id, channel = parts[3], parts[4]
    if not is_device_id(device_id):
        raise ProtocolError("bad_device_id", f"not a device id in topic: {topic!r}")
    try:
        return device_id, Channel(channel)
    except ValueError:
        raise ProtocolError("bad_topic", f"unknown channel in topic: {topic!r}") from None


CASE_EVENTS = f"{SERVER_ROOT}/case-events"
