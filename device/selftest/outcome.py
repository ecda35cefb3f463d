"""One check's result, and the timing and error boundary every check runs inside."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from protocol.messages import CheckStatus, SelfTestCheck

log = logging.getLogger(__name__)

MAX_DETAIL = 240


@dataclass(frozen=True)
class Outcome:
    status: CheckStatus
    detail: str

    @classmethod
    def passed(cls, detail: str) -> Outcome:
        return cls(CheckStatus.PASS, detail)

    @classmethod
    def failed(cls, detail: str) -> Outcome:
        return cls(CheckStatus.FAIL, detail)

    @classmethod
    def skipped(cls, detail: str) -> Outcome:
        return cls(CheckStatus.SKIP, detail)


def clip(detail: str) -> str:
    """A detail cut to what the protocol carries, marked where it was cut."""
    return detail if len(detail) <= MAX_DETAIL else detail[: MAX_DETAIL - 1] + "…"


async def timed(name: str, check: Awaitable[Outcome]) -> SelfTestCheck:
    """Run ``check`` and time it; a check that crashes fails with what it raised, and the run goes on,
    because a technician needs the whole list, not the first traceback."""
    started = time.monotonic()
    try:
        outcome = await check
    except Exception as exc:
        log.exception("selftest: check %s crashed", name)
        outcome = Outcome.failed(f"the check itself failed: {type(exc).__name__}: {exc}")
    duration_ms = round((time.monotonic() - started) * 1000)
    return SelfTestCheck(name=name, status=outcome.status, detail=clip(outcome.detail), duration_ms=duration_ms)
