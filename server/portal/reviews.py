"""The party's side of a review (复核): may I ask, until when, and asking, with the main evidence.

The three days run from the determination's delivery *to that party*: the provider's receipt of
their determination SMS, or their first look at it in the portal if that came first. Both are the
case log's ``delivery.reached`` events (the portal's written here, once per party and version), so
the deadline, the progress page and the audit read one record. Everything a party asks is decided
with the case locked, so two parties asking at once share one review instead of making two.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import case_summary, now_utc
from server.casework.events import Actor, append, lock_case
from server.casework.parties import POSITIONS
from server.config import PortalSection
from server.db.models import Case, CaseEvent, Determination, Evidence, Party
from server.db.portal import Review, ReviewApplicant
from server.errors import Conflict, NotFound
from server.lifecycles.review import REVIEW, ReviewAction, ReviewStatus
from server.portal import review_rules as rules
from server.portal.access import Visitor, queue_sms
from server.portal.attachments import KINDS, Attachment, write_once
from server.portal.timeline import Step

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Changed = Callable[[dict[str, Any]], Awaitable[None]]


def party_actor(party_id: int) -> Actor:
    """A party as the case log names them: by id only, nothing personal."""
    return Actor(None, f"party:{party_id}", "portal")


def own_case(visitor: Visitor) -> tuple[int, int]:
    if visitor.case_id is None or visitor.party_id is None:
        raise NotFound("没有找到您的案件，请用短信中的链接重新登录 (no case for this session)")
    return visitor.case_id, visitor.party_id


async def notify_all(session: AsyncSession, case: Case, text: str, now: datetime) -> None:
    """The same SMS to every party of the case, in the caller's transaction."""
    for party in (await session.scalars(select(Party).where(Party.case_id == case.id))).all():
        queue_sms(session, "review", party.phone, text, now, case_id=case.id, party_id=party.id)


async def current_determination(session: AsyncSession, case_id: int) -> Determination | None:
    return await session.scalar(
        select(Determination).where(Determination.case_id == case_id).order_by(Determination.version.desc()).limit(1)
    )


async def delivered_at(session: AsyncSession, case_id: int, party_id: int, determination_id: int) -> datetime | None:
    """When ``determination_id`` first reached the party, by SMS receipt or in the portal."""
    events = await session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id == case_id, CaseEvent.action == "delivery.reached")
        .order_by(CaseEvent.seq)
    )
    times = [
        e.at for e in events if e.detail.get("party") == party_id and e.detail.get("determination") == determination_id
    ]
    return min(times, default=None)


def closed_reason(review: Review) -> str:
    """Why a party can no longer ask or join: one review per accident, and it has moved on."""
    if ReviewStatus(review.status) in (ReviewStatus.FORWARDED, ReviewStatus.ACCEPTED):
        return "本起事故已有当事人申请复核并已转交上级，一起事故只复核一次，进度见下方。"
    return "本起事故已经复核过，一起事故只复核一次，结果见下方。"


