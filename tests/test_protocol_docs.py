"""docs/protocol.md is what a device maker builds against: its examples must be payloads we accept.

Every fenced block tagged ```json NAME``` is decoded exactly as the server and the device decode
what arrives on the wire, so an example can never drift from the models unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol.messages import SCHEMAS, Ack, DeviceKind, Presence, Report, decode
from protocol.topics import CASE_EVENTS, DEVICE_ROOT, Channel

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
_BLOCK = re.compile(r"^```json (\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _examples() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


EXAMPLES = _examples()


def test_the_doc_has_examples_and_every_one_names_a_model() -> None:
    assert len(EXAMPLES) >= 10
    unknown = sorted({name for name, _ in EXAMPLES} - SCHEMAS.keys())
    assert not unknown, f"blocks tagged with no model in SCHEMAS: {unknown}"


def test_every_model_has_an_example() -> None:
    missing = sorted(SCHEMAS.keys() - {name for name, _ in EXAMPLES})
    assert not missing, f"models without a ```json NAME``` example in {DOC.name}: {missing}"


@pytest.mark.parametrize(("name", "block"), EXAMPLES, ids=[f"{i}-{name}" for i, (name, _) in enumerate(EXAMPLES)])
def test_example_validates(name: str, block: str) -> None:
    decode(SCHEMAS[name], block.encode())


def test_the_promised_examples_are_there() -> None:
    decoded = [decode(SCHEMAS[name], block.encode()) for name, block in EXAMPLES]
    reports = [m for m in decoded if isinstance(m, Report)]
    acks = [m for m in decoded if isinstance(m, Ack)]
    presences = [m for m in decoded if isinstance(m, Presence)]
    assert any(r.device_kind is DeviceKind.IN_CAR and len(r.track) == 5 and r.position for r in reports)
    assert any(r.device_kind is DeviceKind.KIOSK for r in reports)
    assert {("accepted", False), ("accepted", True), ("refused", False)} <= {(a.status, a.duplicate) for a in acks}
    # The will: offline, with no time, since it is written when the device connects.
    assert any(p.state == "offline" and p.at is None for p in presences)


@pytest.mark.parametrize("channel", list(Channel))
def test_every_channel_is_documented(channel: Channel) -> None:
    assert f"`{DEVICE_ROOT}/{{device_id}}/{channel.value}`" in DOC.read_text(encoding="utf-8")


def test_the_server_topic_is_documented() -> None:
    assert CASE_EVENTS in DOC.read_text(encoding="utf-8")
