"""The models a JSON Schema is published for (``kuaichu protocol schema``)."""

from __future__ import annotations

from protocol.messages.base import Message
from protocol.messages.call import CallSignal, SceneSample
from protocol.messages.command import Command
from protocol.messages.device_state import Heartbeat, Presence
from protocol.messages.evidence import Upload
from protocol.messages.plate_reads import PlateReads
from protocol.messages.report import Ack, Report
from protocol.messages.selftest import SelfTest

# The models a JSON Schema is published for, by the name docs/protocol.md uses.
SCHEMAS: dict[str, type[Message]] = {
    "report": Report,
    "ack": Ack,
    "state": Presence,
    "heartbeat": Heartbeat,
    "selftest": SelfTest,
    "call": CallSignal,
    "cmd": Command,
    "scene": SceneSample,
    "upload": Upload,
    "plates": PlateReads,
}
