"""Calls and evidence in the database. Writes are rare (a few per call), so plain async sessions.

Every change that is an action on the case (a call started, joined or ended; an evidence file
stored or asked for) goes into the case's event log in the same transaction as its row.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.calls.recorder import Segment
from server.casework.events import Actor, append, device_actor, lock_case, phone_actor
from server.db.models import Call, Case, Evidence
from server.lifecycles.call import CALL, CallEvent, CallState

# The server's own recorder keeps the call's segments; nobody asked for each one.
RECORDER = Actor(None, "system", "recorder")


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

    async def open(self, call_id: str, case: Case, device_id: str | None, now: datetime) -> Call:
        """The device's first offer (or scene sample) of a call; or the reporting phone's (no device)."""
        by = device_actor(device_id) if device_id is not None else phone_actor(case.reporter_phone or "")
        async with self._sessions.begin() as session:
            await lock_case(session, case.id)
            call = Call(call_id=call_id, case_id=case.id, device_id=device_id, state=CALL.initial, started_at=now)
            session.add(call)
            await append(session, case.id, by, "call.started", {"call_id": call_id}, now)
        return call

    async def update(self, call_id: str, **values: object) -> None:
        async with self._sessions.begin() as session:
            call = await session.scalar(select(Call).where(Call.call_id == call_id))
            if call is None:
                return
            for key, value in values.items():
                setattr(call, key, value)

    async def joined(self, call_id: str, actor: Actor, now: datetime) -> None:
        """An operator's console joined the call; the first to join answered it."""
        async with self._sessions.begin() as session:
            call = await self._locked_call(session, call_id)
            if call is None:
                return
            answered = call.answered_by is None
            if answered:
                call.answered_by = actor.user_id
            await append(session, call.case_id, actor, "call.joined", {"call_id": call_id, "answered": answered}, now)

    async def ended(self, call_id: str, actor: Actor, reason: str, now: datetime) -> None:
        async with self._sessions.begin() as session:
            call = await self._locked_call(session, call_id)
            if call is None or not CALL.allows(call.state, CallEvent.END):
                return
            call.state, call.ended_at, call.end_reason = CALL.after(call.state, CallEvent.END), now, reason[:120]
            if actor.user_id is not None:
                call.ended_by = actor.user_id
            await append(session, call.case_id, actor, "call.ended", {"call_id": call_id, "reason": reason[:120]}, now)

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
            ),
            RECORDER,
        )

    async def add_file(self, evidence: Evidence, actor: Actor, **detail: Any) -> Evidence:
        """Keep ``evidence``, logged as stored by ``actor`` with its SHA-256 (and ``detail``)."""
        async with self._sessions.begin() as session:
            await lock_case(session, evidence.case_id)
            session.add(evidence)
            await session.flush()  # its id, for the event
            stored = {
                "evidence_id": evidence.id,
                "kind": evidence.kind,
                "file": evidence.path,
                "sha256": evidence.sha256,
                "size_bytes": evidence.size_bytes,
                "call_id": evidence.call_id,
            }
            await append(session, evidence.case_id, actor, "evidence.stored", stored | detail, evidence.created_at)
        return evidence

    async def log(self, case_id: int, actor: Actor, action: str, detail: dict[str, Any], now: datetime) -> None:
        """An action on the case with no row of its own (a still asked for, an upload given up)."""
        async with self._sessions.begin() as session:
            await append(session, case_id, actor, action, detail, now)

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
            return list((await session.scalars(select(Call).where(Call.state != CallState.ENDED))).all())

    async def _locked_call(self, session: AsyncSession, call_id: str) -> Call | None:
        """The call, its case locked first (``lock_case``), then read again inside the lock."""
        case_id = await session.scalar(select(Call.case_id).where(Call.call_id == call_id))
        if case_id is None:
            return None
        await lock_case(session, case_id)
        again = select(Call).where(Call.call_id == call_id).execution_options(populate_existing=True)
        return await session.scalar(again)
