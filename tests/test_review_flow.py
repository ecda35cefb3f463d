"""A review (复核) from the party's request to its conclusion, on SQLite and PostgreSQL, with a clock
the test moves: the three days from delivery to that party, one review per accident shared by the
parties who ask together, the stages' deadlines and overdue flags, SMS to every party at each step,
the case log, and the evidence files."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from server.casework.events import chain_errors
from server.db.engine import make_engine, make_sessionmaker, upgrade_schema
from server.db.models import CaseEvent, Evidence
from server.errors import Conflict, Invalid, NotFound
from server.portal.attachments import recognise
from tests.review_data import DELIVERED, JPEG, PDF, PHONES, Rig, beijing, determined_case, events, review_texts, visitor


@pytest.fixture(params=["sqlite", "postgresql"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'kc.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    await upgrade_schema(url)
    engine = make_engine(url)
    yield Rig(make_sessionmaker(engine), tmp_path / "evidence")
    await engine.dispose()


async def test_filed_on_day_3_is_taken_and_on_day_4_refused_in_writing(rig: Rig) -> None:
    on_time, (a1, _) = await determined_case(rig.sessions, "530102202612010001")
    late, (a2, _) = await determined_case(rig.sessions, "530102202612010002")

    rig.clock.now = beijing(4, 23, 30)  # Friday, the third day after Tuesday's delivery
    standing = await rig.reviews.standing(visitor(on_time, a1))
    assert standing["can_file"] and standing["sentence"] == "您可在2026年12月4日24时前申请复核"
    photo = recognise("现场.jpg", JPEG, 1_000_000)
    done = await rig.reviews.file(visitor(on_time, a1), "请求重新认定", "对方突然变道，我方无责。", [photo])
    assert done["review"]["status"] == "requested" and done["review"]["mine"] and not done["can_file"]
    assert rig.woken and rig.changed

    rig.clock.now = beijing(5, 0, 30)  # Saturday: the fourth day
    refused = await rig.reviews.standing(visitor(late, a2))
    assert not refused["can_file"]
    assert "期限已过" in refused["reason"] and "2026年12月4日24时" in refused["reason"]
    with pytest.raises(Conflict, match="期限已过"):
        await rig.reviews.file(visitor(late, a2), "请求重新认定", "对方突然变道，我方无责。", [])
    with pytest.raises(Conflict, match="期限已过"):
        await rig.reviews.file(visitor(late, a2), "请求重新认定", "对方突然变道，我方无责。", [])
    texts = await review_texts(rig.sessions, late, PHONES[0])
    assert len(texts) == 1 and "不予受理" in texts[0] and "2026年12月4日24时" in texts[0]
    assert await review_texts(rig.sessions, late, PHONES[1]) == []
    logged = [(action, d) for action, d in await events(rig.sessions, late) if action.startswith("review.")]
    assert [a for a, _ in logged] == ["review.refused_late"] and logged[0][1]["party"] == a2
    async with rig.sessions() as session:
        assert not (await session.scalars(select(Evidence).where(Evidence.case_id == late))).all()


async def test_the_evidence_is_hashed_and_kept_as_the_partys(rig: Rig) -> None:
    case_id, (a, _) = await determined_case(rig.sessions, "530102202612010003")
    rig.clock.now = beijing(2, 10)
    files = [recognise("a.jpg", JPEG, 1000), recognise("b.pdf", PDF, 1000), recognise("again.jpg", JPEG, 1000)]
    await rig.reviews.file(visitor(case_id, a), "请求重新认定", "对方突然变道，我方无责。", files)
    async with rig.sessions() as session:
        rows = (await session.scalars(select(Evidence).where(Evidence.case_id == case_id))).all()
    assert len(rows) == 2 and {r.kind for r in rows} == {"review"} and {r.party_id for r in rows} == {a}
    for row in rows:
        data = (rig.folder / row.path).read_bytes()
        assert row.sha256 == hashlib.sha256(data).hexdigest() and row.size_bytes == len(data)
        assert row.meta is not None and row.meta["name"] in ("a.jpg", "b.pdf")
    for bad, name in ((b"GIF89a...", "x.gif"), (b"", "empty.jpg"), (JPEG, "big.jpg")):
        with pytest.raises(Invalid):
            recognise(name, bad, 20)


async def test_one_review_per_accident_shared_by_those_who_ask_together(rig: Rig) -> None:
    shared, (a, b) = await determined_case(rig.sessions, "530102202612010004")
    rig.clock.now = beijing(2, 10)
    await rig.reviews.file(visitor(shared, a), "请求重新认定", "对方突然变道，我方无责。", [])
    with pytest.raises(Conflict, match="已申请"):
        await rig.reviews.file(visitor(shared, a), "再次申请", "还是不服这个认定。", [])
    joined = await rig.reviews.file(visitor(shared, b, PHONES[1]), "请求维持", "我也要求复核责任比例。", [])
    assert joined["review"]["applicants"] == 2 and joined["review"]["mine"]
    steps = await rig.reviews.steps_for(visitor(shared, a))
    assert [s.key for s in steps] == ["review_requested", "review_forwarded"] and steps[1].at is None
    logged = [a for a, _ in await events(rig.sessions, shared) if a.startswith("review.")]
    assert logged == ["review.requested", "review.joined"]

    alone, (c, d) = await determined_case(rig.sessions, "530102202612010005")
    await rig.reviews.file(visitor(alone, c), "请求重新认定", "对方突然变道，我方无责。", [])
    (listed,) = [r for r in await rig.desk.listing(rig.officer) if r["case_id"] == alone]
    await rig.desk.forward(listed["id"], rig.officer)
    with pytest.raises(Conflict, match="只复核一次"):
        await rig.reviews.file(visitor(alone, d, PHONES[1]), "请求重新认定", "对方突然变道，我方无责。", [])
    # A phone that may report but is no party files nothing and sees nothing.
    nobody = visitor(alone, c)
    with pytest.raises(NotFound):
        await rig.reviews.standing(type(nobody)(nobody.phone, None, None, nobody.expires_at))


async def test_a_party_reached_only_in_the_portal_counts_from_their_first_look(rig: Rig) -> None:
    case_id, (a, b) = await determined_case(rig.sessions, "530102202612010006", reached=(None, DELIVERED))
    rig.clock.now = beijing(6, 20)  # Sunday: b's three days are over, a has not seen it yet
    assert (await rig.reviews.standing(visitor(case_id, a)))["can_file"]
    first = next(d for act, d in await events(rig.sessions, case_id) if act == "delivery.reached")
    await rig.reviews.viewed(visitor(case_id, a), first["determination"])
    await rig.reviews.viewed(visitor(case_id, a), first["determination"])
    reached = [d for act, d in await events(rig.sessions, case_id) if act == "delivery.reached"]
    assert [d["party"] for d in reached] == [b, a] and reached[1]["via"] == "portal"
    standing = await rig.reviews.standing(visitor(case_id, a))
    # Seen on Sunday 6 December: Wednesday the 9th is the third day.
    assert standing["deadline_words"] == "2026年12月9日24时" and standing["can_file"]
    assert not (await rig.reviews.standing(visitor(case_id, b, PHONES[1])))["can_file"]


async def test_each_stage_has_its_deadline_its_owner_and_an_overdue_flag(rig: Rig) -> None:
    case_id, (a, _) = await determined_case(rig.sessions, "530102202612010007")
    rig.clock.now = beijing(4, 23)  # Friday night
    await rig.reviews.file(visitor(case_id, a), "请求重新认定", "对方突然变道，我方无责。", [])
    (row,) = await rig.desk.listing(rig.officer)
    # Two days from Friday end on Sunday, a rest day: Monday 7 December.
    assert row["owner"] == "officer" and row["due_words"] == "2026年12月7日24时" and row["mine"]
    assert row["actions"] == ["forward"] and not row["overdue"]
    assert await rig.desk.listing(rig.other_officer) == []
    with pytest.raises(NotFound):
        await rig.desk.forward(row["id"], rig.other_officer)
    assert (await rig.desk.listing(rig.reviewer))[0]["actions"] == []
    rig.clock.now = beijing(8, 0, 1)
    assert (await rig.desk.listing(rig.officer))[0]["overdue"]

    forwarded = await rig.desk.forward(row["id"], rig.officer)
    assert forwarded["status"] == "forwarded" and forwarded["owner"] == "reviewer"
    assert forwarded["due_words"] == "2026年12月14日24时" and not forwarded["overdue"]  # Tuesday + 5 = Sunday -> Monday
    with pytest.raises(Conflict):
        await rig.desk.forward(row["id"], rig.officer)
    assert (await rig.desk.listing(rig.reviewer))[0]["actions"] == ["accept", "decline"]
    rig.clock.now = beijing(15, 9)
    assert (await rig.desk.listing(rig.reviewer))[0]["overdue"]

    accepted = await rig.desk.decide(row["id"], rig.reviewer, True, "材料齐全，予以受理")
    assert accepted["status"] == "accepted" and accepted["due_words"] == "2027年1月14日24时"
    rig.clock.now = beijing(20, 9)
    upheld = await rig.desk.conclude(row["id"], rig.reviewer, True, "事实清楚，证据确实，维持原认定")
    assert upheld["status"] == "upheld" and upheld["due"] is None and not upheld["overdue"]
    assert upheld["applicants"][0]["request"] == "请求重新认定"

    steps = await rig.reviews.steps_for(visitor(case_id, a))
    assert [s.key for s in steps] == ["review_requested", "review_forwarded", "review_accepted", "review_concluded"]
    assert all(s.at is not None for s in steps) and "维持原认定" in steps[-1].title
    for phone in PHONES:
        texts = await review_texts(rig.sessions, case_id, phone)
        assert len(texts) == 4, texts
        assert "已申请复核" in texts[0] and "已转交" in texts[1] and "已受理" in texts[2] and "维持原认定" in texts[3]
        assert all(len(t) <= 300 for t in texts)
    logged = [a for a, _ in await events(rig.sessions, case_id) if a.startswith("review.")]
    assert logged == ["review.requested", "review.forwarded", "review.accepted", "review.concluded"]
    async with rig.sessions() as session:
        chain = await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq))
        assert chain_errors(list(chain.all())) == []


async def test_not_accepted_ends_it_and_redetermine_asks_the_officer_for_a_new_version(rig: Rig) -> None:
    declined, (a, _) = await determined_case(rig.sessions, "530102202612010008")
    rig.clock.now = beijing(2, 10)
    await rig.reviews.file(visitor(declined, a), "请求重新认定", "对方突然变道，我方无责。", [])
    (row,) = await rig.desk.listing(rig.officer)
    await rig.desk.forward(row["id"], rig.officer)
    done = await rig.desk.decide(row["id"], rig.reviewer, False, "申请超出复核范围")
    assert done["status"] == "not_accepted" and done["actions"] == [] and done["due"] is None
    steps = await rig.reviews.steps_for(visitor(declined, a))
    assert steps[-1].key == "review_not_accepted" and "申请超出复核范围" in steps[-1].note
    with pytest.raises(Conflict):
        await rig.desk.conclude(row["id"], rig.reviewer, True, "维持")

    ordered, (c, _) = await determined_case(rig.sessions, "530102202612010009")
    await rig.reviews.file(visitor(ordered, c), "请求重新认定", "对方突然变道，我方无责。", [])
    review_id = next(r["id"] for r in await rig.desk.listing(rig.officer) if r["case_id"] == ordered)
    await rig.desk.forward(review_id, rig.officer)
    await rig.desk.decide(review_id, rig.reviewer, True, "予以受理")
    out = await rig.desk.conclude(review_id, rig.reviewer, False, "责任划分依据不足")
    assert out["status"] == "redetermine" and out["new_version_needed"]
    mine = next(r for r in await rig.desk.listing(rig.officer) if r["case_id"] == ordered)
    assert mine["mine"] and mine["new_version_needed"]
    texts = await review_texts(rig.sessions, ordered, PHONES[1])
    assert "重新作出认定" in texts[-1]
