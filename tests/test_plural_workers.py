"""Every background job with several workers on one database (docs/scaling.md, "后台任务"): three
workers' own jobs, each on its own engine, run at once over the same due items, and each item is
done once: a clearing deadline flags its case once (one log line), every SMS reaches the provider
once, a provider's receipt sent to three workers at once logs one delivery and delivers the case
once (on PostgreSQL, and on SQLite, whose one writer serialises), and a rollout's sweep tells each
unit once (PostgreSQL: a deployment of several workers). Retention's two workers at once are in
tests/test_retention.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.messages import Command
from server.cases import now_utc
from server.casework.clearing import ClearingWatch
from server.config import ClearingSection, SmsSection
from server.db.engine import make_engine, make_sessionmaker, upgrade_schema
from server.db.models import Case, Determination, Party
from server.db.rollouts import Rollout, RolloutUnit
from server.delivery.outbox import SmsOutbox, queue_messages
from server.delivery.sms import HttpSmsGateway
from server.portal.access import code_text, queue_sms
from server.rollouts import Rollouts
from tests.review_data import determined_case, events
from tests.services import free_port
from tests.sms_provider import TOKEN, sms_provider

WORKERS = 3


class Way:
    """The worker's way out as these jobs use it: the cases announced to the consoles, and which
    unit was told what."""

    def __init__(self) -> None:
        self.announced: list[dict[str, Any]] = []
        self.told: list[tuple[str | None, str, int | None]] = []

    async def case_changed(self, summary: dict[str, Any]) -> None:
        self.announced.append(summary)

    async def command(self, device_id: str | None, command: Command) -> bool:
        self.told.append((device_id, command.type, command.rollout))
        return True


@pytest.fixture
async def workers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[list[async_sessionmaker[AsyncSession]]]:
    """Each worker's own engine (its own pool of connections) on the one database, PostgreSQL
    unless the test asks for SQLite, connected already as a running worker's is, so that their
    rounds really overlap."""
    if getattr(request, "param", "postgresql") == "postgresql":
        url: str = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await upgrade_schema(url)
    engines = [make_engine(url) for _ in range(WORKERS)]
    for engine in engines:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    yield [make_sessionmaker(engine) for engine in engines]
    for engine in engines:
        await engine.dispose()


async def undelivered(
    sessions: async_sessionmaker[AsyncSession], case_no: str, kind: str = "in-car"
) -> tuple[int, list[Party]]:
    """A case of an in-car unit (or ``kind``) with version 1 issued and no party reached yet."""
    cid, _ = await determined_case(sessions, case_no, reached=(None, None))
    async with sessions.begin() as session:
        await session.execute(
            update(Case)
            .where(Case.id == cid)
            .values(status="determined", delivered_at=None, report={"device_kind": kind, "health": {}})
        )
        parties = list((await session.scalars(select(Party).where(Party.case_id == cid).order_by(Party.id))).all())
    return cid, parties


@pytest.mark.parametrize("workers", ["sqlite", "postgresql"], indirect=True)
async def test_clearing_deadlines_sms_and_receipts_are_each_done_once(
    workers: list[async_sessionmaker[AsyncSession]], tmp_path: Path
) -> None:
    sessions = workers[0]
    cases = [await undelivered(sessions, f"53010220261201000{n}") for n in range(1, 4)]
    now = now_utc()

    # The clear-the-road command went out an hour ago and the unit never moved off: every worker's
    # watch finds each case overdue in the same round.
    # A kiosk's case (the kiosk stays), and an in-car unit's told two days ago, are not looked at.
    kiosk, _ = await undelivered(sessions, "530102202612010004", "kiosk")
    old, _ = await undelivered(sessions, "530102202612010005")
    async with sessions.begin() as session:
        ids = [cid for cid, _ in cases] + [kiosk]
        await session.execute(update(Case).where(Case.id.in_(ids)).values(clear_sent_at=now - timedelta(hours=1)))
        await session.execute(update(Case).where(Case.id == old).values(clear_sent_at=now - timedelta(days=2)))
    consoles = [Way() for _ in workers]
    watches = [ClearingWatch(s, ClearingSection(), c.case_changed) for s, c in zip(workers, consoles, strict=True)]
    await asyncio.gather(*(watch.check(now) for watch in watches))
    for cid, _ in cases:
        actions = [action for action, _ in await events(sessions, cid)]
        assert actions.count("road.not_moved_off") == 1, actions
    for cid in (kiosk, old):
        assert "road.not_moved_off" not in [action for action, _ in await events(sessions, cid)]
    assert sorted(s["case_no"] for c in consoles for s in c.announced) == sorted(
        f"53010220261201000{n}" for n in range(1, 4)
    )

    # Each party's determination SMS, and two one-time codes, sent by whichever worker claims each.
    async with sessions.begin() as session:
        for cid, parties in cases:
            case = await session.get(Case, cid)
            determination = await session.scalar(select(Determination).where(Determination.case_id == cid))
            assert case is not None and determination is not None
            urls = {p.id: f"https://kc.example/p/{p.id}" for p in parties}
            queue_messages(session, case, determination, parties, urls, now)
        for phone in ("13800001234", "13800005678"):
            queue_sms(session, "code", phone, code_text("123456", 10), now)
    (tmp_path / "token").write_text(TOKEN)
    async with sms_provider(free_port(), "http://127.0.0.1:1") as provider:
        provider.receipts.clear()  # the receipts are sent below, to every worker at once
        cfg = SmsSection(gateway_url=provider.url, token_file=tmp_path / "token")
        outboxes = [
            SmsOutbox(s, HttpSmsGateway(provider.url, TOKEN, 5), cfg, f"w{i}", Way(), tmp_path / "sms-taken")
            for i, s in enumerate(workers)
        ]
        try:
            sent = await asyncio.gather(*(outbox.send_due() for outbox in outboxes))
            assert sum(sent) == 8
            refs = [body["ref"] for body in provider.received]
            assert sorted(refs) == sorted(f"kc-{n}" for n in range(1, 9))  # each message once

            # The provider reports each determination SMS delivered to all three workers at once
            # (a provider that got no answer in time sends it again, to whichever worker).
            at = now_utc()
            for n, body in enumerate(provider.received, start=1):
                if body["ref"] in ("kc-7", "kc-8"):
                    continue
                answers = await asyncio.gather(*(o.receipt(f"p-{n}", body["ref"], True, at) for o in outboxes))
                assert answers == [True] * WORKERS
        finally:
            for outbox in outboxes:
                await outbox.close()
    for cid, parties in cases:
        log = await events(sessions, cid)
        reached = sorted(detail["party"] for action, detail in log if action == "delivery.reached")
        assert reached == sorted(p.id for p in parties), log
        assert [action for action, _ in log].count("case.delivered") == 1
        async with sessions() as session:
            assert (await session.scalar(select(Case.status).where(Case.id == cid))) == "delivered"


async def test_a_rollout_swept_by_every_worker_tells_each_unit_once(
    workers: list[async_sessionmaker[AsyncSession]],
) -> None:
    now = now_utc()
    async with workers[0].begin() as session:
        rollout = Rollout(
            release="2026.12.1",
            group_kind="devices",
            group_value="6",
            max_rollback_pct=20,
            batch=4,
            state="active",
            created_by="admin",
            created_at=now,
            changed_at=now,
        )
        session.add(rollout)
        await session.flush()
        session.add_all(RolloutUnit(rollout_id=rollout.id, device_id=f"car-{n:04d}") for n in range(6))
    outs = [Way() for _ in workers]
    sweeps = [Rollouts(s, out, 24 * 3600) for s, out in zip(workers, outs, strict=True)]
    await asyncio.gather(*(sweep.advance(rollout.id) for sweep in sweeps))
    told: list[Any] = sorted(t for out in outs for t in out.told)
    assert len(told) == 4 and len({device for device, _, _ in told}) == 4  # one batch, each unit once
    assert {(kind, r) for _, kind, r in told} == {("update.check", rollout.id)}
    async with workers[0]() as session:
        marked = (await session.scalars(select(RolloutUnit).where(RolloutUnit.told_at.is_not(None)))).all()
    assert sorted(u.device_id for u in marked) == sorted(device for device, _, _ in told)


async def test_a_slow_provider_does_not_let_another_worker_send_a_message_again(
    workers: list[async_sessionmaker[AsyncSession]], tmp_path: Path
) -> None:
    """The provider takes 50 s a message (the workers' clock is moved on as it takes each): a
    round of four outlasts a claim of the round's start, and the last message, still being sent,
    must not look free to the other worker."""
    clock = [now_utc()]
    async with workers[0].begin() as session:
        for n in range(4):
            queue_sms(session, "code", f"1380000{n:04d}", code_text("123456", 10), clock[0])
    (tmp_path / "token").write_text(TOKEN)
    sending_last, go_on = asyncio.Event(), asyncio.Event()

    async def slowly(body: dict[str, Any]) -> None:
        clock[0] += timedelta(seconds=50)
        if body["ref"] == "kc-4" and not sending_last.is_set():
            sending_last.set()
            await go_on.wait()

    async with sms_provider(free_port(), "http://127.0.0.1:1") as provider:
        provider.receipts.clear()
        provider.before_taking = slowly
        cfg = SmsSection(gateway_url=provider.url, token_file=tmp_path / "token", timeout_s=60)
        outboxes = [
            SmsOutbox(
                s, HttpSmsGateway(provider.url, TOKEN, 5), cfg, f"w{i}", Way(), tmp_path / "taken", lambda: clock[0]
            )
            for i, s in enumerate(workers[:2])
        ]
        first = asyncio.create_task(outboxes[0].send_due())
        try:
            await sending_last.wait()
            assert await outboxes[1].send_due() == 0
            go_on.set()
            assert await first == 4
        finally:
            go_on.set()  # a failed check above still lets the first worker's send end
            await asyncio.gather(first, return_exceptions=True)
            for outbox in outboxes:
                await outbox.close()
    assert [body["ref"] for body in provider.received] == ["kc-1", "kc-2", "kc-3", "kc-4"]
