"""Payload bytes to a validated model and back: the one place a payload is parsed."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from protocol.errors import ProtocolError
from protocol.messages.base import MAX_PAYLOAD_BYTES, VERSION, Message, Versioned

M = TypeVar("M", bound=Message)


def decode(model: type[M], payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> M:
    """Parse and validate one payload, or raise ProtocolError saying what is wrong."""
    if len(payload) > max_bytes:
        raise ProtocolError("too_large", f"{len(payload)} bytes, limit {max_bytes}", payload)
    try:
        data: Any = json.loads(payload)
    except ValueError as exc:
        # Not only bad JSON (JSONDecodeError, UnicodeDecodeError): an integer of more than 4,300
        # digits is a plain ValueError, and it would have escaped the intake's handler.
        raise ProtocolError("not_json", str(exc)[:200], payload) from None
    except RecursionError:
        # A few kilobytes of "[[[[..." are within the size limit and exhaust the parser's stack.
        raise ProtocolError("not_json", "nested too deeply", payload) from None
    if not isinstance(data, dict):
        raise ProtocolError("schema", "payload is not a JSON object", payload)
    if issubclass(model, Versioned) and data.get("version") != VERSION:
        raise ProtocolError("unsupported_version", f"version {data.get('version')!r}, expected {VERSION}", payload)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ProtocolError("schema", f"{where}: {first['msg']}", payload) from None


def encode(message: Message) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


def utc_iso(value: datetime) -> str:
    """ISO 8601 with milliseconds and ``Z``, as every timestamp in the protocol is written."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
