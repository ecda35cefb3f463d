"""What every durable outbox does the same way (the SMS outbox, the insurers' webhook outbox): find
the rows that are due, and claim one for this worker for a while so that no other worker sends it
at the same time; a worker that dies mid-send lets the claim lapse and another takes the row."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.insurers import WebhookMessage
from server.db.models import SmsMessage

Row = TypeVar("Row", SmsMessage, WebhookMessage)


async def due_ids(
    sessions: async_sessionmaker[AsyncSession], model: type[Row], now: datetime, limit: int = 50
) -> list[int]:
    """Pending rows whose time has come and that no worker holds, oldest first."""
    async with sessions() as session:
        rows = await session.scalars(
            select(model.id)
            .where(
                model.status == "pending",
                model.next_attempt_at <= now,
                or_(model.claimed_until.is_(None), model.claimed_until < now),
            )
            .order_by(model.id)
            .limit(limit)
        )
        return list(rows.all())


async def claim(
    sessions: async_sessionmaker[AsyncSession], model: type[Row], row_id: int, now: datetime, hold_s: float
) -> Row | None:
    """The row, held by this worker for ``hold_s``; None when another worker got it first."""
    async with sessions.begin() as session:
        claimed = await session.execute(
            update(model)
            .where(
                model.id == row_id,
                model.status == "pending",
                or_(model.claimed_until.is_(None), model.claimed_until < now),
            )
            .values(claimed_until=now + timedelta(seconds=hold_s))
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return await session.get(model, row_id)


async def claim_many(
    sessions: async_sessionmaker[AsyncSession], model: type[Row], row_ids: list[int], now: datetime, hold_s: float
) -> list[Row]:
    """As ``claim`` for several rows in one transaction (one commit, not one per row, which is what
    bounds an outbox's rate on SQLite); the rows this worker got, the others' left out."""
    if not row_ids:
        return []
    async with sessions.begin() as session:
        got = await session.scalars(
            update(model)
            .where(
                model.id.in_(row_ids),
                model.status == "pending",
                or_(model.claimed_until.is_(None), model.claimed_until < now),
            )
            .values(claimed_until=now + timedelta(seconds=hold_s))
            .returning(model.id)
        )
        mine = list(got.all())
        if not mine:
            return []
        rows = await session.scalars(select(model).where(model.id.in_(mine)).order_by(model.id))
        return list(rows.all())
