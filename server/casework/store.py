"""The dispatcher's work on a case in the database: parties, checks, facts, escalation, hand-over.

Each action is one transaction that also recomputes the case's eligibility, so what the console
shows is never older than the last change. Work is open while the case is ``new``; escalation and
hand-over close it, and later changes are the officer's (a new determination version).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.messages import utc_iso
from server.cases import case_for_work, case_summary, now_utc
from server.casework.checks import KINDS, CheckResult, PartyFacts, check_insurance, check_licence, check_vehicle
from server.casework.eligibility import ELIGIBLE, decide
from server.casework.escalation import EscalationIn
from server.casework.events import Actor, append, chain_errors, event_json
from server.casework.parties import POSITIONS, FactsIn, PartyIn, PartyRole, StatementIn
from server.casework.registry import Registry, RegistryUnavailable
from server.db.models import Call, Case, CaseEvent, Evidence, Party, PartyCheck, PlateRead, Statement
from server.errors import Conflict, Forbidden, Invalid, NoSuchCase, NotFound
from server.lifecycles.call import CallState
from server.lifecycles.case import CASE, CaseAction
from server.plates import Plates, mark
from server.portal.access import PortalAccess

logger = logging.getLogger(__name__)

MAX_PARTIES = len(POSITIONS)


def party_json(p: Party) -> dict[str, Any]:
    return {
        "id": p.id,
        "position": p.position,
        "label": POSITIONS[p.position - 1],
        "role": p.role,
        "name": p.name,
        "id_number": p.id_number,
        "phone": p.phone,
        "licence_no": p.licence_no,
        "plate": p.plate,
        "plate_read": p.plate_read,
        "plate_corrected": p.plate_read is not None and p.plate != p.plate_read,
        "vehicle_type": p.vehicle_type,
        "insurer": p.insurer,
        "policy_no": p.policy_no,
        "updated_at": utc_iso(p.updated_at),
    }


def check_json(c: PartyCheck) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "result": c.result,
        "reason": c.reason,
        "record": c.record,
        "checked_at": utc_iso(c.checked_at),
    }


class CaseWork:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], registry: Registry, links: PortalAccess) -> None:
        self._sessions = sessions
        self.registry = registry
        self._links = links  # a party saved with a phone number gets their personal link by SMS

    async def work(self, case_id: int) -> dict[str, Any]:
        async with self._sessions() as session:
            case = await session.get(Case, case_id)
            if case is None:
                raise NoSuchCase()
            parties = await self._parties(session, case_id)
            latest = await self._latest_checks(session, parties)
            statements = (
                await session.scalars(select(Statement).where(Statement.case_id == case_id).order_by(Statement.id))
            ).all()
        return {
            "case": case_summary(case) | case_work_fields(case),
            "parties": [party_json(p) | {"checks": latest[p.id]} for p in parties],
            "statements": [statement_json(s) for s in statements],
        }

    async def events(self, case_id: int) -> dict[str, Any]:
        async with self._sessions() as session:
            rows = await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq))
            events = list(rows.all())
        return {"events": [event_json(e) for e in events], "chain_problems": chain_errors(events)}

    async def add_party(self, case_id: int, body: PartyIn, actor: Actor) -> Party:
        async with self._sessions.begin() as session:
            case = await case_for_work(session, case_id)
            count = await session.scalar(select(func.count()).where(Party.case_id == case_id)) or 0
            if count >= MAX_PARTIES:
                raise Invalid(f"一起案件最多{MAX_PARTIES}名当事人 (a case has at most {MAX_PARTIES} parties)")
            last = await session.scalar(select(func.max(Party.position)).where(Party.case_id == case_id)) or 0
            party = Party(case_id=case_id, position=last + 1)
            self._fill(party, body, case, actor, await self._reader_read(session, case, body))
            session.add(party)
            await session.flush()
            await self._recompute(session, case)
            await append(session, case_id, actor, "party.added", _party_detail(party), party.updated_at)
            linked = await self._links.issue_link(session, case, party)
        if linked:
            self._links.wake_sms()
        return party

    async def update_party(self, case_id: int, party_id: int, body: PartyIn, actor: Actor) -> Party:
        async with self._sessions.begin() as session:
            case = await case_for_work(session, case_id)
            party = await session.get(Party, party_id)
            if party is None or party.case_id != case_id:
                raise NotFound("当事人不存在，请刷新页面 (no such party)")
            self._fill(party, body, case, actor, await self._reader_read(session, case, body))
            await session.flush()
            await self._recompute(session, case)
            await append(session, case_id, actor, "party.updated", _party_detail(party), party.updated_at)
            linked = await self._links.issue_link(session, case, party)
        if linked:
            self._links.wake_sms()
        return party

    async def set_facts(self, case_id: int, body: FactsIn, actor: Actor) -> Case:
        async with self._sessions.begin() as session:
            case = await case_for_work(session, case_id)
            case.facts = body.model_dump(mode="json")
            await self._recompute(session, case)
            await append(session, case_id, actor, "facts.set", _verdict_detail(case, facts=case.facts), now_utc())
        return case

    async def run_checks(self, case_id: int, actor: Actor) -> list[PartyCheck]:
        """Ask the registry about every party now; the results are kept as the registry answered."""
        async with self._sessions() as session:
            case = await case_for_work(session, case_id)
            parties = await self._parties(session, case_id)
        if not parties:
            raise Invalid("请先录入当事人 (enter the parties first)")
        results = await asyncio.gather(*(self._check(p, case.triggered_at) for p in parties))
        now = now_utc()
        rows = [
            PartyCheck(
                case_id=case_id,
                party_id=party.id,
                kind=r.kind,
                result=r.result,
                reason=r.reason,
                record=r.record,
                checked_at=now,
                checked_by=operator_id(actor),
            )
            for party, party_results in zip(parties, results, strict=True)
            for r in party_results
        ]
        async with self._sessions.begin() as session:
            case = await case_for_work(session, case_id)
            session.add_all(rows)
            await session.flush()
            await self._recompute(session, case)
            outcomes = [{"party": r.party_id, "kind": r.kind, "result": r.result, "reason": r.reason} for r in rows]
            await append(session, case_id, actor, "checks.run", _verdict_detail(case, checks=outcomes), now)
        logger.info("case %d: %d checks run", case_id, len(rows))
        return rows

    async def escalate(self, case_id: int, reason: EscalationIn, actor: Actor) -> Case:
        """To ordinary on-scene handling; nothing collected so far is touched."""
        async with self._sessions.begin() as session:
            case = await case_for_work(session, case_id)
            case.status = CASE.after(case.status, CaseAction.ESCALATE)
            case.escalated_at = now_utc()
            case.escalation_reason = reason.text()
            detail = {"reason": case.escalation_reason, "reason_code": reason.reason_code}
            await append(session, case_id, actor, "case.escalated", detail, case.escalated_at)
        return case

    async def add_statement(self, case_id: int, body: StatementIn, actor: Actor) -> Statement:
        """Kept only where the call recording covers the whole span: the summary points at evidence."""
        async with self._sessions.begin() as session:
            case = await case_for_work(session, case_id)
            party = await session.get(Party, body.party_id)
            if party is None or party.case_id != case_id:
                raise NotFound("当事人不存在，请刷新页面 (no such party)")
            segments = list(
                (
                    await session.scalars(
                        select(Evidence)
                        .where(Evidence.case_id == case_id, Evidence.kind == "recording")
                        .where(Evidence.media_start.is_not(None), Evidence.media_end.is_not(None))
                        .order_by(Evidence.media_start)
                    )
                ).all()
            )
            covering = covered_by(segments, body.start, body.end)
            if covering is None and await _recording(session, case_id, segments, body.end):
                raise Invalid(
                    "录音还在写入，请稍候几秒再保存 (the recording of this span is still being written)",
                    code="recording_pending",
                )
            if covering is None:
                raise Invalid(
                    "通话录音未覆盖这段时间，请按录音重新标记起止 (the call recording does not cover this span)",
                    code="statement_not_recorded",
                )
            now = now_utc()
            row = Statement(
                case_id=case_id,
                party_id=party.id,
                span_start=body.start,
                span_end=body.end,
                summary=body.summary,
                recorded_by=operator_id(actor),
                recorded_at=now,
            )
            session.add(row)
            await session.flush()
            detail = statement_json(row) | {"segments": [e.id for e in covering]}
            await append(session, case.id, actor, "statement.added", detail, now)
        return row

    async def clearable(self, case_id: int) -> Case:
        """The case, if the road may be cleared for it now: while the dispatcher works on it, and
        after hand-over (the officer decides later, from the evidence)."""
        async with self._sessions() as session:
            case = await session.get(Case, case_id)
        if case is None:
            raise NoSuchCase()
        if not CASE.allows(case.status, CaseAction.CLEAR_ROAD):
            raise Conflict(f"案件当前状态不能发出撤离指令 (the case is {case.status.replace('_', ' ')})")
        return case

    async def road_cleared(self, case_id: int, actor: Actor) -> Case:
        """Record that the unit took the clear-the-road command (the first time starts the watch)."""
        async with self._sessions.begin() as session:
            case = await session.scalar(select(Case).where(Case.id == case_id).with_for_update(of=Case))
            if case is None:
                raise NoSuchCase()
            now = now_utc()
            repeat = case.clear_sent_at is not None
            if not repeat:
                case.clear_sent_at = now
            await append(session, case_id, actor, "road.clear", {"repeat": repeat}, now)
        return case

    async def hand_over(self, case_id: int, actor: Actor) -> Case:
        async with self._sessions.begin() as session:
            case = await case_for_work(session, case_id)
            await self._recompute(session, case)
            if case.eligibility != ELIGIBLE:
                raise Conflict(f"案件尚不符合移交民警的条件 (not ready for the officers: {case.eligibility_reason})")
            case.status = CASE.after(case.status, CaseAction.HAND_OVER)
            case.handed_over_at = now_utc()
            await append(session, case_id, actor, "case.handed_over", _verdict_detail(case), case.handed_over_at)
        return case

    async def _check(self, party: Party, accident_at: datetime) -> list[CheckResult]:
        if party.role != PartyRole.DRIVER:
            return []
        facts = PartyFacts(
            party.id_number, party.licence_no, party.plate, party.vehicle_type, party.policy_no, party.name
        )
        try:
            vehicle = await self.registry.vehicle(party.plate) if party.plate else None
            vehicle_result = check_vehicle(facts, vehicle, accident_at)
        except RegistryUnavailable as exc:
            vehicle, vehicle_result = None, _unknown("vehicle", exc)
        try:
            licence = await self.registry.licence(party.licence_no) if party.licence_no else None
            licence_result = check_licence(facts, licence, vehicle, accident_at)
        except RegistryUnavailable as exc:
            licence_result = _unknown("licence", exc)
        try:
            policies = await self.registry.policies(party.plate) if party.plate else []
            insurance_result = check_insurance(facts, policies, accident_at)
        except RegistryUnavailable as exc:
            insurance_result = _unknown("insurance", exc)
        return [licence_result, vehicle_result, insurance_result]

    @staticmethod
    async def _reader_read(session: AsyncSession, case: Case, body: PartyIn) -> PlateRead | None:
        if body.plate_read_id is None:
            return None
        try:
            return await Plates.read_of(session, case, body.plate_read_id)
        except NotFound as exc:
            raise Invalid(str(exc)) from None  # the read, not the case, is missing: a bad field

    @staticmethod
    def _fill(party: Party, body: PartyIn, case: Case, actor: Actor, read: PlateRead | None) -> None:
        if body.plate_read_source == "report":
            vehicle = case.report.get("vehicle") or {}
            if "plate" not in vehicle:
                raise Invalid("报警设备未登记车牌，请手动输入 (the report carries no plate read)")
            party.plate_read = vehicle["plate"]
        elif read is not None:
            party.plate_read = read.text
            if body.plate is not None:  # the party's plate is what the dispatcher confirmed the read as
                mark(read, body.plate, operator_id(actor))
        elif body.plate is None:
            party.plate_read = None
        for key in ("role", "name", "id_number", "phone", "licence_no", "plate", "vehicle_type", "insurer"):
            setattr(party, key, getattr(body, key))
        party.role = body.role.value
        party.policy_no = body.policy_no
        party.updated_at = now_utc()
        party.updated_by = operator_id(actor)

    @staticmethod
    async def _parties(session: AsyncSession, case_id: int) -> list[Party]:
        rows = await session.scalars(select(Party).where(Party.case_id == case_id).order_by(Party.position))
        return list(rows.all())

    @staticmethod
    async def _latest_checks(session: AsyncSession, parties: list[Party]) -> dict[int, dict[str, Any]]:
        """Per party, the newest check of each kind, or None where the party changed since."""
        latest: dict[int, dict[str, Any]] = {p.id: dict.fromkeys(KINDS) for p in parties}
        if not parties:
            return latest
        changed = {p.id: p.updated_at for p in parties}
        rows = await session.scalars(
            select(PartyCheck).where(PartyCheck.party_id.in_(list(changed))).order_by(PartyCheck.id)
        )
        for row in rows:
            if row.checked_at >= changed[row.party_id]:
                latest[row.party_id][row.kind] = check_json(row)
            else:
                latest[row.party_id][row.kind] = None
        return latest

    async def _recompute(self, session: AsyncSession, case: Case) -> None:
        parties = await self._parties(session, case.id)
        latest = await self._latest_checks(session, parties)
        verdict = decide(
            [PartyRole(p.role) for p in parties],
            case.facts,
            [{k: (c["result"] if c else None) for k, c in latest[p.id].items()} for p in parties],
        )
        case.eligibility = verdict.verdict
        case.eligibility_reason = verdict.reason[:300]


def statement_json(s: Statement) -> dict[str, Any]:
    return {
        "id": s.id,
        "party_id": s.party_id,
        "start": utc_iso(s.span_start),
        "end": utc_iso(s.span_end),
        "summary": s.summary,
        "recorded_at": utc_iso(s.recorded_at),
    }


async def _recording(session: AsyncSession, case_id: int, segments: list[Evidence], end: datetime) -> bool:
    """Whether the end of a span may still be in the open segment: the case's call goes on and no
    closed segment reaches that far yet."""
    if any(s.media_end is not None and s.media_end >= end for s in segments):
        return False
    live = select(Call.call_id).where(Call.case_id == case_id, Call.state != CallState.ENDED).limit(1)
    return await session.scalar(live) is not None


def covered_by(segments: list[Evidence], start: datetime, end: datetime) -> list[Evidence] | None:
    """The recording segments that together cover [start, end] without a gap, or None.

    Segments follow each other with a few milliseconds between them; up to a second of gap counts
    as continuous."""
    used: list[Evidence] = []
    reached = start
    for segment in segments:
        assert segment.media_start is not None and segment.media_end is not None
        if segment.media_end <= reached:
            continue
        if (segment.media_start - reached).total_seconds() > 1.0:
            return None
        used.append(segment)
        reached = segment.media_end
        if reached >= end:
            return used
    return None


def operator_id(actor: Actor) -> int:
    if actor.user_id is None:
        raise Forbidden("只有控制台的操作员可以这样做 (only a console operator may do this)")
    return actor.user_id


def _party_detail(party: Party) -> dict[str, Any]:
    return {k: v for k, v in party_json(party).items() if k not in ("updated_at",)}


def _verdict_detail(case: Case, **extra: Any) -> dict[str, Any]:
    return {"eligibility": case.eligibility, "reason": case.eligibility_reason, **extra}


def _unknown(kind: str, exc: RegistryUnavailable) -> CheckResult:
    return CheckResult(
        kind, "unknown", f"登记系统暂时无法查询，结果未知，请稍后重新核验 (registry unavailable: {exc})"[:300]
    )


def case_work_fields(case: Case) -> dict[str, Any]:
    return {
        "facts": case.facts,
        "eligibility": case.eligibility,
        "eligibility_reason": case.eligibility_reason,
        "escalated_at": utc_iso(case.escalated_at) if case.escalated_at else None,
        "escalation_reason": case.escalation_reason,
        "handed_over_at": utc_iso(case.handed_over_at) if case.handed_over_at else None,
        "clear_sent_at": utc_iso(case.clear_sent_at) if case.clear_sent_at else None,
        "moved_off_at": utc_iso(case.moved_off_at) if case.moved_off_at else None,
        "clear_overdue_at": utc_iso(case.clear_overdue_at) if case.clear_overdue_at else None,
        "delivered_at": utc_iso(case.delivered_at) if case.delivered_at else None,
    }
