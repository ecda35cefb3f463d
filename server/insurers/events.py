"""The events insurers are sent (docs/insurers.md), written to the webhook outbox in the caller's
transaction: the same one that makes the case delivered or concludes its review, so that a crash
either keeps both the change and its events or neither.

One event per insurer per case version and type, whichever worker writes it: ``event_key`` says
what it is about and is looked up first, under the caller's lock on the case.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.casework.liability import SITUATIONS
from server.casework.parties import POSITIONS
from server.db.insurers import WebhookMessage, WebhookStatus
from server.db.models import Case, Determination, Evidence, Party
from server.db.portal import Review
from server.insurers.directory import insurers_of
from server.insurers.links import document_path, evidence_path
from server.portal.masking import mask_name

logger = logging.getLogger(__name__)
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
DELIVERED = "determination.delivered"
CORRECTED = "determination.corrected"
REVIEW_CONCLUDED = "review.concluded"

# The senders running in this process, told when a transaction that wrote events commits, so an
# event goes out at once rather than at the next poll (other processes' senders poll).
_senders: weakref.WeakSet[_Waker] = weakref.WeakSet()


class _Waker:
    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._loop = asyncio.get_running_loop()

    def __call__(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)


def register_sender(wake: Callable[[], None]) -> Callable[[], None]:
    """Called by a sender as it starts; returns what to call when it stops. (A sender that is
    dropped without stopping leaves the set with its last reference.)"""
    waker = _Waker(wake)
    _senders.add(waker)
    return lambda: _senders.discard(waker)


def _wake_after_commit(session: AsyncSession) -> None:
    def wake(_session: object) -> None:
        for waker in list(_senders):
            waker()

    event.listen(session.sync_session, "after_commit", wake, once=True)


def local_time(at: datetime) -> str:
    return at.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


async def queue_determination(session: AsyncSession, case: Case, determination_id: int, at: datetime) -> int:
    """The case was delivered with ``determination_id`` as its current version: each insurer of a
    party hears of it, as ``determination.delivered`` the first time, ``determination.corrected``
    for every later version. Returns how many events were written."""
    written = 0
    determination = await session.get(Determination, determination_id)
    assert determination is not None
    for code, body in (await event_data(session, case, determination, None)).items():
        first = f"{DELIVERED}:{code}:{case.id}"
        told = await session.scalar(select(WebhookMessage.determination_id).where(WebhookMessage.event_key == first))
        if told is None:
            written += await write_event(session, first, code, case, determination, DELIVERED, body, at)
        elif told != determination.id:
            key = f"{CORRECTED}:{code}:{determination.id}"
            written += await write_event(session, key, code, case, determination, CORRECTED, body, at)
    return written


async def queue_review_concluded(session: AsyncSession, case: Case, review: Review, at: datetime) -> int:
    """A review concluded (upheld, or a new determination ordered): each insurer of a party hears of
    it with the case's current version; a new version, once delivered, follows as a correction."""
    determination = await session.scalar(
        select(Determination).where(Determination.case_id == case.id).order_by(Determination.version.desc()).limit(1)
    )
    assert determination is not None
    contested = await session.scalar(select(Determination.version).where(Determination.id == review.determination_id))
    summary = {
        "conclusion": review.conclusion,
        "text": review.conclusion_text,
        "concluded_at": local_time(at),
        "contested_version": contested,
    }
    written = 0
    for code, body in (await event_data(session, case, determination, summary)).items():
        key = f"{REVIEW_CONCLUDED}:{code}:{review.id}"
        written += await write_event(session, key, code, case, determination, REVIEW_CONCLUDED, body, at)
    return written


async def _exists(session: AsyncSession, key: str) -> bool:
    found = await session.scalar(select(func.count()).where(WebhookMessage.event_key == key))
    return bool(found)


async def write_event(
    session: AsyncSession,
    key: str,
    code: str,
    case: Case,
    determination: Determination,
    kind: str,
    data: dict[str, Any],
    at: datetime,
) -> int:
    """One event into the outbox in the caller's transaction, unless ``key`` was written already;
    the sender is woken once the transaction commits. Returns how many were written (0 or 1)."""
    if await _exists(session, key):
        return 0
    session.add(
        WebhookMessage(
            webhook_id="msg_" + secrets.token_hex(16),
            event_key=key,
            insurer_code=code,
            case_id=case.id,
            determination_id=determination.id,
            event_type=kind,
            payload={"type": kind, "timestamp": local_time(at), "data": data},
            status=WebhookStatus.PENDING,
            attempts=0,
            next_attempt_at=at,
            created_at=at,
        )
    )
    _wake_after_commit(session)
    logger.info("case %d: %s queued for insurer %s", case.id, kind, code)
    return 1


async def event_data(
    session: AsyncSession, case: Case, determination: Determination, review: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Insurer code -> the event's ``data`` for that insurer: its insured parties in full, the others
    masked, the links as bare paths (signed when sent). The insurers' API and the claim's event
    show a case with this too, so every view of a case an insurer gets is the same."""
    parties = list(
        (await session.scalars(select(Party).where(Party.case_id == case.id).order_by(Party.position))).all()
    )
    insurer_of = await insurers_of(session, parties)
    if not insurer_of:
        return {}
    evidence = (await session.scalars(select(Evidence).where(Evidence.case_id == case.id).order_by(Evidence.id))).all()
    liabilities = determination.liabilities
    situation = SITUATIONS.get(determination.situation)
    common = {
        "case_no": case.case_no,
        "accident": {
            "time": local_time(case.triggered_at),
            "place": (case.facts or {}).get("place", ""),
            "situation": determination.situation,
            "situation_name": situation.name if situation else determination.situation,
        },
    }
    bodies: dict[str, dict[str, Any]] = {}
    for code in sorted(set(insurer_of.values())):
        bodies[code] = {
            **common,
            "determination": {
                "version": determination.version,
                "current": True,
                "sha256": determination.sha256,
                "issued_at": local_time(determination.issued_at),
                "pdf_url": document_path(code, determination.id),
            },
            "insured": [_insured(p, liabilities) for p in parties if insurer_of.get(p.id) == code],
            "others": [_other(p, liabilities, insurer_of) for p in parties if insurer_of.get(p.id) != code],
            "evidence": [
                {
                    "kind": e.kind,
                    "at": local_time(e.media_start or e.created_at),
                    "sha256": e.sha256,
                    "url": evidence_path(code, e.id),
                }
                for e in evidence
            ],
            "review": review,
        }
    return bodies


def _insured(p: Party, liabilities: dict[str, Any]) -> dict[str, Any]:
    return {
        "position": POSITIONS[p.position - 1],
        "role": p.role,
        "name": p.name,
        "id_number": p.id_number,
        "phone": p.phone,
        "licence_no": p.licence_no,
        "plate": p.plate,
        "vehicle_type": p.vehicle_type,
        "policy_no": p.policy_no,
        "liability": liabilities.get(str(p.id)),
    }


def _other(p: Party, liabilities: dict[str, Any], insurer_of: dict[int, str]) -> dict[str, Any]:
    return {
        "position": POSITIONS[p.position - 1],
        "role": p.role,
        "name": mask_name(p.name),
        "plate": p.plate,
        "insurer": insurer_of.get(p.id),
        "liability": liabilities.get(str(p.id)),
    }
