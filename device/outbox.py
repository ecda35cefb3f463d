"""The device's durable outbox: a report is on disk before it is sent and stays until acknowledged.

A press while offline, or a power cut between press and acknowledgement, still yields exactly one
case: the report (with its id) survives in SQLite with synchronous=FULL, is re-sent with the same
id until the server answers, and the server maps a known id to the case it already opened.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from protocol.messages import Ack, Report, decode, encode

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    report_id TEXT PRIMARY KEY,
    payload BLOB NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'refused')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    case_no TEXT,
    answer BLOB,
    closed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (state, next_attempt);
"""
# An outbox written by firmware from before the server could close a case has no such column.
_CLOSED_COLUMN = "ALTER TABLE outbox ADD COLUMN closed INTEGER NOT NULL DEFAULT 0"


@dataclass(frozen=True)
class Entry:
    report: Report
    attempts: int
    next_attempt: float
    payload: bytes  # as stored, and as every attempt sends it


class Outbox:
    def __init__(self, path: Path) -> None:
        self._path = path
        # One thread owns the connection: SQLite calls block, and must not run on the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            assert self._db is not None, "outbox not open"
            return fn(self._db)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            if "closed" not in {row[1] for row in db.execute("PRAGMA table_info(outbox)")}:
                db.execute(_CLOSED_COLUMN)
            return db

        self._db = await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(lambda db: db.close())
            self._db = None
        self._executor.shutdown(wait=True)

    async def add(self, report: Report, next_attempt: float = 0.0) -> bytes:
        """Store a new report; ``next_attempt`` (epoch seconds) is when the sender should (re)send it.

        Returns the payload as stored: what every attempt, the first included, publishes.
        """
        payload = encode(report)
        created = report.triggered_at.isoformat()
        await self._run(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO outbox (report_id, payload, created_at, state, attempts, next_attempt)"
                " VALUES (?, ?, ?, 'pending', ?, ?)",
                (report.report_id, payload, created, 1 if next_attempt else 0, next_attempt),
            )
        )
        return payload

    async def pending(self) -> list[Entry]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT payload, attempts, next_attempt FROM outbox WHERE state = 'pending' ORDER BY report_id"
            ).fetchall()
        )
        return [_entry(*row) for row in rows]

    async def due(self, now: float) -> tuple[list[Entry], float | None]:
        """The pending reports due at ``now`` (epoch seconds), and when the next of the others is.

        Only the due ones are read back: a press wakes the sender, which must not re-read and
        re-validate the report it is already sending.
        """

        def query(db: sqlite3.Connection) -> tuple[list[Any], float | None]:
            due = db.execute(
                "SELECT payload, attempts, next_attempt FROM outbox"
                " WHERE state = 'pending' AND next_attempt <= ? ORDER BY report_id",
                (now,),
            ).fetchall()
            later = db.execute(
                "SELECT min(next_attempt) FROM outbox WHERE state = 'pending' AND next_attempt > ?", (now,)
            ).fetchone()[0]
            return due, later

        rows, later = await self._run(query)
        return [_entry(*row) for row in rows], later

    async def count_pending(self) -> int:
        row = await self._run(lambda db: db.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone())
        return int(row[0])

    async def attempted(self, report_id: str, next_attempt: float) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt = ? WHERE report_id = ? AND state = 'pending'",
                (next_attempt, report_id),
            )
        )

    async def reschedule_all(self, next_attempt: float) -> None:
        await self._run(
            lambda db: db.execute("UPDATE outbox SET next_attempt = ? WHERE state = 'pending'", (next_attempt,))
        )

    async def answered(self, ack: Ack) -> bool:
        """Record the server's answer; False if the report was not pending (a repeated ack)."""
        state = "accepted" if ack.status == "accepted" else "refused"
        cursor = await self._run(
            lambda db: db.execute(
                "UPDATE outbox SET state = ?, case_no = ?, answer = ? WHERE report_id = ? AND state = 'pending'",
                (state, ack.case_no, encode(ack), ack.report_id),
            )
        )
        return bool(cursor.rowcount)

    async def closed(self, case_no: str) -> None:
        """The server closed the unit's part in ``case_no``: a restart must not bring the case back."""
        await self._run(lambda db: db.execute("UPDATE outbox SET closed = 1 WHERE case_no = ?", (case_no,)))

    async def last_answer(self) -> tuple[Ack, datetime] | None:
        """The newest answered report's ack and press time, to restore the device's state after a
        restart; None when there is none, or when the server has closed its case."""
        row: Any = await self._run(
            lambda db: db.execute(
                "SELECT answer, created_at, closed FROM outbox WHERE state != 'pending' ORDER BY report_id DESC LIMIT 1"
            ).fetchone()
        )
        if row is None or row[2]:
            return None
        return decode(Ack, bytes(row[0])), datetime.fromisoformat(row[1])


def _entry(payload: bytes, attempts: int, next_attempt: float) -> Entry:
    return Entry(decode(Report, bytes(payload)), attempts, next_attempt, bytes(payload))
