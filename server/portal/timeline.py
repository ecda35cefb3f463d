"""A case's progress as a party sees it (网办进度): the steps done, each with its Beijing time, the
step now under way and what happens next, roughly when.

Pure: built from the case's hash-chained log (the same record the audit checks) and the review's
deadlines, so the party's phone and the console can never tell two stories. Steps are the party's
own where that differs (the determination reached *them*).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.cases import LOCAL_TZ
from server.lifecycles.case import CASE, CaseStatus


@dataclass(frozen=True)
class Logged:
    """One event of the case's log, as much of it as a timeline needs."""

    action: str
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    at: datetime | None  # None: not reached yet
    note: str = ""

    def json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "done": self.at is not None,
            "at": None if self.at is None else self.at.isoformat(),
            "at_local": None if self.at is None else local_text(self.at),
            "note": self.note,
        }


def local_text(at: datetime) -> str:
    return at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _first(events: Iterable[Logged], *actions: str, when: Any = None) -> Logged | None:
    for event in events:
        if event.action in actions and (when is None or when(event)):
            return event
    return None


def _at(event: Logged | None) -> datetime | None:
    return None if event is None else event.at


# What happens after each step, and roughly when, said to a party in plain words. Steps that are a
# case status say what the status's lifecycle says; the ones before hand-over are moments within
# the status "new" that only a party's progress tells apart.
NEXT = {
    "reported": "调度员将很快通过视频接警，请在安全地点保持手机畅通。",
    "answered": "请按调度员的提示，拍摄现场、出示证件、简要说明经过。",
    "evidence": "证据齐全后，调度员会通知您撤离现场。",
    "cleared": "民警将根据证据认定责任，一般当天内作出，无需再到现场。",
} | {status.value: CASE.next_steps[status] for status in CaseStatus if status is not CaseStatus.NEW}


def steps(
    received_at: datetime,
    events: Sequence[Logged],
    party_id: int | None,
    review: Sequence[Step] = (),
    claim: Sequence[Step] = (),
) -> list[Step]:
    """Every step the case goes through, done or not; an escalated case ends at escalation."""
    joined = _first(events, "call.joined", when=lambda e: bool(e.detail.get("answered")))
    evidence = _first(events, "checks.run")
    cleared = _first(events, "road.moved_off") or _first(events, "road.clear")
    handed = _first(events, "case.handed_over")
    issued = [e for e in events if e.action == "determination.issued"]
    reached = _first(
        events, "delivery.reached", when=lambda e: party_id is None or e.detail.get("party") == party_id
    ) or _first(events, "case.delivered")
    escalated = _first(events, "case.escalated")

    out = [
        Step("reported", "已报警", received_at),
        Step("answered", "调度员已接警", _at(joined)),
        Step("evidence", "已取证、核验证件和保险", _at(evidence)),
        Step("cleared", "已撤离现场", _at(cleared)),
    ]
    if escalated is not None:
        reason = str(escalated.detail.get("reason") or "")
        return [*out, Step("escalated", "转为现场处理", escalated.at, reason)]
    version_note = f"第{len(issued)}版（更正）" if len(issued) > 1 else ""
    out += [
        Step("handed_over", "已移交民警认定", _at(handed)),
        Step("determined", "已作出事故认定", issued[-1].at if issued else None, version_note),
        Step("delivered", "认定书已送达您", _at(reached)),
    ]
    return out + list(review) + list(claim)


def current(all_steps: Sequence[Step]) -> dict[str, Any]:
    """The last step done and what comes next."""
    done = [s for s in all_steps if s.at is not None]
    last = done[-1] if done else all_steps[0]
    return {"key": last.key, "title": last.title, "next": NEXT.get(last.key, last.note)}
