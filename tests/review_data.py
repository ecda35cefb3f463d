"""Cases with a determination that reached their parties, written straight into the database, for
the review tests that move the clock (``Rig``: the reviews and the review desk on that clock); and
what they read back (SMS, log events)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.casework.events import Actor, append
from server.config import PortalSection
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Case, CaseEvent, Determination, Device, Party, SmsMessage, Unit, UnitKey, User
from server.portal.access import Visitor
from server.portal.review_desk import ReviewDesk, Staff
from server.portal.reviews import Reviews
from server.users import Role
from tests.cases import case_id, logged_in, new_case
from tests.casework_data import DRIVER_A, DRIVER_B, FACTS, decision, driver
from tests.conftest import RunningServer
from tests.services import Mosquitto


def scene_jpeg() -> bytes:
    """A small JPEG that opens: the server opens what a party attaches, and a file that only starts
    like a JPEG is refused."""
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 120, 150)).save(out, "JPEG")
    return out.getvalue()


# A party's evidence files: a photo, and a PDF whole to its end marker.
JPEG = scene_jpeg()
PDF = b"%PDF-1.7\n" + b"x" * 40 + b"\n%%EOF\n"
# Tuesday 1 December 2026, 09:00 Beijing: the determination reaches the parties.
DELIVERED = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
PHONES = ("13812348000", "13987650001")
SYSTEM = Actor(None, "system", "sms")


def beijing(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


async def _base(session: AsyncSession) -> int:
    if await session.get(Unit, "530102") is None:
        session.add_all(
            [
                Unit(adcode="530102", name="五华区交警大队"),
                Unit(adcode="530111", name="官渡区交警大队"),
                Device(id="car-0001", kind="car", status="active"),
                User(username="o1", password_hash="x", role="officer", display_name="o1", created_at=DELIVERED),
            ]
        )
        await session.flush()
        session.add(UnitKey(key_id="k1", unit_adcode="530102", public_key="x", created_at=DELIVERED))
        await session.flush()
    user = await session.scalar(select(User.id).where(User.username == "o1"))
    assert user is not None
    return user


async def determined_case(
    sessions: async_sessionmaker[AsyncSession],
    case_no: str,
    reached: tuple[datetime | None, ...] = (DELIVERED, DELIVERED),
) -> tuple[int, list[int]]:
    """A case of 530102 with two parties and version 1 issued; party i's SMS reached at ``reached[i]``."""
    async with sessions.begin() as session:
        user = await _base(session)
        case = Case(
            case_no=case_no,
            report_id=case_no[-26:].rjust(26, "0"),
            device_id="car-0001",
            unit_adcode="530102",
            status="delivered",
            trigger="button",
            triggered_at=DELIVERED - timedelta(hours=2),
            received_at=DELIVERED - timedelta(hours=2),
            position_source="gnss",
            report={"device_kind": "car", "health": {}},
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
                updated_at=DELIVERED,
                updated_by=user,
            )
            for i, (name, phone) in enumerate(zip(("张三", "李四"), PHONES, strict=True))
        ]
        session.add_all(parties)
        await session.flush()
        row = await issue(session, case, user, 1, DELIVERED - timedelta(hours=1))
        for party, at in zip(parties, reached, strict=True):
            if at is not None:
                detail = {"sms": 0, "party": party.id, "determination": row.id}
                await append(session, case.id, SYSTEM, "delivery.reached", detail, at)
        return case.id, [p.id for p in parties]


async def issue(session: AsyncSession, case: Case, user: int, version: int, at: datetime) -> Determination:
    row = Determination(
        case_id=case.id,
        version=version,
        situation="rear_end",
        facts="追尾",
        legal_basis="第四十三条",
        liabilities={},
        correction_reason=None if version == 1 else "复核",
        issued_by=user,
        issued_at=at,
        token=f"t{case.id}-{version}",
        path=f"{case.case_no}/v{version}.pdf",
        sha256="0" * 64,
        manifest={},
        signature="x",
        key_id="k1",
    )
    session.add(row)
    await session.flush()
    return row


def visitor(case_id: int, party_id: int, phone: str = PHONES[0]) -> Visitor:
    return Visitor(phone, party_id, case_id, DELIVERED + timedelta(days=60))


