"""The SMS outbox: one row per message, written in the same transaction as the determination it
announces, sent by whichever worker claims it, retried with backoff while the provider is down,
and kept across restarts. Delivery receipts record when each party was reached; once every party
of the current version is reached the case is ``delivered``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import case_summary, now_utc
from server.casework.events import Actor, append
from server.config import SmsSection
from server.db.models import Case, Determination, Party, SmsMessage
from server.delivery.claims import claim, due_ids
from server.delivery.sms import SmsError, SmsGateway
from server.insurers.events import queue_determination
from server.lifecycles.case import CASE, CaseAction
from server.outbound import Outward

logger = logging.getLogger(__name__)
SYSTEM = Actor(None, "system", "sms")
# A message is held this long from when a worker claims it: longer than a send may take ([sms]
# timeout_s at most, in all), so no other worker sends it meanwhile; a worker that dies mid-send
# lets another take it after this.
CLAIM_S = 120
REF = re.compile(r"kc-(\d{1,12})")  # our reference for a message, as the provider echoes it


def _read_taken(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _note_taken(path: Path, provider_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    with partial.open("w", encoding="utf-8") as f:
        f.write(provider_id)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def ref_of(message_id: int) -> str:
    return f"kc-{message_id}"


def sms_text(case_no: str, version: int, url: str) -> str:
    corrected = f"（第{version}版，更正）" if version > 1 else ""
    return (
        f"【快处】您的道路交通事故认定书{corrected}已出具，案件编号{case_no}，查看、下载、打印：{url} 。"
        "如有异议，可自送达之日起三日内书面申请复核。"
    )


def queue_messages(
    session: AsyncSession,
    case: Case,
    determination: Determination,
    parties: list[Party],
    urls: dict[int, str],
    now: datetime,
) -> list[SmsMessage]:
    """One message per party, each with that party's own link (``urls`` by party id), in the
    caller's transaction (the determination's own)."""
    rows = [
        SmsMessage(
            case_id=case.id,
            determination_id=determination.id,
            party_id=p.id,
            phone=p.phone,
            text=sms_text(case.case_no, determination.version, urls[p.id]),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for p in parties
    ]
    session.add_all(rows)
    return rows


def _named(message: SmsMessage) -> str:
    """The message in a log line; a one-time code to a phone reporting belongs to no case."""
    return f"sms {message.id} " + ("(no case)" if message.case_id is None else f"for case {message.case_id}")


class SmsOutbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gateway: SmsGateway | None,
        cfg: SmsSection,
        worker: str,
        outbound: Outward,
        taken: Path,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        """``taken``: a folder every worker shares (in the server's data folder, beside the evidence)
        where a message the provider took is noted until the database records it."""
        self._sessions = sessions
        self._taken = taken
        self._gateway = gateway
        self._cfg = cfg
        self._worker = worker
        self._outbound = outbound  # consoles hear of a message moving on, and of a case delivered
        self._clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        if self._gateway is not None:
            await self._gateway.close()

    @property
    def configured(self) -> bool:
        return self._gateway is not None

    async def run(self) -> None:
        while True:
            try:
                await self.send_due()
            except Exception:
                logger.exception("sms outbox: a round failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._cfg.poll_s)
            self._wake.clear()

    async def send_due(self) -> int:
        """Send every message that is due and not claimed by another worker; returns how many went."""
        assert self._gateway is not None
        sent = 0
        for message_id in await due_ids(self._sessions, SmsMessage, self._clock()):
            # Claimed at the time of the claim, not of the round: a slow provider can make a round
            # outlast a claim, and another worker would then take a message still being sent.
            message = await claim(self._sessions, SmsMessage, message_id, self._clock(), CLAIM_S)
            if message is not None:
                sent += await self._send(message)
        return sent

    async def _send(self, message: SmsMessage) -> int:
        assert self._gateway is not None
        ref = ref_of(message.id)
        taken = self._taken / ref
        provider_id = await asyncio.to_thread(_read_taken, taken)
        if provider_id is not None:
            logger.info("%s was taken by the provider before its record was written: not sent again", _named(message))
        else:
            try:
                provider_id = await self._gateway.send(message.phone, message.text, ref)
            except SmsError as exc:
                await self._failed(message, str(exc), exc.retryable)
                return 0
            # Noted before the database hears of it: a database lost between the provider's answer
            # and this commit would otherwise have the message sent again once its claim lapsed.
            await asyncio.to_thread(_note_taken, taken, provider_id)
        async with self._sessions.begin() as session:
            row = await session.get(SmsMessage, message.id)
            assert row is not None
            # A fast provider's receipt may have come in already: it is not undone.
            if row.status == "pending":
                row.status = "sent"
            row.provider_id, row.sent_at = provider_id, self._clock()
            row.attempts += 1
            row.claimed_until, row.last_error = None, None
        await asyncio.to_thread(taken.unlink, missing_ok=True)
        logger.info("%s taken by the provider", _named(message))
        await self._announce(message.case_id)
        return 1

    async def _failed(self, message: SmsMessage, error: str, retryable: bool) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(SmsMessage, message.id)
            assert row is not None
            row.attempts += 1
            row.last_error = error[:200]
            row.claimed_until = None
            if not retryable or row.attempts >= self._cfg.max_attempts:
                row.status = "failed"
                case = None if row.case_id is None else await session.get(Case, row.case_id)
                if case is not None:
                    if row.kind == "determination":
                        case.flag = "SMS to a party failed: deliver the determination another way"[:120]
                    detail = {"sms": row.id, "kind": row.kind, "error": error}
                    await append(session, case.id, SYSTEM, "delivery.failed", detail, self._clock())
            else:
                delay = min(self._cfg.retry_base_s * 2 ** (row.attempts - 1), self._cfg.retry_max_s)
                row.next_attempt_at = self._clock() + timedelta(seconds=delay)
        logger.warning("%s: %s", _named(message), error)
        await self._announce(message.case_id)

    async def _announce(self, case_id: int | None) -> None:
        """Consoles showing the case hear that a message moved on (sent, retrying, failed)."""
        if case_id is None:
            return
        async with self._sessions() as session:
            case = await session.get(Case, case_id)
            summary = None if case is None else case_summary(case)
        if summary is not None:
            await self._outbound.case_changed(summary)

    async def receipt(self, provider_id: str, ref: str | None, delivered: bool, at: datetime) -> bool:
        """The provider's delivery report, by its id for the message or by our ``ref`` (a receipt
        can arrive before the provider's answer to the send has); False when no such message."""
        async with self._sessions.begin() as session:
            row = await session.scalar(select(SmsMessage).where(SmsMessage.provider_id == provider_id))
            if row is None and ref is not None and (match := REF.fullmatch(ref)):
                row = await session.get(SmsMessage, int(match.group(1)))
                if row is not None and row.provider_id not in (None, provider_id):
                    row = None
            if row is None:
                return False
            # A provider sends a receipt again when our answer was slow, maybe to another worker:
            # this write takes the message's lock (SQLite's write lock) before its status is read
            # again, so the receipts take turns and the second sees the first's ``reached``.
            await session.execute(update(SmsMessage).where(SmsMessage.id == row.id).values(provider_id=provider_id))
            await session.refresh(row)
            if row.status in ("reached", "failed"):
                return True  # a repeated receipt
            if row.kind != "determination":
                # A link or a code: the party acts on it or asks again; only a determination's
                # receipt starts a period or makes a case delivered.
                row.status = "reached" if delivered else "failed"
                row.reached_at = at if delivered else None
                return True
            case = await session.scalar(select(Case).where(Case.id == row.case_id).with_for_update(of=Case))
            assert case is not None
            if not delivered:
                row.status, row.last_error = "failed", "the provider could not deliver it"
                case.flag = "SMS to a party not delivered: deliver the determination another way"[:120]
                await append(session, case.id, SYSTEM, "delivery.failed", {"sms": row.id, "party": row.party_id}, at)
                return True
            row.status, row.reached_at = "reached", at
            detail = {"sms": row.id, "party": row.party_id, "determination": row.determination_id}
            await append(session, case.id, SYSTEM, "delivery.reached", detail, at)
            await self._maybe_delivered(session, case, at)
            summary = case_summary(case)
        await self._outbound.case_changed(summary)
        return True

    @staticmethod
    async def _maybe_delivered(session: AsyncSession, case: Case, at: datetime) -> None:
        latest = await session.scalar(
            select(Determination.id).where(Determination.case_id == case.id).order_by(Determination.version.desc())
        )
        waiting = await session.scalar(
            select(func.count()).where(SmsMessage.determination_id == latest, SmsMessage.status != "reached")
        )
        if waiting == 0 and CASE.allows(case.status, CaseAction.DELIVER):
            case.status, case.delivered_at = CASE.after(case.status, CaseAction.DELIVER), at
            await append(session, case.id, SYSTEM, "case.delivered", {"determination": latest}, at)
            assert latest is not None
            await queue_determination(session, case, latest, at)

    async def of_case(self, case_id: int) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(SmsMessage)
                    .where(SmsMessage.case_id == case_id, SmsMessage.kind == "determination")
                    .order_by(SmsMessage.id)
                )
            ).all()
        return [
            {
                "id": r.id,
                "party_id": r.party_id,
                "determination_id": r.determination_id,
                "status": r.status,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                "reached_at": r.reached_at.isoformat() if r.reached_at else None,
            }
            for r in rows
        ]
