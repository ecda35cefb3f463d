"""The login throttle counted in the database (``server.login_throttle``): two workers on one
database throttle at the same totals as one, a restart forgets no failure, two workers racing for a
slowed account's one try let one through, and the database's answers are the in-memory rule's
(tests/throttle_reference.py) over the same tries, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from server.db.engine import make_engine, make_sessionmaker, upgrade_schema
from server.db.logins import LoginFailure, LoginTrusted
from server.login_throttle import SharedLoginThrottle
from server.users import Role
from tests.conftest import PASSWORD, RunningServer, add_user, make_server_config, start_server
from tests.services import Mosquitto
from tests.throttle_reference import Clock, LoginThrottle
from tests.wire import login_from


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"


async def statuses(servers: list[RunningServer], address: str, usernames: list[str], password: str) -> list[int]:
    """One login per username, from ``address``, sent to the workers in turn."""
    answers = []
    for i, username in enumerate(usernames):
        async with httpx.AsyncClient(base_url=servers[i % len(servers)].url) as http:
            answers.append((await login_from(http, address, username, password)).status_code)
    return answers


async def test_two_workers_count_together_and_a_restart_forgets_nothing(
    tmp_path: Path, broker: Mosquitto, database_url: str
) -> None:
    configs = [
        make_server_config(tmp_path / name, broker.port, database_url=database_url, worker_id=name)
        for name in ("w1", "w2")
    ]
    workers = [await start_server(cfg) for cfg in configs]
    try:
        await add_user(configs[0], "target", Role.DISPATCHER, ["530102"])
        # Five wrong passwords from one address, split over the two workers: that pair waits on both.
        assert await statuses(workers, "10.0.0.66", ["target"] * 5, "guess") == [401] * 5
        assert await statuses(workers, "10.0.0.66", ["target"] * 2, PASSWORD) == [429] * 2
        assert await statuses(workers[1:], "10.0.0.7", ["target"], PASSWORD) == [200]  # not locked out
        # Twenty usernames from one address, split over the two workers: the address waits on both.
        guesses = [f"user{i}" for i in range(20)]
        assert await statuses(workers, "10.0.0.99", guesses, "guess") == [401] * 20
        assert await statuses(workers, "10.0.0.99", ["user20", "user21"], "guess") == [429] * 2
        # Three of five on another address before every worker restarts …
        assert await statuses(workers, "10.0.0.55", ["target"] * 3, "guess") == [401] * 3
    finally:
        for worker in workers:
            await worker.stop()
    restarted = await start_server(configs[0])
    try:
        assert await statuses([restarted], "10.0.0.66", ["target"], PASSWORD) == [429]
        assert await statuses([restarted], "10.0.0.99", ["user22"], "guess") == [429]
        # … and the last two after it: the fifth still throttles.
        assert await statuses([restarted], "10.0.0.55", ["target"] * 3, "guess") == [401, 401, 429]
    finally:
        await restarted.stop()
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            failures = (await session.scalars(select(LoginFailure))).all()
            trusted = (await session.scalars(select(LoginTrusted))).all()
    finally:
        await engine.dispose()
    assert len(failures) == 5 + 20 + 5 and len(trusted) == 1
    stored = {f.address_key for f in failures} | {f.account_key for f in failures} | {trusted[0].address_key}
    assert not stored & {"10.0.0.66", "10.0.0.99", "10.0.0.55", "10.0.0.7", "target", "user0"}  # hashed
    assert len({f.address_key for f in failures}) == 3 and len({f.account_key for f in failures}) == 21


@pytest.fixture
async def two_workers(database_url: str) -> AsyncIterator[tuple[SharedLoginThrottle, SharedLoginThrottle, Clock]]:
    """Two throttles, each with its own engine as two worker processes would have, and one clock."""
    await upgrade_schema(database_url)
    engines = [make_engine(database_url) for _ in range(2)]
    clock = Clock()
    first, second = (SharedLoginThrottle(make_sessionmaker(engine), clock=clock) for engine in engines)
    yield first, second, clock
    for engine in engines:
        await engine.dispose()


async def test_workers_failing_at_once_lose_no_count_and_take_a_slowed_try_once(
    two_workers: tuple[SharedLoginThrottle, SharedLoginThrottle, Clock], database_url: str
) -> None:
    first, second, clock = two_workers
    throttles = [first, second] * 10
    await asyncio.gather(*(t.failed(f"10.1.0.{i}", "wuhua") for i, t in enumerate(throttles)))
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            assert await session.scalar(select(func.count()).select_from(LoginFailure)) == 20
    finally:
        await engine.dispose()
    # The account is slowed: of ten strangers trying at the same moment on two workers, one goes ahead.
    waits = await asyncio.gather(*(t.wait_s(f"10.2.0.{i}", "wuhua") for i, t in enumerate(throttles[:10])))
    assert sorted(waits) == [0.0] + [2.0] * 9
    clock.now += 2
    assert await second.wait_s("10.2.0.99", "wuhua") == 0


async def test_the_database_answers_as_the_rule_in_memory(
    two_workers: tuple[SharedLoginThrottle, SharedLoginThrottle, Clock],
) -> None:
    """Random tries, failures and successes from six addresses on three accounts, the clock moving by
    seconds and now and then by minutes (so windows and slowed intervals pass), sent to the two
    workers at random: every wait is the in-memory rule's to the last bit, and every rule is hit."""
    first, second, clock = two_workers
    memory = LoginThrottle(clock=clock)
    rng = random.Random(20)
    waits: list[float] = []
    for step in range(400):
        clock.now += rng.choice([0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 120.0])
        address, account = f"10.0.0.{rng.randrange(6)}", rng.choice(["wuhua", "guandu", "officer"])
        expected = memory.wait_s(address, account)
        assert await rng.choice([first, second]).wait_s(address, account) == expected, step
        waits.append(expected)
        if expected == 0 and rng.random() < 0.9:
            memory.failed(address, account)
            await rng.choice([first, second]).failed(address, account)
        elif expected == 0:
            memory.succeeded(address, account)
            await rng.choice([first, second]).succeeded(address, account)
    assert any(0 < w <= 2 for w in waits)  # a slowed account
    assert any(w > 2 for w in waits)  # a pair or an address over its limit
    assert waits.count(0.0) > 100
