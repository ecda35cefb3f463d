"""The evidence requests on cmd and the chunks on upload: what passes and what is refused, and why."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from protocol import ProtocolError
from protocol.messages import CHUNK_BYTES, MAX_PAYLOAD_BYTES, Command, Upload, decode, encode

CALL_ID = "01JV2MC3N8Q4R7T0W2Y5A8D1FG"
UPLOAD_ID = "01JV2MDA7QW3E5R6T8Y9V0H1KP"
DATA = bytes(range(256)) * 100


def chunk(**overrides: Any) -> dict[str, Any]:
    message = {
        "version": 1,
        "type": "chunk",
        "upload_id": UPLOAD_ID,
        "kind": "still",
        "call_id": CALL_ID,
        "case_no": "530102202505140017",
        "content_type": "image/jpeg",
        "size": len(DATA),
        "sha256": hashlib.sha256(DATA).hexdigest(),
        "captured_at": "2025-05-14T02:33:41.208Z",
        "offset": CHUNK_BYTES,
        "data": base64.b64encode(DATA[CHUNK_BYTES : 2 * CHUNK_BYTES]).decode(),
    }
    message.update(overrides)
    return {k: v for k, v in message.items() if v is not None}


def test_a_chunk_carries_its_bytes_and_the_whole_file_it_belongs_to() -> None:
    upload = decode(Upload, json.dumps(chunk()).encode())
    assert upload.chunk() == DATA[CHUNK_BYTES : 2 * CHUNK_BYTES]
    assert decode(Upload, encode(upload)) == upload


def test_the_largest_chunk_fits_in_one_message() -> None:
    largest = chunk(
        kind="clip",
        content_type="video/x-matroska",
        case_no="9" * 32,
        size=32 * 1024 * 1024,
        offset=32 * 1024 * 1024 - CHUNK_BYTES,
        captured_until="2025-05-14T02:33:51.208Z",
        data=base64.b64encode(b"\xff" * CHUNK_BYTES).decode(),
    )
    assert len(encode(decode(Upload, json.dumps(largest).encode()))) < MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"data": base64.b64encode(b"x" * (CHUNK_BYTES + 1)).decode()}, f"a chunk carries at most {CHUNK_BYTES} bytes"),
        ({"data": base64.b64encode(b"x" * (CHUNK_BYTES + 3)).decode()}, "data: String should have at most"),
        ({"data": "not base64!"}, "data is not base64"),
        ({"offset": len(DATA) - 10}, "the chunk ends past the file's size"),
        ({"content_type": "video/x-matroska"}, "a still is image/jpeg"),
        ({"kind": "clip"}, "a clip is video/x-matroska"),
        ({"sha256": "AB" * 32}, "sha256"),
        ({"sha256": None, "size": None}, "a chunk carries size, sha256"),
        ({"captured_until": "2025-05-14T02:33:40Z"}, "captured_until is before captured_at"),
        ({"captured_at": "2025-05-14T02:33:41"}, "captured_at"),
        ({"upload_id": "../../etc/passwd"}, "upload_id"),
        ({"size": 0}, "size"),
        ({"type": "unavailable"}, "unavailable carries its reason"),
        ({"kind": "recording"}, "kind"),
    ],
)
def test_a_bad_chunk_is_refused_with_its_reason(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(Upload, json.dumps(chunk(**overrides)).encode())
    assert reason in caught.value.detail


def test_a_unit_says_once_what_it_cannot_send() -> None:
    notice = {k: v for k, v in chunk().items() if k in ("version", "upload_id", "kind", "call_id", "case_no")}
    upload = decode(Upload, json.dumps({**notice, "type": "unavailable", "reason": "camera failed"}).encode())
    assert upload.reason == "camera failed"


REQUEST = {"version": 1, "call_id": CALL_ID, "upload_id": UPLOAD_ID, "case_no": "530102202505140017"}


@pytest.mark.parametrize(
    "data",
    [
        {**REQUEST, "type": "still.request"},
        {**REQUEST, "type": "clip.request", "report_id": "01JV2MBZX6HF1RM9XY3K7T2Q8C", "seconds": 60},
        {
            **REQUEST,
            "type": "clip.request",
            "report_id": "01JV2MBZX6HF1RM9XY3K7T2Q8C",
            "seconds": 10,
            "until": "2025-05-14T02:36:41.208Z",
        },
        {"version": 1, "type": "upload.ack", "upload_id": UPLOAD_ID, "offset": 0},
        {"version": 1, "type": "upload.done", "upload_id": UPLOAD_ID, "sha256": "0" * 64},
        {"version": 1, "type": "upload.refused", "upload_id": UPLOAD_ID, "reason": "no such upload"},
    ],
)
def test_evidence_commands_pass_with_their_fields(data: dict[str, Any]) -> None:
    assert decode(Command, json.dumps(data).encode()).type == data["type"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({**REQUEST, "type": "still.request", "upload_id": None}, "a still.request carries upload_id"),
        ({**REQUEST, "type": "still.request", "call_id": None}, "a still.request carries call_id"),
        ({**REQUEST, "type": "clip.request", "seconds": 5}, "a clip.request carries report_id"),
        (
            {**REQUEST, "type": "clip.request", "report_id": "01JV2MBZX6HF1RM9XY3K7T2Q8C", "seconds": 61},
            "seconds",
        ),
        (
            {
                **REQUEST,
                "type": "clip.request",
                "report_id": "01JV2MBZX6HF1RM9XY3K7T2Q8C",
                "seconds": 10,
                "until": "2025-05-14T02:36:41",
            },
            "until",
        ),
        ({"version": 1, "type": "upload.ack", "upload_id": UPLOAD_ID}, "an upload.ack carries offset"),
        ({"version": 1, "type": "upload.done", "upload_id": UPLOAD_ID}, "an upload.done carries sha256"),
        ({"version": 1, "type": "upload.refused", "upload_id": UPLOAD_ID}, "an upload.refused carries reason"),
        ({"version": 1, "type": "call.end", "reason": "x"}, "a call.end carries call_id"),
    ],
)
def test_an_incomplete_evidence_command_is_refused(data: dict[str, Any], reason: str) -> None:
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ProtocolError) as caught:
        decode(Command, json.dumps(data).encode())
    assert reason in caught.value.detail
