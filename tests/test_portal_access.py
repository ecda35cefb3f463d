"""A party gets in with a link and a code sent to their phone, and with nothing less; on SQLite and
PostgreSQL, with a clock the test moves."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.config import PortalSection
from server.db.engine import make_engine, make_sessionmaker, upgrade_schema
from server.db.models import Case, Device, Party, SmsMessage, Unit, User
from server.errors import NotFound, Throttled, Unauthenticated
from server.portal.access import PortalAccess

START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
PHONE_A, PHONE_B = "13812348000", "13987650001"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'kc.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    await upgrade_schema(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def make_case(sessions: async_sessionmaker[AsyncSession], case_no: str) -> tuple[Case, list[Party]]:
    async with sessions.begin() as session:
        if await session.get(Unit, "530102") is None:
            session.add(Unit(adcode="530102", name="五华区"))
            session.add(Device(id="car-0001", kind="car", status="active"))
            session.add(User(username="d1", password_hash="x", role="dispatcher", display_name="d1", created_at=START))
        await session.flush()
        user = await session.scalar(select(User))
        assert user is not None
        case = Case(
            case_no=case_no,
            report_id=case_no[-26:].rjust(26, "0"),
            device_id="car-0001",
            unit_adcode="530102",
            status="new",
            trigger="button",
            triggered_at=START,
            received_at=START,
            position_source="gnss",
            report={},
        )
        session.add(case)
        await session.flush()
        parties = [
            Party(
                case_id=case.id,
                position=i + 1,
                role="driver",
                name=name,
                id_number="530102199001011234",
                phone=phone,
                updated_at=START,
                updated_by=user.id,
            )
            for i, (name, phone) in enumerate([("张三", PHONE_A), ("李四", PHONE_B)])
        ]
        session.add_all(parties)
    return case, parties


def last_code(texts: list[str]) -> str:
    match = re.search(r"验证码(\d{6})", texts[-1])
    assert match, texts[-1]
    return match.group(1)


async def sms_texts(sessions: async_sessionmaker[AsyncSession], phone: str, kind: str) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(SmsMessage.text).where(SmsMessage.phone == phone, SmsMessage.kind == kind).order_by(SmsMessage.id)
        )
        return list(rows)


@pytest.fixture
async def portal(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[tuple[PortalAccess, Clock, list[int]]]:
    clock = Clock()
    woken: list[int] = []
    yield PortalAccess(sessions, PortalSection(), "https://kc.example", lambda: woken.append(1), clock), clock, woken


async def issue_links(sessions: async_sessionmaker[AsyncSession], access: PortalAccess, case_no: str) -> list[str]:
    case, parties = await make_case(sessions, case_no)
    tokens = []
    async with sessions.begin() as session:
        for party in parties:
            token = await access.issue_link(session, case, party)
            assert token is not None
            tokens.append(token)
    return tokens


async def test_a_link_shows_only_the_case_number_and_a_code_opens_that_partys_session(
    sessions: async_sessionmaker[AsyncSession], portal: tuple[PortalAccess, Clock, list[int]]
) -> None:
    access, _clock, woken = portal
    token_a, _token_b = await issue_links(sessions, access, "530102202612010001")
    (link_sms,) = await sms_texts(sessions, PHONE_A, "link")
    assert f"https://kc.example/p/{token_a}" in link_sms
    assert "530102202612010001" in link_sms

    view = await access.link(token_a)
    assert view.case_no == "530102202612010001"
    assert view.phone_hint == "138****8000"
    assert "张" not in repr(view)

    await access.request_code("10.0.0.1", token=token_a)
    assert woken
    code = last_code(await sms_texts(sessions, PHONE_A, "code"))
    session_token, visitor = await access.login(code, token=token_a)
    assert visitor.phone == PHONE_A and visitor.party_id is not None and visitor.case_id is not None
    assert (await access.visitor(session_token)).party_id == visitor.party_id
    # The code is spent.
    with pytest.raises(Unauthenticated):
        await access.login(code, token=token_a)


async def test_saving_the_same_phone_again_sends_no_second_link_and_a_new_phone_revokes_the_old(
    sessions: async_sessionmaker[AsyncSession], portal: tuple[PortalAccess, Clock, list[int]]
) -> None:
    access, _clock, _ = portal
    token_a, _ = await issue_links(sessions, access, "530102202612010002")
    async with sessions.begin() as session:
        party = await session.scalar(select(Party).where(Party.phone == PHONE_A))
        assert party is not None
        case = await session.get(Case, party.case_id)
        assert case is not None
        assert await access.issue_link(session, case, party) is None
        party.phone = "13700000000"
        new_token = await access.issue_link(session, case, party)
    assert new_token is not None and new_token != token_a
    with pytest.raises(NotFound):
        await access.link(token_a)
    with pytest.raises(NotFound):
        await access.request_code("10.0.0.1", token=token_a)
    assert len(await sms_texts(sessions, "13700000000", "link")) == 1


async def test_five_wrong_tries_kill_the_code_even_if_the_sixth_is_right(
    sessions: async_sessionmaker[AsyncSession], portal: tuple[PortalAccess, Clock, list[int]]
) -> None:
    access, _clock, _ = portal
    token_a, _ = await issue_links(sessions, access, "530102202612010003")
    await access.request_code("10.0.0.2", token=token_a)
    code = last_code(await sms_texts(sessions, PHONE_A, "code"))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await access.login(wrong, token=token_a)
    with pytest.raises(Unauthenticated):
        await access.login(code, token=token_a)


async def test_a_code_expires_after_five_minutes_and_a_session_after_its_time(
    sessions: async_sessionmaker[AsyncSession], portal: tuple[PortalAccess, Clock, list[int]]
) -> None:
    access, clock, _ = portal
    token_a, _ = await issue_links(sessions, access, "530102202612010004")
    await access.request_code("10.0.0.3", token=token_a)
    code = last_code(await sms_texts(sessions, PHONE_A, "code"))
    clock.advance(301)
    with pytest.raises(Unauthenticated):
        await access.login(code, token=token_a)
    await access.request_code("10.0.0.3", token=token_a)
    code = last_code(await sms_texts(sessions, PHONE_A, "code"))
    session_token, _visitor = await access.login(code, token=token_a)
    clock.advance(PortalSection().session_ttl_h * 3600 + 1)
    with pytest.raises(Unauthenticated):
        await access.visitor(session_token)
    with pytest.raises(Unauthenticated):
        await access.visitor("made-up")


async def test_codes_are_throttled_per_phone_and_per_address(
    sessions: async_sessionmaker[AsyncSession], portal: tuple[PortalAccess, Clock, list[int]]
) -> None:
    access, clock, _ = portal
    token_a, token_b = await issue_links(sessions, access, "530102202612010005")
    await access.request_code("10.0.0.4", token=token_a)
    with pytest.raises(Throttled, match="秒后"):
        await access.request_code("10.0.0.4", token=token_a)
    for _ in range(4):
        clock.advance(61)
        await access.request_code("10.0.0.5", token=token_a)
    clock.advance(61)
    with pytest.raises(Throttled, match="这个手机号"):
        await access.request_code("10.0.0.6", token=token_a)
    clock.advance(3600)
    await access.request_code("10.0.0.6", token=token_a)

    # One address asking for many phones is stopped too.
    limit = PortalSection().codes_per_address_hour
    for i in range(limit):
        await access.request_code("10.9.9.9", phone=f"1390000{i:04d}")
    with pytest.raises(Throttled, match="这台设备"):
        await access.request_code("10.9.9.9", token=token_b)


async def test_a_case_number_with_a_phone_that_is_no_partys_sends_nothing_and_says_the_same(
    sessions: async_sessionmaker[AsyncSession], portal: tuple[PortalAccess, Clock, list[int]]
) -> None:
    access, _clock, woken = portal
    await issue_links(sessions, access, "530102202612010006")
    await access.request_code("10.0.0.7", case_no="530102202612010006", phone="13600000000")
    assert await sms_texts(sessions, "13600000000", "code") == []
    assert not woken
    with pytest.raises(Unauthenticated):
        await access.login("000000", case_no="530102202612010006", phone="13600000000")
    # The party's own number, by case number, works like the link.
    await access.request_code("10.0.0.7", case_no="530102202612010006", phone=PHONE_B)
    code = last_code(await sms_texts(sessions, PHONE_B, "code"))
    _token, visitor = await access.login(code, case_no="530102202612010006", phone=PHONE_B)
    assert visitor.party_id is not None
