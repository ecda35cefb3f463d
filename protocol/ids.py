"""Report ids chosen on the device: ULIDs (26 characters, Crockford base32).

The first 48 bits are the millisecond time, so ids sort by creation time, and 80 random bits make
a collision between devices practically impossible. A device that retries a report sends the same
id, which is how the server recognises a retry instead of opening a second case.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import UTC, datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REPORT_ID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
_REPORT_ID_RE = re.compile(REPORT_ID_PATTERN)

_lock = threading.Lock()
_last = (0, 0)  # (ms, random) of the last id made in this process


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_report_id(now_ms: int | None = None) -> str:
    """A new ULID; within one millisecond of this process the ids still increase."""
    global _last
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        last_ms, last_rand = _last
        if ms <= last_ms:
            ms, rand = last_ms, (last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last = (ms, rand)
    return _encode(ms, 10) + _encode(rand, 16)


def is_report_id(value: str) -> bool:
    return bool(_REPORT_ID_RE.fullmatch(value))


def report_id_time(report_id: str) -> datetime:
    ms = 0
    for char in report_id[:10]:
        ms = ms * 32 + _ALPHABET.index(char)
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
