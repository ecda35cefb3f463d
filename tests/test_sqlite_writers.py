"""Several processes writing one SQLite file through the server's own engines: a write that finds
the database's lock taken waits its turn, it does not fail with "database is locked".

``bench/call_capacity.py`` died at ten calls on exactly that: a console login got a 500 while the
worker's other writers held the lock longer than the wait SQLite was given. Here one process holds
a write transaction longer than that old wait (10 s) while others log consoles in (the login's own
session write) and open cases through the case writer's connection, as the intake does.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from server.cases import CaseStore
from server.db.engine import make_engine, make_sessionmaker, make_sync_engine, upgrade_schema
from server.db.models import Case, Session
from server.geo.fences import FenceSet
from server.users import Role, UserStore
from tests.reports import WUHUA, in_car_report

PASSWORD = "lock-test-password-1"
HOLD_S = 12.0  # longer than the 10 s SQLite used to wait for the lock
WRITERS = 3
LOGINS = 4  # per writer process
REPORTS = 4  # per writer process
WUHUA_UNIT = "530102"


def hold_the_lock(url: str, folder: str) -> None:
    """A long write transaction (as issuing a determination is: it renders and signs the PDF in it),
    held from the moment every writer is about to write."""
    engine = make_sync_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE users SET display_name = display_name"))
            (Path(folder) / "locked").touch()
            _wait_until(lambda: len(list(Path(folder).glob("writing-*"))) == WRITERS)
            time.sleep(HOLD_S)
    finally:
        engine.dispose()


def _wait_until(check: Callable[[], bool]) -> None:
    """In a helper process, which has no event loop to wait on."""
    deadline = time.monotonic() + 60
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the other test processes did not get going")
        time.sleep(0.05)


async def _write(url: str, folder: Path, index: int) -> list[str]:
    engine = make_engine(url)
    writer = make_sync_engine(url)
    sessions = make_sessionmaker(engine)
    cases = CaseStore(sessions, writer, FenceSet.load_default())
    try:
        await asyncio.to_thread(_wait_until, (folder / "locked").exists)
        (folder / f"writing-{index}").touch()
        await cases.ensure_units()
        users = UserStore(sessions)

        async def login() -> None:
            user = await users.authenticate("dispatcher", PASSWORD)
            assert user is not None
            await users.open_session(user, timedelta(hours=1))

        async def report(n: int) -> None:
            await cases.open_cases([in_car_report(f"car-{index:02d}{n:02d}", WUHUA)], datetime.now(UTC))

        outcomes = await asyncio.gather(
            *(login() for _ in range(LOGINS)), *(report(n) for n in range(REPORTS)), return_exceptions=True
        )
    finally:
        cases.close()
        writer.dispose()
        await engine.dispose()
    return [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]


def write_while_locked(url: str, folder: str, index: int) -> list[str]:
    return asyncio.run(_write(url, Path(folder), index))


async def test_writers_in_several_processes_wait_for_the_lock_instead_of_failing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'kc.db'}"
    await upgrade_schema(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    writer = make_sync_engine(url)
    setup = CaseStore(sessions, writer, FenceSet.load_default())
    await setup.ensure_units()
    setup.close()
    writer.dispose()
    await UserStore(sessions).add_user("dispatcher", PASSWORD, Role.DISPATCHER, [WUHUA_UNIT])

    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WRITERS + 1, mp_context=spawn) as pool:
        holder = loop.run_in_executor(pool, hold_the_lock, url, str(tmp_path))
        writers = [loop.run_in_executor(pool, write_while_locked, url, str(tmp_path), i) for i in range(WRITERS)]
        errors = await asyncio.gather(*writers)
        await holder

    assert errors == [[]] * WRITERS
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Session)) == WRITERS * LOGINS
        assert await session.scalar(select(func.count()).select_from(Case)) == WRITERS * REPORTS
    await engine.dispose()
