"""The single exception root for everything that can be wrong with a message on the wire."""

from __future__ import annotations


class ProtocolError(Exception):
    """A message or topic that does not follow the contract.

    ``reason`` is a short machine-readable code that goes back to the device in a refusal;
    ``detail`` is for the log. ``raw`` keeps the start of the offending input so that a refusal
    can be diagnosed, and is never logged by this package (it may carry personal data).
    """

    def __init__(self, reason: str, detail: str, raw: bytes | str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "replace")
        self.raw = raw[:512] if raw is not None else None
