"""Retention of a closed case's media, on SQLite and PostgreSQL, with a running worker: media of a
case closed longer than ``[retention] media_days`` are deleted (files, rows, masked and playable
copies) and the case's log lists them; an open review or insurance claim holds them, a review's
conclusion moves the date on, an open case keeps everything; the review's attachments, the
determination and the log stay, and the case still audits intact. Two workers sweeping at once
delete and log each case once; the worker's own scheduled round does it unasked."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import now_utc
from server.casework.audit import audit_case
from server.config import RetentionSection, ServerConfig
from server.db.engine import make_engine, make_sessionmaker
from server.db.insurers import Claim, Insurer
from server.db.masked import MaskedCopy
from server.db.models import Case, Determination, Device, Evidence, Party, UnitKey, User
from server.db.portal import Review
from server.retention import RetentionJob
from tests.conftest import make_server_config, start_server
from tests.review_data import DELIVERED, determined_case, events
from tests.services import Mosquitto
from tests.waiting import wait_for

DAYS = 365
DUE = DELIVERED + timedelta(days=DAYS + 1)


async def add_evidence(cfg: ServerConfig, session: AsyncSession, case_id: int, case_no: str, kind: str) -> Evidence:
    data = f"{case_no} {kind}".encode()
    relative = f"{case_no}/{kind}-{case_id}.bin"
    path = cfg.evidence_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    row = Evidence(
        case_id=case_id,
        kind=kind,
        path=relative,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        created_at=DELIVERED,
    )
    session.add(row)
    await session.flush()
    return row


async def delivered(
    cfg: ServerConfig, sessions: async_sessionmaker[AsyncSession], case_no: str, at: datetime = DELIVERED
) -> int:
    """A delivered case with a recording, a still and a photo, and a review attachment."""
    cid, _ = await determined_case(sessions, case_no)
    async with sessions.begin() as session:
        await session.execute(update(Case).where(Case.id == cid).values(delivered_at=at))
        for kind in ("recording", "still", "photo", "review"):
            await add_evidence(cfg, session, cid, case_no, kind)
    return cid


async def media_of(sessions: async_sessionmaker[AsyncSession], cid: int) -> list[str]:
    async with sessions() as session:
        return sorted((await session.scalars(select(Evidence.kind).where(Evidence.case_id == cid))).all())


ALL = ["photo", "recording", "review", "still"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_closed_cases_lose_their_media_once_and_keep_their_record(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, broker: Mosquitto
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    base = make_server_config(tmp_path / "server", broker.port, database_url=url)
    cfg = ServerConfig.model_validate(
        base.model_dump() | {"retention": RetentionSection(media_days=DAYS, check_every_s=0.2).model_dump()}
    )
    server = await start_server(cfg)
    engine = make_engine(cfg.database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions.begin() as session:  # what determined_case's cases need beside the worker's units
            session.add_all(
                [
                    Device(id="car-0001", kind="car", status="active"),
                    User(username="o1", password_hash="x", role="officer", display_name="o1", created_at=DELIVERED),
                    UnitKey(key_id="k1", unit_adcode="530102", public_key="x", created_at=DELIVERED),
                ]
            )
        # Cases the running worker must leave alone today: all closed on DELIVERED (this month).
        expired = await delivered(cfg, sessions, "530102202612010001")
        reviewing = await delivered(cfg, sessions, "530102202612010002")
        claiming = await delivered(cfg, sessions, "530102202612010003")
        concluded = await delivered(cfg, sessions, "530102202612010004")
        working = await delivered(cfg, sessions, "530102202612010005")
        escalated = await delivered(cfg, sessions, "530102202612010006")
        async with sessions.begin() as session:
            determination = await session.scalar(select(Determination.id).where(Determination.case_id == reviewing))
            assert determination is not None
            for cid, status, concluded_at in ((reviewing, "forwarded", None), (concluded, "upheld", DELIVERED)):
                session.add(
                    Review(
                        case_id=cid,
                        determination_id=determination,
                        status=status,
                        request="请求复核",
                        reasons="理由",
                        requested_at=DELIVERED,
                        forward_due=DELIVERED + timedelta(days=2),
                        concluded_at=concluded_at and concluded_at + timedelta(days=100),
                    )
                )
            session.add(
                Insurer(
                    code="PICC",
                    name="人保",
                    endpoint="https://picc.example/hook",
                    contact="x",
                    auth="api_key",
                    policy_prefixes=[],
                    registry_names=[],
                    created_at=DELIVERED,
                )
            )
            await session.flush()
            contested = await session.scalar(select(Determination.id).where(Determination.case_id == claiming))
            party = await session.scalar(select(Party.id).where(Party.case_id == claiming).limit(1))
            assert contested is not None and party is not None
            session.add(
                Claim(
                    case_id=claiming,
                    party_id=party,
                    insurer_code="PICC",
                    determination_id=contested,
                    status="accepted",
                    requested_at=DELIVERED,
                    updated_at=DELIVERED,
                )
            )
            await session.execute(update(Case).where(Case.id == working).values(status="handed_over"))
            await session.execute(
                update(Case)
                .where(Case.id == escalated)
                .values(status="escalated", escalated_at=DELIVERED, delivered_at=None)
            )
            # A masked copy of the expiring still, and the playable copy of its recording.
            still = await session.scalar(select(Evidence).where(Evidence.case_id == expired, Evidence.kind == "still"))
            recording = await session.scalar(
                select(Evidence).where(Evidence.case_id == expired, Evidence.kind == "recording")
            )
            assert still is not None and recording is not None
            copy = cfg.evidence_dir / "masked" / f"{still.id}.jpg"
            copy.parent.mkdir(parents=True)
            copy.write_bytes(b"masked")
            session.add(
                MaskedCopy(
                    evidence_id=still.id,
                    original_sha256=still.sha256,
                    masking="m1",
                    path=f"masked/{still.id}.jpg",
                    sha256=hashlib.sha256(b"masked").hexdigest(),
                    size_bytes=6,
                    media_type="image/jpeg",
                    method={},
                    found={},
                    created_at=DELIVERED,
                )
            )
            playable = cfg.server.data_dir / "playable" / f"{recording.id}-{recording.sha256[:16]}.webm"
            playable.parent.mkdir(parents=True)
            playable.write_bytes(b"webm")

        # One closed long before today: the worker's own scheduled round expires it.
        old = await delivered(cfg, sessions, "530102202001010001", at=now_utc() - timedelta(days=DAYS + 30))
        await wait_for("the worker's retention round", lambda: _only_review_left(sessions, old), within_s=20)

        # Two workers' rounds on the day the first case is due, at once.
        jobs = [RetentionJob(sessions, cfg.retention, cfg.evidence_dir, cfg.server.data_dir / "playable") for _ in "ab"]
        counts = await asyncio.gather(*(job.sweep(DUE) for job in jobs))
        assert sum(counts) == 3 + 3  # the delivered case and the escalated one, each by one of the two
        assert await media_of(sessions, expired) == ["review"] and await media_of(sessions, escalated) == ["review"]
        assert not (cfg.evidence_dir / "530102202612010001" / f"still-{expired}.bin").exists()
        assert (cfg.evidence_dir / "530102202612010001" / f"review-{expired}.bin").exists()
        assert not copy.exists() and not playable.exists()
        for held in (reviewing, claiming, concluded, working):
            assert await media_of(sessions, held) == ALL, held
        for n in (2, 3, 4, 5):
            assert (cfg.evidence_dir / f"53010220261201000{n}" / f"still-{expired + n - 1}.bin").is_file()

        assert [a for a, _ in await events(sessions, escalated)].count("evidence.expired") == 1
        log = await events(sessions, expired)
        expiries = [detail for action, detail in log if action == "evidence.expired"]
        assert len(expiries) == 1
        assert [(f["kind"], len(f["sha256"])) for f in expiries[0]["files"]] == [
            ("recording", 64),
            ("still", 64),
            ("photo", 64),
        ]
        assert expiries[0]["kept_days"] == DAYS and expiries[0]["masked_copies"] == 1
        report = await audit_case(sessions, cfg.evidence_dir, "530102202612010001")
        assert report is not None and report.whole, report and report.problems
        async with sessions() as session:
            assert await session.scalar(select(Determination.id).where(Determination.case_id == expired))

        # The review concluded 100 days after delivery: due 100 days later; the claim, once paid
        # 200 days after delivery, 200 days later.
        assert await jobs[0].sweep(DUE + timedelta(days=99)) == 0
        assert await jobs[0].sweep(DUE + timedelta(days=100)) == 3
        assert await media_of(sessions, concluded) == ["review"]
        async with sessions.begin() as session:  # paid, and never closed by the insurer
            paid = DELIVERED + timedelta(days=200)
            await session.execute(update(Claim).where(Claim.case_id == claiming).values(status="paid", updated_at=paid))
        assert await jobs[0].sweep(DUE + timedelta(days=199)) == 0
        assert await jobs[0].sweep(DUE + timedelta(days=200)) == 3
        assert await media_of(sessions, reviewing) == ALL and await media_of(sessions, working) == ALL
    finally:
        await engine.dispose()
        await server.stop()


async def _only_review_left(sessions: async_sessionmaker[AsyncSession], cid: int) -> bool:
    return await media_of(sessions, cid) == ["review"]
