"""What a party's phone is shown of their case: their own data in full, the other parties' masked,
the evidence list with times, the determination's versions and the progress.

Every query is bounded by the visitor's own case; a party id from another case never gets here
(``visible_determination`` checks the determination belongs to the visitor's case).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.casework.parties import POSITIONS
from server.db.models import Case, CaseEvent, Determination, Evidence, Party
from server.errors import NotFound
from server.lifecycles.case import CASE, CaseStatus
from server.portal.access import Visitor
from server.portal.masking import mask_id_number, mask_name, mask_phone
from server.portal.timeline import Logged, Step, current, local_text, steps

ROLES = {"driver": "驾驶人", "non_motor": "非机动车一方", "pedestrian": "行人", "property_owner": "财产所有人"}
EVIDENCE_KINDS = {
    "recording": "通话录像",
    "still": "现场截图",
    "photo": "当事人上传照片",
    "scene": "现场画面",
    "review": "复核申请证据",
}


def _party(p: Party, mine: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "position": POSITIONS[p.position - 1],
        "role": ROLES.get(p.role, p.role),
        "plate": p.plate,
        "insurer": p.insurer,
        "mine": mine,
    }
    if mine:
        out |= {
            "name": p.name,
            "id_number": p.id_number,
            "phone": p.phone,
            "licence_no": p.licence_no,
            "policy_no": p.policy_no,
        }
    else:
        out |= {"name": mask_name(p.name), "id_number": mask_id_number(p.id_number), "phone": mask_phone(p.phone)}
    return out


def no_case() -> NotFound:
    return NotFound("没有找到您的案件，请用短信中的链接重新登录 (no case for this session)")


class PortalViews:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def case_view(
        self, visitor: Visitor, review: list[Step] | None = None, claim: list[Step] | None = None
    ) -> dict[str, Any]:
        if visitor.case_id is None or visitor.party_id is None:
            raise no_case()
        async with self._sessions() as session:
            case = await session.get(Case, visitor.case_id)
            if case is None:
                raise no_case()
            parties = (
                await session.scalars(select(Party).where(Party.case_id == case.id).order_by(Party.position))
            ).all()
            logged = [
                Logged(e.action, e.at, e.detail)
                for e in (
                    await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq))
                ).all()
            ]
            evidence = (
                await session.scalars(select(Evidence).where(Evidence.case_id == case.id).order_by(Evidence.created_at))
            ).all()
            versions = (
                await session.scalars(
                    select(Determination).where(Determination.case_id == case.id).order_by(Determination.version)
                )
            ).all()
        all_steps = steps(case.received_at, logged, visitor.party_id, review or [], claim or [])
        status = CaseStatus(case.status)
        return {
            "case_no": case.case_no,
            "unit": case.unit.name,
            "unit_adcode": case.unit_adcode,
            "status": status.value,
            "status_label": CASE.labels[status],
            "reported_at_local": local_text(case.received_at),
            "steps": [s.json() for s in all_steps],
            "now": current(all_steps),
            "parties": [_party(p, p.id == visitor.party_id) for p in parties],
            "evidence": [
                {
                    "kind": EVIDENCE_KINDS.get(e.kind, e.kind),
                    "at_local": local_text(e.media_start or e.created_at),
                    "sha256": e.sha256,
                    "mine": e.party_id == visitor.party_id,
                }
                for e in evidence
            ],
            "determinations": [
                {
                    "id": d.id,
                    "version": d.version,
                    "current": d.version == versions[-1].version,
                    "issued_at_local": local_text(d.issued_at),
                    "correction_reason": d.correction_reason,
                    "pdf": f"/api/portal/determinations/{d.id}/pdf",
                    "print": f"/p/print/{d.id}",
                }
                for d in versions
            ],
        }

    async def visible_determination(self, visitor: Visitor, determination_id: int) -> tuple[Determination, Case, int]:
        """The determination, its case and the case's latest version, if it is the visitor's case's."""
        async with self._sessions() as session:
            row = await session.get(Determination, determination_id)
            case = None if row is None else await session.get(Case, row.case_id)
            latest = await session.scalar(
                select(func.max(Determination.version)).where(Determination.case_id == visitor.case_id)
            )
        if row is None or case is None or visitor.case_id != case.id or visitor.party_id is None or latest is None:
            raise NotFound("没有这份认定书，或它不属于您的案件 (no such determination for this session)")
        return row, case, latest
