"""Statements: a party's account as a marked span of the call recording plus the dispatcher's
summary. Over the API on SQLite and PostgreSQL (a span the recording does not cover is refused),
and marked on the case page in headless Chromium."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from server.cases import now_utc
from server.db.engine import make_engine
from server.db.models import Evidence
from server.users import Role
from tests.browser import chromium
from tests.cases import case_id, detail, logged_in, new_case
from tests.casework_data import DRIVER_A, driver
from tests.conftest import RunningServer, add_user, make_server_config, start_server
from tests.console_pages import login
from tests.services import Mosquitto


async def add_recording(server: RunningServer, cid: int, case_no: str, start: datetime, end: datetime, n: int) -> None:
    """A recording segment as the call recorder stores one: the file, its hash and its media times."""
    segment = server.cfg.evidence_dir / case_no / f"call-{n}.mkv"
    segment.parent.mkdir(parents=True, exist_ok=True)
    segment.write_bytes(f"segment {n}".encode())
    engine = make_engine(server.cfg.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                Evidence.__table__.insert().values(  # type: ignore[attr-defined]
                    case_id=cid,
                    kind="recording",
                    path=f"{case_no}/call-{n}.mkv",
                    sha256=hashlib.sha256(segment.read_bytes()).hexdigest(),
                    size_bytes=segment.stat().st_size,
                    media_start=start,
                    media_end=end,
                    created_at=now_utc(),
                )
            )
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def st_server(request: pytest.FixtureRequest, tmp_path: Path, broker: Mosquitto) -> AsyncIterator[RunningServer]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    server = await start_server(make_server_config(tmp_path / "server", broker.port, database_url=url))
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    yield server
    await server.stop()


async def test_a_statement_must_lie_in_the_recording(st_server: RunningServer, broker: Mosquitto) -> None:
    case_no = await new_case(broker)
    wuhua = await logged_in(st_server, "wuhua")
    cid = await case_id(wuhua, case_no)
    base = f"/api/cases/{cid}"
    party = (await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A))).json()
    t0 = now_utc().replace(microsecond=0)
    # Two 10 s segments back to back, then a gap (the call dropped), then one more.
    await add_recording(st_server, cid, case_no, t0, t0 + timedelta(seconds=10), 1)
    await add_recording(st_server, cid, case_no, t0 + timedelta(seconds=10.01), t0 + timedelta(seconds=20), 2)
    await add_recording(st_server, cid, case_no, t0 + timedelta(seconds=40), t0 + timedelta(seconds=50), 3)

    def span(a: float, b: float) -> dict[str, object]:
        return {
            "party_id": party["id"],
            "start": (t0 + timedelta(seconds=a)).isoformat(),
            "end": (t0 + timedelta(seconds=b)).isoformat(),
            "summary": "我在翠湖南路直行，前车突然刹车，我来不及停车追尾。",
        }

    ok = await wuhua.http.post(f"{base}/statements", json=span(5, 15))
    assert ok.status_code == 201, ok.text
    for a, b in ((15, 45), (-5, 5), (45, 55)):
        refused = await wuhua.http.post(f"{base}/statements", json=span(a, b))
        assert refused.status_code == 422 and "does not cover" in detail(refused), (a, b)
    backwards = await wuhua.http.post(f"{base}/statements", json=span(9, 3))
    assert backwards.status_code == 422 and "end after it starts" in detail(backwards)
    work = (await wuhua.http.get(f"{base}/work")).json()
    assert [s["summary"][:4] for s in work["statements"]] == ["我在翠湖"]
    events = (await wuhua.http.get(f"{base}/events")).json()["events"]
    assert events[-1]["action"] == "statement.added" and events[-1]["detail"]["segments"] == [1, 2]
    await wuhua.close()


async def test_the_dispatcher_marks_a_statement_on_the_case_page(broker: Mosquitto, tmp_path: Path) -> None:
    server = await start_server(make_server_config(tmp_path / "server", broker.port))
    try:
        await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
        case_no = await new_case(broker)
        wuhua = await logged_in(server, "wuhua")
        cid = await case_id(wuhua, case_no)
        await wuhua.http.post(f"/api/cases/{cid}/parties", json=driver(DRIVER_A))
        now = now_utc()
        await add_recording(server, cid, case_no, now - timedelta(seconds=30), now + timedelta(seconds=60), 1)
        async with chromium() as browser:
            page = await browser.new_page()
            await login(page, server.url, "wuhua")
            await page.goto(f"{server.url}/case?id={cid}")
            await page.click("#s-mark-start")
            await asyncio.sleep(1.1)
            await page.click("#s-mark-end")
            await page.fill("#s-summary", "甲：前车急刹，我未保持安全距离。")
            await page.click("#s-save")
            await expect(page.locator("#statements li")).to_have_count(1)
            await expect(page.locator("#statements li")).to_contain_text("甲")
            await expect(page.locator("#statements li")).to_contain_text("前车急刹")
        await wuhua.close()
    finally:
        await server.stop()
