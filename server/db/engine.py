"""Engine set-up and schema upgrades, for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# How long a write on SQLite waits for the database's one write lock before it gives up with
# "database is locked". The intake, the media worker, the console's requests and any other process
# on the same file take turns at that lock; with 10 s here a console login at ten recorded calls got
# a 500 with that error (the login's own write, tests/test_sqlite_writers.py shows it). A write that
# waits is fine, an error is not: this is longer than anyone waits for a page, and set when the
# driver connects, so the pragmas below wait too.
#
# The driver (pysqlite, also under aiosqlite) opens a transaction only at its first write, so no
# transaction here upgrades a read snapshot to a write, the one case in WAL where SQLite gives up
# at once instead of waiting: BEGIN IMMEDIATE would add nothing but lock the reads.
SQLITE_LOCK_WAIT_S = 60.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the console read while intake writes; FULL makes every acknowledged case survive a
    # power cut, since a device stops retrying once it has its case number.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_LOCK_WAIT_S})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def sync_url(url: str) -> str:
    """The same database through a blocking driver, for the single-threaded case writer."""
    return url.replace("sqlite+aiosqlite:", "sqlite:").replace("postgresql+asyncpg:", "postgresql+psycopg:")


def make_sync_engine(url: str) -> Engine:
    url = sync_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_size=1, max_overflow=0, connect_args={"timeout": SQLITE_LOCK_WAIT_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=1, max_overflow=1, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "server.db:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade_schema(url: str) -> None:
    """Bring the database to the latest migration (in a thread: Alembic runs its own event loop)."""
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
