"""Calls and evidence in the database. Writes are rare (a few per call), so plain async sessions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.calls.recorder import Segment
from server.db.models import Call, Case, Evidence


class CallStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], evidence_dir: Path) -> None:
        self._sessions = sessions
        self.evidence_dir = evidence_dir

    async def case_of_report(self, report_id: str) -> Case | None:
        async with self._sessions() as session:
            return await session.scalar(select(Case).where(Case.report_id == report_id))

    async def case_by_id(self, case_id: int) -> Case | None:
        async with self._sessions() as session:
            return await session.get(Case, case_id)

    async def get(self, call_id: str) -> Call | None:
        async with self._sessions() as session:
            return await session.scalar(select(Call).where(Call.call_id == call_id))

    async def open(self, call_id: str, case: Case, device_id: str, now: datetime) -> Call:
        async with self._sessions.begin() as session:
            call = Call(call_id=call_id, case_id=case.id, device_id=device_id, state="connecting", started_at=now)
            session.add(call)
        return call

    async def update(self, call_id: str, **values: object) -> None:
        async with self._sessions.begin() as session:
            call = await session.scalar(select(Call).where(Call.call_id == call_id))
            if call is None:
                return
            for key, value in values.items():
                setattr(call, key, value)

    async def add_segment(
        self, case_id: int, call_id: str | None, segment: Segment, now: datetime, note: str | None = None
    ) -> None:
        await self.add_file(
            Evidence(
                case_id=case_id,
                call_id=call_id,
                kind="recording",
                path=str(segment.path.relative_to(self.evidence_dir)),
                sha256=segment.sha256,
                size_bytes=segment.size_bytes,
                media_start=segment.media_start,
                media_end=segment.media_end,
                created_at=now,
                note=note,
            )
        )

    async def add_file(self, evidence: Evidence) -> Evidence:
        async with self._sessions.begin() as session:
            session.add(evidence)
        return evidence

    async def evidence(self, evidence_id: int) -> Evidence | None:
        async with self._sessions() as session:
            return await session.get(Evidence, evidence_id)

    async def evidence_at(self, path: str) -> Evidence | None:
        async with self._sessions() as session:
            return await session.scalar(select(Evidence).where(Evidence.path == path))

    async def evidence_of(self, case_id: int) -> list[Evidence]:
        async with self._sessions() as session:
            rows = await session.scalars(select(Evidence).where(Evidence.case_id == case_id).order_by(Evidence.id))
            return list(rows.all())

    async def known_paths(self) -> set[str]:
        async with self._sessions() as session:
            return set((await session.scalars(select(Evidence.path))).all())

    async def unfinished(self) -> list[Call]:
        async with self._sessions() as session:
            return list((await session.scalars(select(Call).where(Call.state != "ended"))).all())
