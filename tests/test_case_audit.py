"""The per-case event log and ``kuaichu server audit``, on SQLite and PostgreSQL: every action is
chained; the table refuses edits; an edit made anyway, a lost event and an altered evidence file
are each found and named."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from server.cases import now_utc
from server.casework.events import Actor, append, chain_errors
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Case, CaseEvent, Evidence
from tests.cases import case_id, logged_in, new_case
from tests.casework_data import DRIVER_A, DRIVER_B, FACTS, driver
from tests.commands import server_command
from tests.conftest import RunningServer, make_server_config, start_server
from tests.services import Mosquitto


def audit(server: RunningServer, config: Path, case_no: str) -> subprocess.CompletedProcess[str]:
    return server_command(server, config, "audit", case_no)


async def sql(url: str, *statements: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_every_action_is_chained_and_tampering_is_found(
    case_server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    server = case_server
    case_no = await new_case(broker)
    wuhua = await logged_in(server, "wuhua")
    cid = await case_id(wuhua, case_no)
    base = f"/api/cases/{cid}"
    await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A, plate_read_source="report"))
    await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_B))
    await wuhua.http.put(f"{base}/facts", json=FACTS)
    await wuhua.http.post(f"{base}/checks")
    await wuhua.http.post(f"{base}/hand-over")
    log = (await wuhua.http.get(f"{base}/events")).json()
    await wuhua.close()
    assert [e["action"] for e in log["events"]] == [
        "case.opened",
        "party.added",
        "party.added",
        "facts.set",
        "checks.run",
        "case.handed_over",
    ]
    assert log["chain_problems"] == []
    opened, added = log["events"][0], log["events"][1]
    assert opened["actor"] == "device:car-0600" and opened["source"] == "mqtt"
    assert added["actor"] == "wuhua" and added["source"] == "127.0.0.1" and added["detail"]["plate_read"] == "云A5H821"

    # A still of the case, as the call code stores one: file plus its SHA-256.
    still = server.cfg.evidence_dir / case_no / "still-1.jpg"
    still.parent.mkdir(parents=True, exist_ok=True)
    still.write_bytes(b"\xff\xd8 a still of the scene \xff\xd9")
    engine = make_engine(server.cfg.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                Evidence.__table__.insert().values(  # type: ignore[attr-defined]
                    case_id=cid,
                    kind="still",
                    path=f"{case_no}/still-1.jpg",
                    sha256=hashlib.sha256(still.read_bytes()).hexdigest(),
                    size_bytes=still.stat().st_size,
                    created_at=now_utc(),
                )
            )
    finally:
        await engine.dispose()

    done = await asyncio.to_thread(audit, server, tmp_path / "server.toml", case_no)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"case {case_no}: 6 events, 1 evidence files; intact" in done.stdout

    url = server.cfg.database_url
    # The table refuses edits and deletions.
    for statement in (
        f"UPDATE case_events SET actor = 'someone' WHERE case_id = {cid} AND seq = 2",
        f"DELETE FROM case_events WHERE case_id = {cid} AND seq = 6",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            await sql(url, statement)

    # Someone who can drop the guard edits the record anyway, and changes the still.
    pg = "postgresql" in url
    drop = (
        ["DROP TRIGGER case_events_append_only ON case_events"]
        if pg
        else ["DROP TRIGGER case_events_no_update", "DROP TRIGGER case_events_no_delete"]
    )
    await sql(
        url,
        *drop,
        f"UPDATE case_events SET actor = 'someone' WHERE case_id = {cid} AND seq = 2",
        f"DELETE FROM case_events WHERE case_id = {cid} AND seq = 4",
    )
    still.write_bytes(b"\xff\xd8 another picture \xff\xd9")
    done = await asyncio.to_thread(audit, server, tmp_path / "server.toml", case_no)
    assert done.returncode == 1
    assert "FAIL event 2 (party.added): content altered since it was written" in done.stdout
    assert "FAIL event 4 is missing (found 5 in its place)" in done.stdout
    assert f"FAIL evidence 1 (still {case_no}/still-1.jpg): altered" in done.stdout
    assert "NOT intact" in done.stdout

    missing = await asyncio.to_thread(audit, server, tmp_path / "server.toml", "530102209901010001")
    assert missing.returncode == 2 and "no case" in missing.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_concurrent_actions_on_one_case_take_turns_in_the_chain(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, broker: Mosquitto
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    server = await start_server(make_server_config(tmp_path / "server", broker.port, database_url=url))
    try:
        case_no = await new_case(broker)
        engine = make_engine(server.cfg.database_url)
        sessions = make_sessionmaker(engine)
        async with sessions() as session:
            cid = (await session.scalars(select(Case.id).where(Case.case_no == case_no))).one()

        async def act(i: int) -> None:
            async with sessions.begin() as session:
                await session.scalar(select(Case).where(Case.id == cid))  # a read first, as real actions do
                await append(session, cid, Actor(None, "system", "test"), "test.action", {"i": i}, now_utc())

        await asyncio.gather(*(act(i) for i in range(20)))
        async with sessions() as session:
            events = list((await session.scalars(select(CaseEvent).where(CaseEvent.case_id == cid))).all())
        await engine.dispose()
        assert len(events) == 21 and chain_errors(sorted(events, key=lambda e: e.seq)) == []
    finally:
        await server.stop()
