"""The insurers' events below the HTTP API, on SQLite and PostgreSQL: what is queued for whom (a
review's conclusion, in the transaction that concludes it), two workers' senders claiming each
event once, signatures during and after a secret's rotation, and the signed links."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import now_utc
from server.config import InsurersSection
from server.db.engine import make_engine, make_sessionmaker, upgrade_schema
from server.db.insurers import WebhookMessage, WebhookStatus
from server.db.models import Case, Determination, Party
from server.insurers.directory import Credentials, add_insurer, disable, rotate_secret
from server.insurers.events import queue_determination
from server.insurers.links import InsurerLinks
from server.insurers.webhooks import WebhookOutbox
from tests.insurer_endpoints import Endpoint, Received, insurer_endpoints, specs
from tests.review_data import Rig, beijing, determined_case, issue, visitor
from tests.services import free_port
from tests.waiting import wait_for

FAST = InsurersSection(timeout_s=2, retry_first_s=0.1, retry_max_s=0.5, poll_s=0.1)
POLICIES = ("PICC2026530100000123", "PAIC2026530100000456")


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'kc.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    await upgrade_schema(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def endpoints() -> AsyncIterator[dict[str, Endpoint]]:
    async with insurer_endpoints({code: free_port() for code in ("PICC", "PAIC", "CPIC")}) as running:
        yield running


async def _directory(sessions: async_sessionmaker[AsyncSession], endpoints: dict[str, Endpoint]) -> dict[str, str]:
    made: dict[str, Credentials] = {}
    for spec in specs(endpoints):
        made[spec.code] = await add_insurer(sessions, spec, now_utc())
    return {code: c.secret for code, c in made.items()}


async def _insured_case(sessions: async_sessionmaker[AsyncSession], case_no: str) -> int:
    """A delivered case whose parties hold a PICC and a PAIC policy, its events queued as the SMS
    outbox queues them when the case is delivered."""
    case_id, parties = await determined_case(sessions, case_no)
    async with sessions.begin() as session:
        for party_id, policy in zip(parties, POLICIES, strict=True):
            await session.execute(update(Party).where(Party.id == party_id).values(policy_no=policy))
        case = await session.get(Case, case_id)
        determination = await session.scalar(select(Determination.id).where(Determination.case_id == case_id))
        assert case is not None and determination is not None
        assert await queue_determination(session, case, determination, now_utc()) == 2
        # Once per insurer and version, whoever asks again.
        assert await queue_determination(session, case, determination, now_utc()) == 0
    return case_id


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookMessage]:
    async with sessions() as session:
        return list((await session.scalars(select(WebhookMessage).order_by(WebhookMessage.id))).all())


async def test_a_review_conclusion_goes_to_each_insurer_with_the_insured_in_full(
    sessions: async_sessionmaker[AsyncSession], endpoints: dict[str, Endpoint], tmp_path: Path
) -> None:
    await _directory(sessions, endpoints)
    case_id = await _insured_case(sessions, "530102202612010101")
    rig = Rig(sessions, tmp_path / "evidence")
    async with sessions() as session:
        first = (await session.scalars(select(Party.id).where(Party.case_id == case_id).order_by(Party.id))).first()
    assert first is not None
    rig.clock.now = beijing(2, 10)
    await rig.reviews.file(visitor(case_id, first), "请求重新认定", "对方突然变道，我方无责。", [])
    (review,) = await rig.desk.listing(rig.officer)
    await rig.desk.forward(review["id"], rig.officer)
    await rig.desk.decide(review["id"], rig.reviewer, True, "予以受理")
    assert [r.event_type for r in await _rows(sessions)] == ["determination.delivered"] * 2
    await rig.desk.conclude(review["id"], rig.reviewer, True, "维持原认定")

    concluded = [r for r in await _rows(sessions) if r.event_type == "review.concluded"]
    assert sorted(r.insurer_code for r in concluded) == ["PAIC", "PICC"]
    picc = next(r for r in concluded if r.insurer_code == "PICC").payload
    assert picc["type"] == "review.concluded" and picc["timestamp"].endswith("+08:00")
    data = picc["data"]
    assert data["review"]["conclusion"] == "upheld" and data["review"]["text"] == "维持原认定"
    assert data["review"]["contested_version"] == 1 and data["determination"]["version"] == 1
    assert [p["name"] for p in data["insured"]] == ["张三"] and data["insured"][0]["policy_no"] == POLICIES[0]
    assert data["insured"][0]["id_number"] == "530102199001011234" and data["insured"][0]["position"] == "甲"
    assert data["others"] == [
        {"position": "乙", "role": "driver", "name": "李*", "plate": None, "insurer": "PAIC", "liability": None}
    ]
    assert data["determination"]["pdf_url"].startswith("/api/insurers/v1/links/PICC/determinations/")


async def test_two_workers_send_each_event_once_and_every_insurer_verifies_it(
    sessions: async_sessionmaker[AsyncSession], endpoints: dict[str, Endpoint]
) -> None:
    secrets = await _directory(sessions, endpoints)
    for n in range(12):
        await _insured_case(sessions, f"53010220261201{n:04d}")
    senders = [WebhookOutbox(sessions, FAST, InsurerLinks(sessions, "http://kc.test", 3600)) for _ in range(2)]
    tasks = [asyncio.create_task(s.run()) for s in senders]
    try:

        async def all_delivered() -> bool:
            return all(r.status == WebhookStatus.DELIVERED for r in await _rows(sessions))

        await wait_for("every event delivered", all_delivered, within_s=30)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sender in senders:
            await sender.close()
    for code in ("PICC", "PAIC"):
        got = endpoints[code].requests
        assert len(got) == 12 and len({r.webhook_id for r in got}) == 12  # no event sent twice
        assert all(r.verifies_with(secrets[code]) for r in got)
        other = secrets["PAIC" if code == "PICC" else "PICC"]
        assert not any(r.verifies_with(other) for r in got)
        assert all(r.event["data"]["determination"]["pdf_url"].startswith("http://kc.test/") for r in got)
    assert endpoints["CPIC"].requests == []


async def test_during_a_rotation_both_secrets_verify_and_the_old_not_after(
    sessions: async_sessionmaker[AsyncSession], endpoints: dict[str, Endpoint]
) -> None:
    old = (await _directory(sessions, endpoints))["PICC"]
    new = await rotate_secret(sessions, "PICC", timedelta(seconds=2), now_utc())
    sender = WebhookOutbox(sessions, FAST, InsurerLinks(sessions, "http://kc.test", 3600))
    running = asyncio.create_task(sender.run())
    try:
        await _insured_case(sessions, "530102202612010201")
        await wait_for("the first event", lambda: _got(endpoints["PICC"], 1))
        during = endpoints["PICC"].requests[0]
        assert during.verifies_with(old) and during.verifies_with(new)
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        await asyncio.sleep(2.2)
        await _insured_case(sessions, "530102202612010202")
        await wait_for("the second event", lambda: _got(endpoints["PICC"], 2))
        after = endpoints["PICC"].requests[1]
        assert after.verifies_with(new) and not after.verifies_with(old)
        tampered = Received(after.webhook_id, after.headers, after.body.replace(b'"version":1', b'"version":2'))
        assert tampered.body != after.body and not tampered.verifies_with(new)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await sender.close()


async def _got(endpoint: Endpoint, n: int) -> bool:
    return len(endpoint.requests) >= n


async def test_links_open_on_any_worker_until_they_expire(sessions: async_sessionmaker[AsyncSession]) -> None:
    one, two = InsurerLinks(sessions, "https://kc.example", 60), InsurerLinks(sessions, "https://kc.example", 60)
    now = now_utc()
    path = "/api/insurers/v1/links/PICC/determinations/7.pdf"
    url = await one.sign(path, now)
    assert url.startswith(f"https://kc.example{path}?exp=")
    exp, sig = int(url.split("exp=")[1].split("&")[0]), url.split("sig=")[1]
    assert await two.valid(path, exp, sig, now)  # the key is the database's, not the worker's
    assert not await two.valid(path.replace("PICC", "PAIC"), exp, sig, now)  # another insurer's path
    assert not await two.valid(path, exp + 60, sig, now)  # a longer life than signed
    assert not await two.valid(path, exp, sig, now + timedelta(seconds=61))  # expired


async def test_a_later_version_delivered_is_a_correction_once_per_insurer(
    sessions: async_sessionmaker[AsyncSession], endpoints: dict[str, Endpoint]
) -> None:
    await _directory(sessions, endpoints)
    case_id = await _insured_case(sessions, "530102202612010301")
    async with sessions.begin() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        officer = await session.scalar(select(Determination.issued_by).where(Determination.case_id == case_id))
        assert officer is not None
        second = await issue(session, case, officer, 2, now_utc())
        assert await queue_determination(session, case, second.id, now_utc()) == 2
        assert await queue_determination(session, case, second.id, now_utc()) == 0
    corrected = [r for r in await _rows(sessions) if r.event_type == "determination.corrected"]
    assert sorted(r.insurer_code for r in corrected) == ["PAIC", "PICC"]
    assert all(r.payload["data"]["determination"]["version"] == 2 for r in corrected)
    assert all(r.determination_id == second.id for r in corrected)


async def test_a_disabled_insurer_is_sent_nothing_more(
    sessions: async_sessionmaker[AsyncSession], endpoints: dict[str, Endpoint]
) -> None:
    await _directory(sessions, endpoints)
    await _insured_case(sessions, "530102202612010401")
    await disable(sessions, "PAIC", now_utc())
    sender = WebhookOutbox(sessions, FAST, InsurerLinks(sessions, "http://kc.test", 3600))
    running = asyncio.create_task(sender.run())
    try:

        async def settled() -> list[WebhookMessage]:
            rows = await _rows(sessions)
            return rows if all(r.attempts for r in rows) else []

        rows = {r.insurer_code: r for r in await wait_for("both tried", settled)}
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await sender.close()
    assert rows["PICC"].status == WebhookStatus.DELIVERED
    assert rows["PAIC"].status == WebhookStatus.PENDING and rows["PAIC"].last_error == "insurer disabled"
    assert endpoints["PAIC"].requests == [] and len(endpoints["PICC"].requests) == 1
