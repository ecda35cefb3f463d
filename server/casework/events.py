"""The per-case event log: every action on a case (who, what, when, from where), append-only and
hash-chained.

Each event's hash covers its own content and the previous event's hash, so changing, removing or
reordering any event breaks every hash after it; ``kuaichu server audit CASE`` recomputes the chain.
The database refuses UPDATE and DELETE on the table (triggers, migration 0005), so an edit takes
someone who can also drop a trigger, and the chain still shows it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Case, CaseEvent

GENESIS = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who did something (an operator, a device, the system), and from where (an address, ``mqtt``)."""

    user_id: int | None
    name: str
    source: str


def device_actor(device_id: str) -> Actor:
    """A reporting unit, for what it did itself (its report, its call, the evidence it sent)."""
    return Actor(None, f"device:{device_id}", "mqtt")


def phone_actor(phone: str, source: str = "web") -> Actor:
    """A party's phone in the web app, for what it did itself (a report, its call, its photos)."""
    return Actor(None, f"phone:{phone}", source)


def event_hash(
    case_id: int,
    seq: int,
    at: datetime,
    actor: str,
    actor_id: int | None,
    action: str,
    detail: dict[str, Any],
    source: str,
    prev: str,
) -> str:
    body = {
        "case_id": case_id,
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "actor_id": actor_id,
        "action": action,
        "detail": detail,
        "source": source,
        "prev": prev,
    }
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_row(
    case_id: int, seq: int, prev: str, at: datetime, actor: Actor, action: str, detail: dict[str, Any]
) -> dict[str, Any]:
    """The columns of one event, its hash included."""
    # Round-trip the detail through JSON so that what is hashed is exactly what is stored.
    detail = json.loads(json.dumps(detail, ensure_ascii=False))
    return {
        "case_id": case_id,
        "seq": seq,
        "at": at,
        "actor": actor.name,
        "actor_id": actor.user_id,
        "action": action,
        "detail": detail,
        "source": actor.source,
        "prev_hash": prev,
        "hash": event_hash(case_id, seq, at, actor.name, actor.user_id, action, detail, actor.source, prev),
    }


async def lock_case(session: AsyncSession, case_id: int) -> None:
    """Lock the case's row for the rest of the caller's transaction.

    Two transactions appending to one case (an officer issuing while a delivery receipt arrives)
    then take their turns instead of both reading the same last event. Code that also inserts a
    row referring to the case (a call, an evidence file) locks it first: on PostgreSQL the insert's
    key-share lock taken before this would let two such transactions deadlock. On SQLite the driver
    opens the transaction only at the first write, and a SELECT ... FOR UPDATE is no write: a write
    that changes nothing takes the database's lock.
    """
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        no_change = update(Case).where(Case.id == case_id).values(id=Case.id)
        await session.execute(no_change.execution_options(synchronize_session=False))
    else:
        await session.execute(select(Case.id).where(Case.id == case_id).with_for_update())


async def append(
    session: AsyncSession, case_id: int, actor: Actor, action: str, detail: dict[str, Any], at: datetime
) -> CaseEvent:
    """Add the case's next event in the caller's transaction, the case locked first (``lock_case``)."""
    await lock_case(session, case_id)
    last = await session.scalar(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq.desc()).limit(1)
    )
    seq, prev = (last.seq + 1, last.hash) if last is not None else (1, GENESIS)
    event = CaseEvent(**event_row(case_id, seq, prev, at, actor, action, detail))
    session.add(event)
    return event


def first_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """The ``case.opened`` events of new cases, from the case writer's own connection."""
    if rows:
        conn.execute(insert(CaseEvent), rows)


def chain_errors(events: list[CaseEvent]) -> list[str]:
    """Every break in a case's chain, in order; empty when it is whole."""
    errors: list[str] = []
    prev = GENESIS
    for expected, event in enumerate(events, start=1):
        if event.seq != expected:
            errors.append(f"event {expected} is missing (found {event.seq} in its place)")
        if event.prev_hash != prev:
            errors.append(f"event {event.seq}: does not follow the event before it")
        recomputed = event_hash(
            event.case_id,
            event.seq,
            event.at,
            event.actor,
            event.actor_id,
            event.action,
            event.detail,
            event.source,
            event.prev_hash,
        )
        if recomputed != event.hash:
            errors.append(f"event {event.seq} ({event.action}): content altered since it was written")
        prev = event.hash
    return errors


def event_json(event: CaseEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "actor": event.actor,
        "action": event.action,
        "detail": event.detail,
        "source": event.source,
        "hash": event.hash,
    }
