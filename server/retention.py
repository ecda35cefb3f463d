"""Retention: a closed case's recordings, stills, clips and photos are deleted ``[retention]
media_days`` after it closed, and the case's log says which, with each file's SHA-256 and size.

A case closes when its determination reached every party, or when it was escalated to on-scene
handling; a review (复核) decided or concluded later, or an insurance claim paid or closed later,
moves the date on, and one still open holds everything. What is kept: the case, its determinations
and their documents, the review's attachments (they belong to the review's written record), and
the log itself.

Every worker runs the job; each case is expired in one transaction that locks the case first
(``lock_case``, as every writer of a case's log does), so two workers never both delete or log the
same files. The files go after the commit: a worker killed in between leaves files no row names,
never a row naming a file that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.calls.playable import copy_name
from server.cases import now_utc
from server.casework.events import Actor, append, lock_case
from server.config import RetentionSection
from server.db.insurers import Claim
from server.db.masked import MaskedCopy
from server.db.models import Case, Evidence
from server.db.portal import Review
from server.lifecycles.case import CaseStatus
from server.lifecycles.claim import OPEN as OPEN_CLAIM
from server.lifecycles.review import ReviewStatus

logger = logging.getLogger(__name__)
SYSTEM = Actor(None, "system", "retention")
# The media kinds that expire; any other kind (a review's attachments, a kind added later) is kept.
EXPIRING = ("recording", "still", "clip", "photo", "scene-still", "scene-sound")
OPEN_REVIEW = (ReviewStatus.REQUESTED, ReviewStatus.FORWARDED, ReviewStatus.ACCEPTED)


async def closed_at(session: AsyncSession, case: Case) -> datetime | None:
    """When the case closed for good, or None while it is open or held."""
    if case.status == CaseStatus.DELIVERED:
        times = [case.delivered_at]
    elif case.status == CaseStatus.ESCALATED:
        times = [case.escalated_at]
    else:
        return None
    review = await session.scalar(select(Review).where(Review.case_id == case.id))
    if review is not None:
        if review.status in OPEN_REVIEW:
            return None
        times += [review.decided_at, review.concluded_at]
    claims = (await session.execute(select(Claim.status, Claim.updated_at).where(Claim.case_id == case.id))).all()
    if any(status in OPEN_CLAIM for status, _ in claims):
        return None
    # A paid claim the insurer never closes is over all the same: its last update is when.
    known = [t for t in [*times, *(at for _, at in claims)] if t is not None]
    return max(known) if known else None


class RetentionJob:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cfg: RetentionSection,
        evidence_dir: Path,
        playable_dir: Path,
    ) -> None:
        self._sessions = sessions
        self._cfg = cfg
        self._evidence_dir = evidence_dir
        self._playable_dir = playable_dir
        self.deleted_files = 0  # since the worker started, for /metrics

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("retention: a round failed; trying again")
            await asyncio.sleep(self._cfg.check_every_s)  # a cancel here ends the job: the worker stops

    async def sweep(self, now: datetime | None = None) -> int:
        """Expire every case that is due; the number of evidence files deleted."""
        now = now or now_utc()
        cutoff = now - timedelta(days=self._cfg.media_days)
        has_media = exists().where(Evidence.case_id == Case.id, Evidence.kind.in_(EXPIRING))
        async with self._sessions() as session:
            due = (
                await session.scalars(
                    select(Case.id)
                    .where(
                        Case.status.in_((CaseStatus.DELIVERED, CaseStatus.ESCALATED)),
                        func.coalesce(Case.delivered_at, Case.escalated_at) < cutoff,
                        has_media,
                    )
                    .order_by(Case.id)
                )
            ).all()
        deleted = 0
        for case_id in due:
            async with self._sessions.begin() as session:
                expired, paths = await self._expire(session, case_id, now, cutoff)
            await asyncio.to_thread(self._unlink, paths)
            deleted += expired
        self.deleted_files += deleted
        return deleted

    async def _expire(
        self, session: AsyncSession, case_id: int, now: datetime, cutoff: datetime
    ) -> tuple[int, list[Path]]:
        """In the caller's transaction: the rows gone and the log told; how many evidence files,
        and every file to delete after the commit (their copies too)."""
        await lock_case(session, case_id)
        case = await session.get(Case, case_id)
        closed = await closed_at(session, case) if case is not None else None
        if case is None or closed is None or closed >= cutoff:
            return 0, []
        items = list(
            (
                await session.scalars(
                    select(Evidence)
                    .where(Evidence.case_id == case_id, Evidence.kind.in_(EXPIRING))
                    .order_by(Evidence.id)
                )
            ).all()
        )
        if not items:
            return 0, []  # another worker took it between our look and our lock
        ids = [e.id for e in items]
        copies = list((await session.scalars(select(MaskedCopy).where(MaskedCopy.evidence_id.in_(ids)))).all())
        await session.execute(delete(MaskedCopy).where(MaskedCopy.evidence_id.in_(ids)))
        await session.execute(delete(Evidence).where(Evidence.id.in_(ids)))
        detail: dict[str, Any] = {
            "closed_at": closed.isoformat(),
            "kept_days": self._cfg.media_days,
            "files": [
                {"evidence": e.id, "kind": e.kind, "path": e.path, "sha256": e.sha256, "size_bytes": e.size_bytes}
                for e in items
            ],
            "masked_copies": len(copies),
        }
        await append(session, case_id, SYSTEM, "evidence.expired", detail, now)
        logger.info("case %s: retention deleted %d evidence files and %d copies", case.case_no, len(items), len(copies))
        return len(items), (
            [self._evidence_dir / e.path for e in items]
            + [self._evidence_dir / c.path for c in copies]
            + [self._playable_dir / copy_name(e) for e in items]
        )

    def _unlink(self, paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)
        for folder in {p.parent for p in paths if p.is_relative_to(self._evidence_dir)} - {self._evidence_dir}:
            with contextlib.suppress(OSError):
                folder.rmdir()  # the case's folder, once nothing is left in it
