"""A review over the running server's API, on SQLite and PostgreSQL: a party files from the portal
with a photo, the other party joins, the officer forwards, the reviewer accepts and orders a new
determination, and the officer issues version 2; who may do what, and who sees nothing; an SMS to
every party at each step; the console's page."""

from __future__ import annotations

from pathlib import Path

import httpx

from server.users import Role
from tests.cases import detail, logged_in
from tests.casework_data import decision
from tests.commands import server_command
from tests.conftest import PASSWORD, RunningServer, add_user
from tests.review_data import JPEG, determined_over_api, party_client, review_sms
from tests.services import Mosquitto

PHONES = ("13700001111", "13700002222")
FORM = {"request": "请求撤销原认定，重新认定责任", "reasons": "对方突然变道，我方已减速避让，不应负全部责任。"}


async def test_a_review_from_the_portal_to_a_new_version(case_server: RunningServer, broker: Mosquitto) -> None:
    server = case_server
    await add_user(server.cfg, "reviewer", Role.REVIEWER, ["530102", "530111"])
    cid, case_no, ids = await determined_over_api(server, broker, PHONES)
    a = await party_client(server, case_no, PHONES[0])
    b = await party_client(server, case_no, PHONES[1])
    officer = await logged_in(server, "officer")
    reviewer = await logged_in(server, "reviewer")
    other = await logged_in(server, "guandu-officer")
    wuhua = await logged_in(server, "wuhua")
    try:
        standing = (await a.get("/api/portal/review")).json()
        assert standing["can_file"] and standing["sentence"].startswith("您可在") and standing["review"] is None

        # No session, an operator's session: neither sees nor files.
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as anonymous:
            assert (await anonymous.get("/api/portal/review")).status_code == 401
            assert (await anonymous.post("/api/portal/review", data=FORM)).status_code == 401
        assert (await officer.http.get("/api/portal/review")).status_code == 401
        assert (await officer.http.post("/api/portal/review", data=FORM)).status_code == 401

        bad = await a.post("/api/portal/review", data=FORM, files=[("files", ("x.gif", b"GIF89a", "image/gif"))])
        assert bad.status_code == 422 and "JPEG" in detail(bad)
        empty = await a.post("/api/portal/review", data={"request": "请求重新认定", "reasons": ""})
        assert empty.status_code == 422 and "理由" in detail(empty)
        filed = await a.post("/api/portal/review", data=FORM, files=[("files", ("现场.jpg", JPEG, "image/jpeg"))])
        assert filed.status_code == 201, filed.text
        assert filed.json()["review"]["status"] == "requested"
        again = await a.post("/api/portal/review", data=FORM)
        assert again.status_code == 409 and "已申请" in detail(again)
        joined = await b.post("/api/portal/review", data={"request": "请求复核", "reasons": "我也认为事实不清。"})
        assert joined.status_code == 201 and joined.json()["review"]["applicants"] == 2

        steps = (await a.get("/api/portal/case")).json()["steps"]
        assert [s["key"] for s in steps if s["key"].startswith("review_")] == ["review_requested", "review_forwarded"]

        assert (await wuhua.http.get("/api/reviews")).status_code == 403
        assert (await other.http.get("/api/reviews")).json() == []
        (row,) = (await officer.http.get("/api/reviews")).json()
        assert row["case_no"] == case_no and row["owner"] == "officer" and row["actions"] == ["forward"]
        assert row["due"] and not row["overdue"]
        full = (await reviewer.http.get(f"/api/reviews/{row['id']}")).json()
        assert [x["position"] for x in full["applicants"]] == ["甲", "乙"]
        (photo,) = full["attachments"]
        fetched = await reviewer.http.get(photo["url"])
        assert fetched.status_code == 200 and fetched.content == JPEG
        assert fetched.headers["x-evidence-sha256"] == photo["sha256"]
        assert (await other.http.get(f"/api/reviews/{row['id']}")).status_code == 404

        base = f"/api/reviews/{row['id']}"
        assert (await reviewer.http.post(f"{base}/forward")).status_code == 403
        assert (await other.http.post(f"{base}/forward")).status_code == 404
        assert (await officer.http.post(f"{base}/forward")).status_code == 200
        accept = {"accept": True, "reason": "材料齐全，予以受理"}
        assert (await officer.http.post(f"{base}/decision", json=accept)).status_code == 403
        assert (await reviewer.http.post(f"{base}/decision", json=accept)).json()["status"] == "accepted"
        order = {"outcome": "redetermine", "text": "责任划分依据不足"}
        concluded = await reviewer.http.post(f"{base}/conclusion", json=order)
        assert concluded.status_code == 200 and concluded.json()["new_version_needed"]
        assert (await b.post("/api/portal/review", data=FORM)).status_code == 409

        again_decided = decision(ids, ("同等", "同等"), correction_reason="复核：责令重新认定")
        v2 = await officer.http.post(f"/api/cases/{cid}/determinations", json=again_decided)
        assert v2.status_code == 201 and v2.json()["version"] == 2
        assert not (await officer.http.get("/api/reviews")).json()[0]["new_version_needed"]

        sms = await review_sms(server, cid)
        for phone in PHONES:
            # requested, joined, forwarded, accepted, concluded
            assert len(sms[phone]) == 5, sms[phone]
        assert (await officer.http.get("/reviews")).status_code == 200
    finally:
        for client in (a, b):
            await client.aclose()
        for console in (officer, reviewer, other, wuhua):
            await console.close()


async def test_another_cases_party_sees_and_files_nothing_of_it(case_server: RunningServer, broker: Mosquitto) -> None:
    server = case_server
    _, case_no, _ = await determined_over_api(server, broker, PHONES)
    a = await party_client(server, case_no, PHONES[0])
    other_no = (await determined_over_api(server, broker, ("13700003333", "13700004444")))[1]
    stranger = await party_client(server, other_no, "13700003333")
    try:
        assert (await a.post("/api/portal/review", data=FORM)).status_code == 201
        theirs = (await stranger.get("/api/portal/review")).json()
        assert theirs["review"] is None and theirs["can_file"]
    finally:
        await a.aclose()
        await stranger.aclose()


async def test_the_command_line_adds_a_reviewer_for_the_units_listed(server: RunningServer, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    args = ("add-user", "zhidui", "--role", "reviewer", "--unit", "530102", "--unit", "530111")
    done = server_command(server, tmp_path / "server.toml", *args, "--password-file", str(secret))
    assert done.returncode == 0, done.stderr
    reviewer = await logged_in(server, "zhidui")
    try:
        me = (await reviewer.http.get("/api/me")).json()
        assert me["role"] == "reviewer" and sorted(me["units"]) == ["530102", "530111"]
        assert (await reviewer.http.get("/api/reviews")).json() == []
    finally:
        await reviewer.close()
