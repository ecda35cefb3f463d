"""Hostile input on every MQTT channel: the one decoder (``protocol.messages.decode``) either gives
a validated message or refuses with a reason, and the intake stores nothing it refused.

Every payload a server worker or a unit parses goes through ``decode``: the intake's report, state,
heartbeat, self-test and plate readings, the media worker's call signals, scene samples and
uploads, and the unit's acks and commands. Each is fuzzed from the JSON Schema the project
publishes for it (``kuaichu protocol schema``): valid documents, the same documents mutated, random
bytes, and payloads past the size limit or nested past the parser's depth.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from sqlalchemy import select

from protocol.errors import ProtocolError
from protocol.messages import MAX_PAYLOAD_BYTES, Message, Report, decode, encode
from protocol.messages.schemas import SCHEMAS
from protocol.topics import Channel, device_topic, parse_device_topic
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Case
from tests.conftest import RunningServer
from tests.reports import WUHUA, in_car_report
from tests.services import Mosquitto
from tests.waiting import wait_for
from tests.wire import publish_report, raw_device

REASONS = {"too_large", "not_json", "schema", "unsupported_version"}
# Reproducible in CI: the same examples every run, none carried over from a local database.
FUZZ = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
CHANNELS = sorted(SCHEMAS)
ODD_VALUES: list[Any] = [None, 0, -1, 2**70, 1e308, "", "x" * 300, [], {}, True, "云A·🚗\u0000", [[[]]]]


def valid(name: str) -> st.SearchStrategy[Any]:
    return from_schema(SCHEMAS[name].model_json_schema())


def decoded_or_refused(model: type[Message], payload: bytes) -> Message | ProtocolError:
    """What the decoder made of ``payload``; any exception but a ProtocolError fails the test."""
    try:
        message = decode(model, payload)
    except ProtocolError as refusal:
        assert refusal.reason in REASONS, refusal
        assert refusal.detail, refusal
        return refusal
    # What was accepted is whole: written out again, it reads back the same.
    assert decode(model, encode(message)) == message
    return message


def mutate(data: Any, rng: random.Random) -> bytes:
    """One document broken in one of the ways a faulty or hostile sender breaks it."""
    how = rng.choice(["drop", "retype", "extra", "nest", "truncate", "flip", "splice", "replace"])
    if how in ("drop", "retype", "extra", "nest") and isinstance(data, dict) and data:
        target = data
        while rng.random() < 0.5:  # sometimes a field inside a field
            inner = [v for v in target.values() if isinstance(v, dict) and v]
            if not inner:
                break
            target = rng.choice(inner)
        key = rng.choice(sorted(target))
        if how == "drop":
            del target[key]
        elif how == "retype":
            target[key] = rng.choice(ODD_VALUES)
        elif how == "extra":
            target[f"zz{rng.randrange(1000)}"] = rng.choice(ODD_VALUES)
        else:
            value: Any = rng.choice(ODD_VALUES)
            for _ in range(rng.randint(1, 60)):
                value = {"a": value} if rng.random() < 0.5 else [value]
            target[key] = value
        return json.dumps(data, ensure_ascii=False).encode()
    raw = json.dumps(data).encode()
    at = rng.randrange(len(raw) + 1)
    if how == "truncate":
        return raw[:at]
    if how == "flip" and raw:
        at = min(at, len(raw) - 1)
        return raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1 :]
    if how == "splice":
        return raw[:at] + rng.randbytes(rng.randint(1, 16)) + raw[at:]
    return json.dumps(rng.choice(ODD_VALUES)).encode()


# Past what the parser can nest, or a number it refuses to read, all under the size limit: each
# used to escape the decoder as RecursionError / ValueError and end the worker's intake.
TOO_DEEP = [b"[" * 30_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000, b'{"version":' + b"9" * 5_000 + b"}"]


@pytest.mark.parametrize("name", CHANNELS)
def test_documents_valid_by_the_published_schema_decode_or_are_refused_with_a_reason(name: str) -> None:
    @FUZZ
    @given(valid(name))
    def check(data: Any) -> None:
        decoded_or_refused(SCHEMAS[name], json.dumps(data).encode())

    check()


@pytest.mark.parametrize("name", CHANNELS)
def test_mutated_documents_decode_or_are_refused_with_a_reason(name: str) -> None:
    @FUZZ
    @given(valid(name), st.randoms(use_true_random=False))
    def check(data: Any, rng: random.Random) -> None:
        decoded_or_refused(SCHEMAS[name], mutate(data, rng))

    check()


@pytest.mark.parametrize("name", CHANNELS)
def test_random_bytes_are_refused_with_a_reason(name: str) -> None:
    @FUZZ
    @given(st.binary(max_size=2048) | st.text(max_size=512).map(str.encode))
    def check(payload: bytes) -> None:
        assert isinstance(decoded_or_refused(SCHEMAS[name], payload), ProtocolError)

    check()


@pytest.mark.parametrize("name", CHANNELS)
def test_oversized_and_too_deep_payloads_are_refused(name: str) -> None:
    model = SCHEMAS[name]
    oversized = decoded_or_refused(model, b'{"pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}')
    assert isinstance(oversized, ProtocolError) and oversized.reason == "too_large"
    for payload in TOO_DEEP:
        assert len(payload) <= MAX_PAYLOAD_BYTES
        refused = decoded_or_refused(model, payload)
        assert isinstance(refused, ProtocolError) and refused.reason == "not_json"


@FUZZ
@given(st.text(max_size=80) | st.sampled_from(["kc/v1/dev/car-0001/report", "kc/v1/dev//report", "kc/v1/dev/a/b/c"]))
def test_any_topic_is_parsed_or_refused_with_a_reason(topic: str) -> None:
    try:
        device_id, channel = parse_device_topic(topic)
    except ProtocolError as refusal:
        assert refusal.reason in {"bad_topic", "bad_device_id"}
    else:
        assert device_topic(device_id, channel) == topic


async def _stored_reports(server: RunningServer) -> dict[str, dict[str, Any]]:
    engine = make_engine(server.cfg.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return {c.case_no: c.report for c in (await session.scalars(select(Case))).all()}
    finally:
        await engine.dispose()


async def test_hostile_payloads_on_every_channel_leave_the_worker_running_and_no_partial_case(
    server: RunningServer, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    device = "car-0300"
    rng = random.Random(20)
    good = json.loads(encode(in_car_report(device, WUHUA)))
    mutants = [mutate(json.loads(json.dumps(good)), rng) for _ in range(40)]
    inbound = [Channel.REPORT, Channel.STATE, Channel.HEARTBEAT, Channel.SELFTEST, Channel.PLATES]
    inbound += [Channel.CALL, Channel.SCENE, Channel.UPLOAD]
    async with raw_device(broker.port, device) as (client, acks):
        for channel in inbound:
            for payload in TOO_DEEP:
                await client.publish(device_topic(device, channel), payload, qos=1)

        def refusals() -> int:
            return sum("refused: not_json" in r.getMessage() for r in caplog.records)

        async def all_refused() -> bool:
            assert not server.task.done(), "the worker stopped"
            return refusals() >= len(inbound) * len(TOO_DEEP)

        await wait_for("every channel to refuse the payloads too deep to parse", all_refused)
        # The report channel's refusals went back to the unit; the mutants get an answer each.
        answers = [await asyncio.wait_for(acks.get(), 10) for _ in TOO_DEEP]
        for payload in mutants:
            await publish_report(client, device, payload)
        answers += [await asyncio.wait_for(acks.get(), 10) for _ in mutants]
        await publish_report(client, device, encode(in_car_report(device, WUHUA)))
        last = await asyncio.wait_for(acks.get(), 10)

    assert not server.task.done()
    assert last.status == "accepted" and last.case_no is not None
    assert all(a.status == "refused" and a.reason in REASONS for a in answers[: len(TOO_DEEP)])
    refused = [a for a in answers if a.status == "refused"]
    assert refused and all(a.reason for a in refused)
    accepted = {a.case_no for a in [*answers, last] if a.status == "accepted" and a.case_no}
    stored = await _stored_reports(server)
    # Exactly the cases the unit was told of, each holding a whole report.
    assert set(stored) == accepted
    for report in stored.values():
        assert decode(Report, json.dumps(report).encode()).device_id == device