class Reviews:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cfg: PortalSection,
        evidence_dir: Path,
        public_url: str,
        wake_sms: Callable[[], None],
        changed: Changed,
        clock: Clock = now_utc,
    ) -> None:
        self._sessions = sessions
        self._cfg = cfg
        self._evidence_dir = evidence_dir
        self._url = f"{public_url}/p"
        self._wake_sms = wake_sms
        self._changed = changed  # consoles and the parties' pages hear that the case moved
        self._clock = clock

    @property
    def max_file_bytes(self) -> int:
        return int(self._cfg.review_file_max_mb * 1_000_000)

    @property
    def max_files(self) -> int:
        return self._cfg.review_files_max

    # --- delivery in the portal ------------------------------------------------------------------

    async def viewed(self, visitor: Visitor, determination_id: int) -> None:
        """The party opened a determination: if it is the current version and had not reached them
        yet, it is delivered now, and their three days start."""
        case_id, party_id = own_case(visitor)
        async with self._sessions.begin() as session:
            await lock_case(session, case_id)
            current = await current_determination(session, case_id)
            if current is None or current.id != determination_id:
                return
            if await delivered_at(session, case_id, party_id, current.id) is None:
                await self._record_view(session, case_id, party_id, current.id, self._clock())

    @staticmethod
    async def _record_view(
        session: AsyncSession, case_id: int, party_id: int, determination_id: int, now: datetime
    ) -> None:
        detail = {"party": party_id, "determination": determination_id, "via": "portal"}
        await append(session, case_id, party_actor(party_id), "delivery.reached", detail, now)

    # --- may I ask -------------------------------------------------------------------------------

    async def standing(self, visitor: Visitor) -> dict[str, Any]:
        """Whether the party may ask now, until when (in words), why not, and the review so far."""
        case_id, party_id = own_case(visitor)
        now = self._clock()
        async with self._sessions() as session:
            case = await session.get(Case, case_id)
            current = await current_determination(session, case_id)
            review = await session.scalar(select(Review).where(Review.case_id == case_id))
            applicants = [] if review is None else await self._applicants(session, review.id)
            delivered = None if current is None else await delivered_at(session, case_id, party_id, current.id)
        if case is None:
            raise NotFound("没有找到您的案件，请用短信中的链接重新登录 (no case for this session)")
        out: dict[str, Any] = {
            "can_file": False,
            "reason": None,
            "deadline": None,
            "deadline_words": None,
            "delivered_at_local": None if delivered is None else rules.local_minute(delivered),
            "limits": {"files": self.max_files, "file_mb": self._cfg.review_file_max_mb, "kinds": KINDS},
            "review": None if review is None else self._review_json(review, applicants, party_id),
        }
        if current is None:
            out["reason"] = "认定书出具并送达后，可在三日内申请复核。"
            return out
        end = rules.due(delivered or now, rules.FILE_DAYS, self._cfg)
        out |= {"deadline": end.isoformat(), "deadline_words": rules.words(end)}
        if party_id in applicants:
            out["reason"] = "您已申请复核，进度见下方。"
        elif delivered is not None and now >= end:
            out["reason"] = rules.late_reason(delivered, end)
        elif review is not None and not REVIEW.allows(review.status, ReviewAction.JOIN):
            out["reason"] = closed_reason(review)
        else:
            out["can_file"] = True
            out["sentence"] = f"您可在{rules.words(end)}前申请复核"
        return out

    async def steps_for(self, visitor: Visitor) -> list[Step]:
        """The review's steps for the party's progress page; none while there is no review."""
        case_id, _ = own_case(visitor)
        async with self._sessions() as session:
            review = await session.scalar(select(Review).where(Review.case_id == case_id))
        return [] if review is None else rules.review_steps(review, self._cfg.review_unit)

    # --- asking ----------------------------------------------------------------------------------

    async def file(self, visitor: Visitor, request: str, reasons: str, files: list[Attachment]) -> dict[str, Any]:
        """Ask for a review, or join the one another party asked for while it is still with the
        issuing unit. A late request is refused in writing: logged in the case and told by SMS."""
        case_id, party_id = own_case(visitor)
        now = self._clock()
        refusal: Conflict | None = None
        summary: dict[str, Any] | None = None
        async with self._sessions.begin() as session:
            await lock_case(session, case_id)
            case = await session.get(Case, case_id)
            current = await current_determination(session, case_id)
            if case is None or current is None:
                raise Conflict("认定书出具并送达后，才能申请复核 (no determination to review yet)")
            review = await session.scalar(select(Review).where(Review.case_id == case_id))
            if review is not None and party_id in await self._applicants(session, review.id):
                raise Conflict("您已申请复核，请查看下方进度，无需重复申请 (you asked already)")
            delivered = await delivered_at(session, case_id, party_id, current.id)
            if delivered is None:  # they are reading it here and now
                await self._record_view(session, case_id, party_id, current.id, now)
                delivered = now
            end = rules.due(delivered, rules.FILE_DAYS, self._cfg)
            if now >= end:
                refusal = Conflict(f"{rules.late_reason(delivered, end)} (the 3 days to ask for a review are over)")
                await self._refuse_late(session, case, party_id, delivered, end, now)
            elif review is not None and not REVIEW.allows(review.status, ReviewAction.JOIN):
                raise Conflict(f"{closed_reason(review)} (one review per accident, and it was forwarded already)")
            else:
                await self._ask(session, case, current, review, party_id, request, reasons, files, now)
                summary = case_summary(case)
        self._wake_sms()
        if refusal is not None or summary is None:
            raise refusal or Conflict("请刷新页面后重试 (try again)")
        logger.info("case %d: party %d asked for a review", case_id, party_id)
        await self._changed(summary)
        return await self.standing(visitor)

    async def _ask(
        self,
        session: AsyncSession,
        case: Case,
        current: Determination,
        review: Review | None,
        party_id: int,
        request: str,
        reasons: str,
        files: list[Attachment],
        now: datetime,
    ) -> None:
        joining = review is not None
        if review is None:
            review = Review(
                case_id=case.id,
                determination_id=current.id,
                status=REVIEW.initial.value,
                request=request,
                reasons=reasons,
                requested_at=now,
                forward_due=rules.due(now, rules.FORWARD_DAYS, self._cfg),
            )
            session.add(review)
            await session.flush()
        else:
            review.status = REVIEW.after(review.status, ReviewAction.JOIN).value
        session.add(ReviewApplicant(review_id=review.id, party_id=party_id, joined_at=now))
        stored = await self._store(session, case, party_id, review.id, files, now)
        position = await session.scalar(select(Party.position).where(Party.id == party_id))
        label = POSITIONS[(position or 1) - 1]
        detail = {
            "review": review.id,
            "party": party_id,
            "determination": review.determination_id,
            "request": request,
            "reasons": reasons,
            "attachments": stored,
        }
        if joining:
            await append(session, case.id, party_actor(party_id), "review.joined", detail, now)
            await notify_all(session, case, rules.joined_text(case.case_no, label, self._url), now)
        else:
            detail["forward_due"] = review.forward_due.isoformat()
            await append(session, case.id, party_actor(party_id), "review.requested", detail, now)
            text = rules.requested_text(case.case_no, label, self._cfg.review_unit, review.forward_due, self._url)
            await notify_all(session, case, text, now)

    async def _store(
        self, session: AsyncSession, case: Case, party_id: int, review_id: int, files: list[Attachment], now: datetime
    ) -> list[dict[str, Any]]:
        """Each distinct file once, written before its row so that no row names a missing file."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in files:
            if item.sha256 in seen:
                continue
            seen.add(item.sha256)
            relative = item.relative(case.case_no, party_id)
            await asyncio.to_thread(write_once, self._evidence_dir / relative, item.data)
            row = Evidence(
                case_id=case.id,
                kind="review",
                path=relative,
                sha256=item.sha256,
                size_bytes=len(item.data),
                created_at=now,
                note="复核申请证据 (review evidence)",
                party_id=party_id,
                meta=item.meta(review_id),
            )
            session.add(row)
            await session.flush()
            out.append({"evidence": row.id, "sha256": item.sha256, "type": item.media_type})
        return out

    async def _refuse_late(
        self, session: AsyncSession, case: Case, party_id: int, delivered: datetime, end: datetime, now: datetime
    ) -> None:
        """The written refusal, once per party: a second late try is refused on the page alone."""
        events = await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.action == "review.refused_late")
        )
        if any(e.detail.get("party") == party_id for e in events):
            return
        detail = {"party": party_id, "delivered": delivered.isoformat(), "deadline": end.isoformat()}
        await append(session, case.id, party_actor(party_id), "review.refused_late", detail, now)
        phone = await session.scalar(select(Party.phone).where(Party.id == party_id))
        if phone:
            queue_sms(
                session, "review", phone, rules.late_text(case.case_no, end), now, case_id=case.id, party_id=party_id
            )
        logger.info("case %d: party %d asked for a review too late", case.id, party_id)

    @staticmethod
    async def _applicants(session: AsyncSession, review_id: int) -> list[int]:
        rows = await session.scalars(
            select(ReviewApplicant.party_id).where(ReviewApplicant.review_id == review_id).order_by(ReviewApplicant.id)
        )
        return list(rows.all())

    def _review_json(self, review: Review, applicants: list[int], party_id: int) -> dict[str, Any]:
        status = ReviewStatus(review.status)
        return {
            "status": status.value,
            "label": REVIEW.labels[status].split(" ")[0],
            "next": REVIEW.next_steps[status],
            "mine": party_id in applicants,
            "applicants": len(applicants),
            "requested_at_local": rules.local_minute(review.requested_at),
            "decision_reason": review.decision_reason,
            "conclusion_text": review.conclusion_text,
            "steps": [s.json() for s in rules.review_steps(review, self._cfg.review_unit)],
        }
