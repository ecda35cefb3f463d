"""Checking a case's record end to end: its event chain, and every evidence file against the
SHA-256 taken when it was stored (``kuaichu server audit CASE``)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.casework.events import chain_errors
from server.db.models import Case, CaseEvent, Evidence


@dataclass
class AuditReport:
    case_no: str
    events: int = 0
    evidence: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        return not self.problems


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _evidence_problem(root: Path, item: Evidence) -> str | None:
    path = root / item.path
    try:
        size = path.stat().st_size
        digest = file_sha256(path)
    except OSError as exc:
        return f"evidence {item.id} ({item.kind} {item.path}): cannot be read: {exc.strerror}"
    if size != item.size_bytes or digest != item.sha256:
        return f"evidence {item.id} ({item.kind} {item.path}): altered (SHA-256 differs from the one recorded)"
    return None


async def find_case(session: AsyncSession, ref: str) -> Case | None:
    """By case number, or by id."""
    if ref.isdigit() and len(ref) < 10:
        return await session.scalar(select(Case).where(or_(Case.case_no == ref, Case.id == int(ref))))
    return await session.scalar(select(Case).where(Case.case_no == ref))


async def audit_case(sessions: async_sessionmaker[AsyncSession], evidence_dir: Path, ref: str) -> AuditReport | None:
    async with sessions() as session:
        case = await find_case(session, ref)
        if case is None:
            return None
        events = list(
            (await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq))).all()
        )
        evidence = list(
            (await session.scalars(select(Evidence).where(Evidence.case_id == case.id).order_by(Evidence.id))).all()
        )
    report = AuditReport(case.case_no, len(events), len(evidence))
    if not events:
        report.problems.append("no events: the case's log is missing")
    report.problems.extend(chain_errors(events))
    found = await asyncio.gather(*(asyncio.to_thread(_evidence_problem, evidence_dir, e) for e in evidence))
    report.problems.extend(p for p in found if p is not None)
    return report


async def case_numbers(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """Every case, oldest first: what an audit of the whole server (after a restore) goes through."""
    async with sessions() as session:
        return list((await session.scalars(select(Case.case_no).order_by(Case.id))).all())
