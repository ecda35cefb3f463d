"""The parties' side over a real worker, broker and SMS provider: the dispatcher saving a party sends
their link; the link alone shows nothing personal; a code opens that party's view of that case only,
with the other party masked; staff and party sessions open nothing of each other's."""

from __future__ import annotations

import re

import httpx

from tests.cases import handed_over_case, logged_in
from tests.casework_data import DRIVER_A, DRIVER_B, decision
from tests.conftest import RunningServer
from tests.parties import CODE, PHONE_A, PHONE_B, case_with_parties, link_token, logged_in_party, stack, texts_to
from tests.services import Mosquitto
from tests.sms_provider import Provider

__all__ = ["stack"]  # the fixture


async def test_a_saved_party_gets_a_link_that_shows_nothing_personal_until_the_code(
    stack: tuple[RunningServer, Provider, Mosquitto],
) -> None:
    server, provider, broker = stack
    case_no, _cid = await case_with_parties(server, broker)
    (link_sms,) = await texts_to(provider, PHONE_A, "/p/")
    assert case_no in link_sms
    token = link_token(link_sms)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as stranger:
        page = await stranger.get(f"/p/{token}")
        assert page.status_code == 200 and "验证码" in page.text
        link = (await stranger.get(f"/api/portal/link/{token}")).json()
        assert link == {"case_no": case_no, "phone_hint": "138****8000"}
        for path in ("/api/portal/case", "/api/portal/determinations/1/pdf", "/api/portal/determinations/1"):
            refused = await stranger.get(path)
            assert refused.status_code == 401, path
            assert DRIVER_A["name"] not in refused.text and PHONE_A not in refused.text
        assert (await stranger.get("/api/portal/link/not-a-token")).status_code == 404


async def test_a_party_sees_their_own_data_in_full_and_the_others_masked(
    stack: tuple[RunningServer, Provider, Mosquitto],
) -> None:
    server, provider, broker = stack
    case_no, _cid = await case_with_parties(server, broker)
    party, _token = await logged_in_party(server, provider, PHONE_B)
    view = (await party.get("/api/portal/case")).json()
    assert view["case_no"] == case_no
    mine, other = (
        next(p for p in view["parties"] if p["mine"]),
        next(p for p in view["parties"] if not p["mine"]),
    )
    assert mine["name"] == DRIVER_B["name"] and mine["phone"] == PHONE_B
    assert mine["id_number"] == DRIVER_B["id_number"]
    assert other["name"] == DRIVER_A["name"][0] + "*" * (len(DRIVER_A["name"]) - 1)
    assert other["phone"] == "138****8000"
    assert other["id_number"] == DRIVER_A["id_number"][:4] + "*" * 10 + DRIVER_A["id_number"][-4:]
    assert other["plate"] == DRIVER_A["plate"]
    assert DRIVER_A["id_number"] not in (await party.get("/api/portal/case")).text
    steps = {s["key"]: s["done"] for s in view["steps"]}
    assert steps["reported"] and not steps["determined"]
    await party.aclose()


async def test_sessions_do_not_cross_between_cases_parties_and_staff(
    stack: tuple[RunningServer, Provider, Mosquitto],
) -> None:
    server, provider, broker = stack
    await case_with_parties(server, broker)
    party, _ = await logged_in_party(server, provider, PHONE_A)
    # A party's cookie opens nothing of the console's.
    assert (await party.get("/api/cases")).status_code == 401
    assert (await party.get("/api/me")).status_code == 401
    # An operator's cookie opens nothing of the parties'.
    wuhua = await logged_in(server, "wuhua")
    assert (await wuhua.http.get("/api/portal/case")).status_code == 401
    await wuhua.close()

    # Another case, determined: the first case's session sees neither it nor its document.
    other_id, other_parties = await handed_over_case(server, broker)
    officer = await logged_in(server, "officer")
    issued = await officer.http.post(f"/api/cases/{other_id}/determinations", json=decision(other_parties))
    assert issued.status_code == 201, issued.text
    await officer.close()
    document = issued.json()["id"]
    view = (await party.get("/api/portal/case")).json()
    assert view["determinations"] == []
    for path in (f"/api/portal/determinations/{document}/pdf", f"/api/portal/determinations/{document}"):
        response = await party.get(path)
        assert response.status_code == 404, path
        assert "没有这份认定书" in response.json()["detail"]
    await party.aclose()


async def test_six_wrong_codes_get_nothing(stack: tuple[RunningServer, Provider, Mosquitto]) -> None:
    server, provider, broker = stack
    await case_with_parties(server, broker)
    (link_sms,) = await texts_to(provider, PHONE_A, "/p/")
    token = link_token(link_sms)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as guesser:
        assert (await guesser.post("/api/portal/code", json={"token": token})).status_code == 202
        (code_sms,) = await texts_to(provider, PHONE_A, CODE)
        code = re.search(CODE, code_sms)
        assert code
        wrong = f"{(int(code.group(1)) + 1) % 1_000_000:06d}"
        for _ in range(5):
            response = await guesser.post("/api/portal/login", json={"token": token, "code": wrong})
            assert response.status_code == 401
            assert "验证码不正确" in response.json()["detail"]
        sixth = await guesser.post("/api/portal/login", json={"token": token, "code": code.group(1)})
        assert sixth.status_code == 401
        assert "kc_party" not in sixth.cookies
        assert (await guesser.get("/api/portal/case")).status_code == 401
        # Asking again at once is throttled, in words.
        again = await guesser.post("/api/portal/code", json={"token": token})
        assert again.status_code == 429 and "秒后" in again.json()["detail"]
