"""One-key claims (一键理赔): a party's request to the insurer of their policy, and the insurer's
updates to it through the insurers' API.

Each change is one transaction: the claim row, its update, the case log's event (ids and statuses
only, nothing personal), the party's SMS and, for a request, the ``claim.requested`` event in the
webhook outbox. So the party's progress, their SMS, the insurer and the audit cannot disagree.
A party may claim once the determination has reached them (the case log's ``delivery.reached``);
pressing again finds the claim already made.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import case_summary, now_utc
from server.casework.events import Actor, append
from server.db.insurers import Claim, ClaimUpdate, Insurer
from server.db.models import Case, CaseEvent, Evidence, Party
from server.errors import Conflict, NotFound
from server.insurers import claim_rules as rules
from server.insurers.api_access import Caller
from server.insurers.directory import insurers_of
from server.lifecycles.claim import CLAIM, EVENT, ClaimStatus
from server.portal.access import Visitor, queue_sms
from server.portal.reviews import current_determination, own_case, party_actor
from server.portal.timeline import Step

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Changed = Callable[[dict[str, Any]], Awaitable[None]]


class ClaimEvents(Protocol):
    """The webhook outbox's side: ``claim.requested`` written in the caller's transaction."""

    async def claim_requested(self, session: AsyncSession, claim: Claim, now: datetime) -> None: ...


def insurer_actor(code: str) -> Actor:
    """An insurer as the case log names it: by its code, through its API."""
    return Actor(None, f"insurer:{code}", "insurers-api")


async def _reached(session: AsyncSession, case_id: int, party_id: int) -> bool:
    """Whether any version of the determination has reached the party (SMS receipt or first look)."""
    events = await session.scalars(
        select(CaseEvent.detail).where(CaseEvent.case_id == case_id, CaseEvent.action == "delivery.reached")
    )
    return any(detail.get("party") == party_id for detail in events)


def no_claim() -> NotFound:
    return NotFound("没有这项理赔，或它不是向贵公司提出的 (no such claim for this insurer)")


class Claims:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events: ClaimEvents,
        wake_sms: Callable[[], None],
        changed: Changed,
        clock: Clock = now_utc,
    ) -> None:
        self._sessions = sessions
        self._events = events
        self._wake_sms = wake_sms
        self._changed = changed
        self._clock = clock

    # --- the party's side --------------------------------------------------------------------

    async def _party_context(
        self, session: AsyncSession, visitor: Visitor
    ) -> tuple[Case, Party, Insurer | None, Claim | None]:
        case_id, party_id = own_case(visitor)
        case = await session.get(Case, case_id)
        party = await session.get(Party, party_id)
        if case is None or party is None:
            raise NotFound("没有找到您的案件，请用短信中的链接重新登录 (no case for this session)")
        code = (await insurers_of(session, [party])).get(party.id)
        insurer = None if code is None else await session.get(Insurer, code)
        claim = await session.scalar(select(Claim).where(Claim.party_id == party.id).order_by(Claim.id.desc()).limit(1))
        return case, party, insurer, claim

    async def for_party(self, visitor: Visitor) -> dict[str, Any]:
        """The 一键理赔 section: whether the party may claim now, and if not why; their claim."""
        async with self._sessions() as session:
            case, party, insurer, claim = await self._party_context(session, visitor)
            reached = await _reached(session, case.id, party.id)
            photos = await self._photo_count(session, party.id)
        reason = ""
        if insurer is None:
            reason = "您的保险公司尚未接入快处，请持认定书直接联系保险公司报案。"
        elif not reached:
            reason = "认定书送达您之后，即可一键向保险公司申请理赔。"
        name = None if insurer is None else rules.short_name(insurer.code, insurer.name)
        return rules.party_view(claim, name, not reason, reason, photos)

    async def _photo_count(self, session: AsyncSession, party_id: int) -> int:
        return len((await session.scalars(select(Evidence.id).where(*self._photos_of(party_id)))).all())

    @staticmethod
    def _photos_of(party_id: int) -> list[Any]:
        """The photos a party gave (not a review's attachments, which are for the police)."""
        return [Evidence.party_id == party_id, Evidence.kind != "review"]

    async def request(self, visitor: Visitor, preferred_contact: str) -> dict[str, Any]:
        """Send the party's claim to their insurer; a second press finds the first claim."""
        now = self._clock()
        async with self._sessions.begin() as session:
            case, party, insurer, claim = await self._party_context(session, visitor)
            if claim is None:
                if insurer is None:
                    raise Conflict("您的保险公司尚未接入快处，请持认定书直接联系保险公司报案 (insurer not connected)")
                if not await _reached(session, case.id, party.id):
                    raise Conflict("认定书送达您之后才能申请理赔 (the determination has not reached you yet)")
                determination = await current_determination(session, case.id)
                assert determination is not None  # it reached the party
                claim = Claim(
                    case_id=case.id,
                    party_id=party.id,
                    insurer_code=insurer.code,
                    determination_id=determination.id,
                    status=ClaimStatus.REQUESTED,
                    preferred_contact=rules.PREFERRED_CONTACT[preferred_contact],
                    requested_at=now,
                    updated_at=now,
                )
                session.add(claim)
                await session.flush()
                update = ClaimUpdate(claim_id=claim.id, status=ClaimStatus.REQUESTED, at=now)
                session.add(update)
                detail = {"claim": claim.id, "insurer": insurer.code, "party": party.id, "status": "requested"}
                await append(session, case.id, party_actor(party.id), "claim.requested", detail, now)
                await self._events.claim_requested(session, claim, now)
                text = rules.sms_text(update, rules.short_name(insurer.code, insurer.name), case.case_no)
                queue_sms(session, "claim", party.phone, text, now, case_id=case.id, party_id=party.id)
                logger.info(
                    "case %s: party %s claimed with insurer %s (claim %s)", case.id, party.id, insurer.code, claim.id
                )
            summary = case_summary(case)
        self._wake_sms()
        await self._changed(summary)
        return await self.for_party(visitor)

    async def steps_for(self, visitor: Visitor) -> list[Step]:
        """The claim's steps for the party's progress; none before a claim."""
        async with self._sessions() as session:
            _, _, _, claim = await self._party_context(session, visitor)
            if claim is None:
                return []
            insurer = await session.get(Insurer, claim.insurer_code)
            updates = (
                await session.scalars(
                    select(ClaimUpdate).where(ClaimUpdate.claim_id == claim.id).order_by(ClaimUpdate.id)
                )
            ).all()
        assert insurer is not None
        return rules.steps(updates, rules.short_name(insurer.code, insurer.name))

    # --- the insurer's side ------------------------------------------------------------------

    async def listing(self, caller: Caller, status: ClaimStatus | None) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            query = select(Claim, Case.case_no, Party).join(Case, Case.id == Claim.case_id)
            query = query.join(Party, Party.id == Claim.party_id).where(Claim.insurer_code == caller.code)
            if status is not None:
                query = query.where(Claim.status == status)
            rows = (await session.execute(query.order_by(Claim.id))).all()
            ids = [claim.id for claim, _, _ in rows]
            updates = (
                await session.scalars(select(ClaimUpdate).where(ClaimUpdate.claim_id.in_(ids)).order_by(ClaimUpdate.id))
            ).all()
        by_claim: dict[int, list[ClaimUpdate]] = {}
        for u in updates:
            by_claim.setdefault(u.claim_id, []).append(u)
        return [rules.insurer_view(c, case_no, party, by_claim.get(c.id, [])) for c, case_no, party in rows]

    async def update(
        self,
        caller: Caller,
        claim_id: int,
        status: ClaimStatus,
        *,
        adjuster: tuple[str, str] | None = None,
        amount_cny: Decimal | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """The insurer's new status for its claim, if the lifecycle allows it from where the claim is."""
        now = self._clock()
        async with self._sessions.begin() as session:
            claim = await session.get(Claim, claim_id, with_for_update=True)
            if claim is None or claim.insurer_code != caller.code:
                raise no_claim()
            if status not in EVENT or not CLAIM.allows(claim.status, EVENT[status]):
                was = CLAIM.labels[ClaimStatus(claim.status)]
                raise Conflict(f"理赔当前状态为“{was}”，不能变为 {status.value} (not allowed from {claim.status})")
            claim.status = CLAIM.after(claim.status, EVENT[status])
            claim.updated_at = now
            update = ClaimUpdate(claim_id=claim.id, status=status, at=now)
            if adjuster is not None:
                claim.adjuster_name, claim.adjuster_phone = update.adjuster_name, update.adjuster_phone = adjuster
            if amount_cny is not None:
                claim.amount_cny = update.amount_cny = amount_cny
            if status is ClaimStatus.CLOSED:
                claim.closed_reason = update.reason = reason
                claim.closed_at = now
            session.add(update)
            case = await session.get(Case, claim.case_id)
            party = await session.get(Party, claim.party_id)
            insurer = await session.get(Insurer, claim.insurer_code)
            assert case is not None and party is not None and insurer is not None
            detail = {"claim": claim.id, "insurer": caller.code, "party": party.id, "status": status.value}
            await append(session, case.id, insurer_actor(caller.code), "claim.updated", detail, now)
            text = rules.sms_text(update, rules.short_name(insurer.code, insurer.name), case.case_no)
            queue_sms(session, "claim", party.phone, text, now, case_id=case.id, party_id=party.id)
            await session.flush()
            updates = (
                await session.scalars(
                    select(ClaimUpdate).where(ClaimUpdate.claim_id == claim.id).order_by(ClaimUpdate.id)
                )
            ).all()
            view = rules.insurer_view(claim, case.case_no, party, updates)
            summary = case_summary(case)
        logger.info("case %s: insurer %s moved claim %s to %s", summary["id"], caller.code, claim_id, status.value)
        self._wake_sms()
        await self._changed(summary)
        return view
