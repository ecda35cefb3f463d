"""The schema on SQLite and PostgreSQL: migrations match the models; several workers share one database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Connection

from protocol.messages import encode
from server.db.engine import alembic_config, make_engine, make_sessionmaker, upgrade_schema
from server.db.models import Base, Case
from tests.conftest import make_server_config, start_server
from tests.reports import GUANDU, WUHUA, in_car_report
from tests.services import Mosquitto
from tests.wire import publish_report, raw_device


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _check_migrations(url: str) -> None:
    await upgrade_schema(url)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
    # And back down, and up again: the downgrade path is real too.
    await asyncio.to_thread(command.downgrade, alembic_config(url), "base")
    await upgrade_schema(url)


async def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    await _check_migrations(f"sqlite+aiosqlite:///{tmp_path / 'kc.db'}")


async def test_migrations_match_the_models_on_postgresql(pg_url: str) -> None:
    await _check_migrations(pg_url)


async def _cases(url: str) -> list[Case]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.scalars(select(Case))).all())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_two_workers_share_the_reports_and_never_duplicate_a_case(
    tmp_path: Path, broker: Mosquitto, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    first = make_server_config(tmp_path / "w1", broker.port, database_url=url, worker_id="w1")
    if url is None:
        url = first.database_url
    second = make_server_config(tmp_path / "w1", broker.port, database_url=url, worker_id="w2")
    workers = [await start_server(first), await start_server(second)]
    try:
        reports = [in_car_report("car-0200", WUHUA if i % 2 else GUANDU) for i in range(30)]
        async with raw_device(broker.port, "car-0200") as (client, acks):
            # Each report three times: the copies land on different workers at the same moment.
            await asyncio.gather(*(publish_report(client, "car-0200", encode(r)) for r in reports * 3))
            answers = [await asyncio.wait_for(acks.get(), 15) for _ in range(90)]
    finally:
        for worker in workers:
            await worker.stop()
    by_report: dict[str | None, set[str | None]] = {}
    for ack in answers:
        assert ack.status == "accepted"
        by_report.setdefault(ack.report_id, set()).add(ack.case_no)
    assert len(by_report) == 30 and all(len(numbers) == 1 for numbers in by_report.values())
    cases = await _cases(url)
    assert len(cases) == 30
    assert len({c.case_no for c in cases}) == 30
    assert sorted(int(c.case_no[-4:]) for c in cases if c.unit_adcode == "530102") == list(range(1, 16))
    assert sum(1 for a in answers if not a.duplicate) == 30