async def review_texts(sessions: async_sessionmaker[AsyncSession], case_id: int, phone: str) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(SmsMessage.text)
            .where(SmsMessage.case_id == case_id, SmsMessage.phone == phone, SmsMessage.kind == "review")
            .order_by(SmsMessage.id)
        )
        return list(rows)


async def events(sessions: async_sessionmaker[AsyncSession], case_id: int) -> list[tuple[str, dict[str, Any]]]:
    async with sessions() as session:
        rows = await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq))
        return [(e.action, e.detail) for e in rows]


# --- over the running server's API ---------------------------------------------------------------


async def determined_over_api(
    server: RunningServer, broker: Mosquitto, phones: tuple[str, str]
) -> tuple[int, str, list[int]]:
    """A case reported by a unit, worked by the dispatcher with two parties of their own phones,
    handed over and determined by the officer: (case id, case number, party ids)."""
    case_no = await new_case(broker)
    wuhua = await logged_in(server, "wuhua")
    cid = await case_id(wuhua, case_no)
    base = f"/api/cases/{cid}"
    ids = [
        (await wuhua.http.post(f"{base}/parties", json=driver(d, phone=p))).json()["id"]
        for d, p in zip((DRIVER_A, DRIVER_B), phones, strict=True)
    ]
    await wuhua.http.put(f"{base}/facts", json=FACTS)
    await wuhua.http.post(f"{base}/checks")
    assert (await wuhua.http.post(f"{base}/hand-over")).status_code == 200
    await wuhua.close()
    officer = await logged_in(server, "officer")
    issued = await officer.http.post(f"{base}/determinations", json=decision(ids))
    assert issued.status_code == 201, issued.text
    await officer.close()
    return cid, case_no, ids


async def party_client(server: RunningServer, case_no: str, phone: str) -> httpx.AsyncClient:
    """A party's phone logged in to the portal with the code the server sent it."""
    http = httpx.AsyncClient(base_url=server.url, timeout=10)
    asked = await http.post("/api/portal/code", json={"case_no": case_no, "phone": phone})
    assert asked.status_code == 202, asked.text
    engine = make_engine(server.cfg.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            text = await session.scalar(
                select(SmsMessage.text)
                .where(SmsMessage.phone == phone, SmsMessage.kind == "code")
                .order_by(SmsMessage.id.desc())
                .limit(1)
            )
    finally:
        await engine.dispose()
    found = re.search(r"验证码(\d{6})", text or "")
    assert found, text
    login = await http.post("/api/portal/login", json={"case_no": case_no, "phone": phone, "code": found.group(1)})
    assert login.status_code == 200, login.text
    return http


async def review_sms(server: RunningServer, case_id: int) -> dict[str, list[str]]:
    """The review SMS of a case, per phone."""
    engine = make_engine(server.cfg.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = (
                await session.execute(
                    select(SmsMessage.phone, SmsMessage.text)
                    .where(SmsMessage.case_id == case_id, SmsMessage.kind == "review")
                    .order_by(SmsMessage.id)
                )
            ).all()
    finally:
        await engine.dispose()
    out: dict[str, list[str]] = {}
    for phone, text in rows:
        out.setdefault(phone, []).append(text)
    return out


class Clock:
    def __init__(self) -> None:
        self.now = DELIVERED

    def __call__(self) -> datetime:
        return self.now


class Rig:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], folder: Path) -> None:
        self.sessions = sessions
        self.clock = Clock()
        self.woken = 0
        self.changed: list[dict[str, Any]] = []
        self.folder = folder
        cfg = PortalSection()
        self.reviews = Reviews(sessions, cfg, folder, "https://kc.example", self.wake, self.change, self.clock)
        self.desk = ReviewDesk(sessions, cfg, "https://kc.example", self.wake, self.change, self.clock)
        self.officer = Staff(Role.OFFICER, frozenset({"530102"}), Actor(1, "officer", "10.0.0.9"))
        self.other_officer = Staff(Role.OFFICER, frozenset({"530111"}), Actor(1, "guandu", "10.0.0.9"))
        self.reviewer = Staff(Role.REVIEWER, frozenset({"530102", "530111"}), Actor(1, "reviewer", "10.0.0.8"))

    def wake(self) -> None:
        self.woken += 1

    async def change(self, summary: dict[str, Any]) -> None:
        self.changed.append(summary)
