"""The staff's side of a review (复核): the issuing unit's officer forwards it with the case file to
the unit above; a reviewer of that unit accepts it or not and concludes an accepted one.

Each move is the review lifecycle's (``server/lifecycles/review.py``), made with the case locked,
logged in the case's hash-chained log, and told to every party by SMS in the same transaction (a
conclusion also to the parties' insurers, ``server/insurers/events.py``).
The deadline of each stage is stored when the stage starts, so the list shows the staff who own a
review how long they have and flags the overdue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import case_summary, now_utc
from server.casework.events import Actor, append, lock_case
from server.casework.parties import POSITIONS
from server.config import PortalSection
from server.db.models import Case, CaseEvent, Determination, Evidence, Party
from server.db.portal import Review
from server.errors import Conflict, NotFound
from server.insurers.events import queue_review_concluded
from server.lifecycles.review import OWNER, REVIEW, ReviewAction, ReviewStatus
from server.portal import review_rules as rules
from server.portal.reviews import Changed, Clock, current_determination, notify_all
from server.users import Role

logger = logging.getLogger(__name__)
# Who makes each move: the issuing unit's officers forward, the unit above's reviewers decide.
MOVER = {
    ReviewAction.FORWARD: Role.OFFICER,
    ReviewAction.ACCEPT: Role.REVIEWER,
    ReviewAction.DECLINE: Role.REVIEWER,
    ReviewAction.UPHOLD: Role.REVIEWER,
    ReviewAction.REDETERMINE: Role.REVIEWER,
}


@dataclass(frozen=True)
class Staff:
    """Who is at the console, as far as reviews care: the role and the units served (None: all)."""

    role: Role
    units: frozenset[str] | None
    actor: Actor

    def serves(self, adcode: str) -> bool:
        return self.units is None or adcode in self.units


def no_review() -> NotFound:
    return NotFound("没有这个复核申请，请刷新列表 (no such review)")


class ReviewDesk:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cfg: PortalSection,
        public_url: str,
        wake_sms: Callable[[], None],
        changed: Changed,
        clock: Clock = now_utc,
    ) -> None:
        self._sessions = sessions
        self._cfg = cfg
        self._url = f"{public_url}/p"
        self._wake_sms = wake_sms
        self._changed = changed
        self._clock = clock

    # --- what the console shows --------------------------------------------------------------

    async def listing(self, staff: Staff) -> list[dict[str, Any]]:
        """The reviews of the units served, the ones waiting for this operator first, the most
        pressing deadline first; concluded ones after them, newest first."""
        async with self._sessions() as session:
            query = select(Review, Case).join(Case, Case.id == Review.case_id)
            if staff.units is not None:
                query = query.where(Case.unit_adcode.in_(staff.units))
            rows = (await session.execute(query.order_by(Review.requested_at.desc()))).all()
            out = [await self._json(session, review, case, staff, full=False) for review, case in rows]
        return sorted(out, key=lambda r: (not r["mine"], r["due"] or "9999"))

    async def detail(self, review_id: int, staff: Staff) -> dict[str, Any]:
        async with self._sessions() as session:
            review, case = await self._visible(session, review_id, staff)
            return await self._json(session, review, case, staff, full=True)

    async def _visible(self, session: AsyncSession, review_id: int, staff: Staff) -> tuple[Review, Case]:
        """Another unit's review is reported as absent, as cases are."""
        review = await session.get(Review, review_id)
        case = None if review is None else await session.get(Case, review.case_id)
        if review is None or case is None or not staff.serves(case.unit_adcode):
            raise no_review()
        return review, case

    async def _json(
        self, session: AsyncSession, review: Review, case: Case, staff: Staff, full: bool
    ) -> dict[str, Any]:
        status = ReviewStatus(review.status)
        now = self._clock()
        end = rules.stage_due(review)
        current = await current_determination(session, case.id)
        owner = OWNER.get(status)
        new_version_needed = status is ReviewStatus.REDETERMINE and (
            current is None or current.id == review.determination_id
        )
        out: dict[str, Any] = {
            "id": review.id,
            "case_id": case.id,
            "case_no": case.case_no,
            "unit": case.unit.name,
            "status": status.value,
            "label": REVIEW.labels[status],
            "requested_at": review.requested_at.isoformat(),
            "due": None if end is None else end.isoformat(),
            "due_words": None if end is None else rules.words(end),
            "owner": None if owner is None else owner[0],
            "overdue": rules.overdue(review, now),
            "mine": (owner is not None and owner[0] == staff.role.value)
            or (new_version_needed and staff.role is Role.OFFICER),
            "actions": [a.value for a in ReviewAction if self._may(staff, status, a)],
            "new_version_needed": new_version_needed,
            "determination_id": review.determination_id,
            "forward_due": review.forward_due.isoformat(),
            "decide_due": None if review.decide_due is None else review.decide_due.isoformat(),
            "conclude_due": None if review.conclude_due is None else review.conclude_due.isoformat(),
            "decision_reason": review.decision_reason,
            "conclusion_text": review.conclusion_text,
        }
        if full:
            out |= await self._file(session, review, case)
        return out

    @staticmethod
    def _may(staff: Staff, status: ReviewStatus, action: ReviewAction) -> bool:
        return action in MOVER and MOVER[action] is staff.role and REVIEW.allows(status, action)

    @staticmethod
    async def _file(session: AsyncSession, review: Review, case: Case) -> dict[str, Any]:
        """What the applicants wrote, their evidence, and the case file the reviewer decides on."""
        positions = dict(
            (await session.execute(select(Party.id, Party.position).where(Party.case_id == case.id))).all()
        )
        asked = await session.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id == case.id, CaseEvent.action.in_(["review.requested", "review.joined"]))
            .order_by(CaseEvent.seq)
        )
        files = await session.scalars(
            select(Evidence).where(Evidence.case_id == case.id, Evidence.kind == "review").order_by(Evidence.id)
        )
        versions = await session.scalars(
            select(Determination).where(Determination.case_id == case.id).order_by(Determination.version)
        )
        return {
            "applicants": [
                {
                    "position": POSITIONS[positions.get(e.detail["party"], 1) - 1],
                    "at": e.at.isoformat(),
                    "request": e.detail.get("request", ""),
                    "reasons": e.detail.get("reasons", ""),
                }
                for e in asked
            ],
            "attachments": [
                {
                    "id": f.id,
                    "url": f"/api/evidence/{f.id}",
                    "position": POSITIONS[positions.get(f.party_id or 0, 1) - 1],
                    "name": (f.meta or {}).get("name", ""),
                    "type": (f.meta or {}).get("type", ""),
                    "sha256": f.sha256,
                    "size_bytes": f.size_bytes,
                }
                for f in files
            ],
            "determinations": [
                {
                    "id": d.id,
                    "version": d.version,
                    "contested": d.id == review.determination_id,
                    "pdf": f"/api/determinations/{d.id}/pdf",
                }
                for d in versions
            ],
            "case_file": {"events": f"/api/cases/{case.id}/events", "evidence": f"/api/cases/{case.id}/evidence"},
        }

    # --- the moves ---------------------------------------------------------------------------

    async def forward(self, review_id: int, staff: Staff) -> dict[str, Any]:
        def apply(review: Review, now: datetime) -> tuple[str, dict[str, Any]]:
            review.forwarded_at, review.forwarded_by = now, staff.actor.user_id
            review.decide_due = rules.due(now, rules.DECIDE_DAYS, self._cfg)
            return "review.forwarded", {"to": self._cfg.review_unit, "decide_due": review.decide_due.isoformat()}

        return await self._move(review_id, staff, ReviewAction.FORWARD, apply)

    async def decide(self, review_id: int, staff: Staff, accept: bool, reason: str) -> dict[str, Any]:
        def apply(review: Review, now: datetime) -> tuple[str, dict[str, Any]]:
            review.decided_at, review.decided_by, review.decision_reason = now, staff.actor.user_id, reason
            detail: dict[str, Any] = {"reason": reason}
            if accept:
                review.conclude_due = rules.due(now, rules.CONCLUDE_DAYS, self._cfg)
                detail["conclude_due"] = review.conclude_due.isoformat()
            return ("review.accepted" if accept else "review.not_accepted"), detail

        return await self._move(review_id, staff, ReviewAction.ACCEPT if accept else ReviewAction.DECLINE, apply)

    async def conclude(self, review_id: int, staff: Staff, uphold: bool, text: str) -> dict[str, Any]:
        action = ReviewAction.UPHOLD if uphold else ReviewAction.REDETERMINE

        def apply(review: Review, now: datetime) -> tuple[str, dict[str, Any]]:
            review.concluded_at, review.concluded_by = now, staff.actor.user_id
            review.conclusion = REVIEW.after(review.status, action).value
            review.conclusion_text = text
            return "review.concluded", {"conclusion": review.conclusion, "text": text}

        return await self._move(review_id, staff, action, apply)

    async def _move(
        self,
        review_id: int,
        staff: Staff,
        action: ReviewAction,
        apply: Callable[[Review, datetime], tuple[str, dict[str, Any]]],
    ) -> dict[str, Any]:
        now = self._clock()
        async with self._sessions.begin() as session:
            case_id = await session.scalar(select(Review.case_id).where(Review.id == review_id))
            if case_id is None:
                raise no_review()
            await lock_case(session, case_id)
            again = select(Review).where(Review.id == review_id).execution_options(populate_existing=True)
            review = await session.scalar(again)
            case = await session.get(Case, case_id)
            if review is None or case is None or not staff.serves(case.unit_adcode):
                raise no_review()
            if not REVIEW.allows(review.status, action):
                label = REVIEW.labels[ReviewStatus(review.status)]
                raise Conflict(f"这个复核现在是“{label.split(' ')[0]}”，不能这样操作，请刷新 (the review is {label})")
            action_name, detail = apply(review, now)
            review.status = REVIEW.after(review.status, action).value
            await append(session, case.id, staff.actor, action_name, {"review": review.id, **detail}, now)
            if action_name == "review.concluded":
                await queue_review_concluded(session, case, review, now)
            await notify_all(session, case, self._text(case, review), now)
            out = await self._json(session, review, case, staff, full=True)
            summary = case_summary(case)
        logger.info("case %d: review %d %s", case_id, review_id, action.value)
        self._wake_sms()
        await self._changed(summary)
        return out

    def _text(self, case: Case, review: Review) -> str:
        status, unit = ReviewStatus(review.status), self._cfg.review_unit
        if status is ReviewStatus.FORWARDED and review.decide_due is not None:
            return rules.forwarded_text(case.case_no, unit, review.decide_due, self._url)
        if status in (ReviewStatus.ACCEPTED, ReviewStatus.NOT_ACCEPTED):
            accepted = status is ReviewStatus.ACCEPTED
            return rules.decided_text(case.case_no, unit, accepted, review.conclude_due, self._url)
        return rules.concluded_text(case.case_no, status, self._url)
