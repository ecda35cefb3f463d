"""The console's error contract over the running worker: every refusal a plain Chinese sentence
(``detail``) with a stable ``code``, and for a form the ``field`` it is about and every problem in
``errors``; never a pattern, a pydantic phrase or a field's key in the words. The registry's
identity check (a party using someone else's papers) over the same API."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.cases import case_id, logged_in, new_case
from tests.casework_data import DRIVER_A, DRIVER_B, FACTS, driver
from tests.conftest import RunningServer
from tests.services import Mosquitto

RAW = re.compile(r"String should|Input should|Field required|Value error|\^|\\d|\[0-9|_no\b|id_number|phone")


def refusal(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert response.status_code == 422, body
    for words in [body["detail"], *(e["message"] for e in body.get("errors", []))]:
        assert re.search(r"[\u4e00-\u9fff]", words.split(" (")[0]), words  # Chinese first
        assert not RAW.search(words.split(" (")[0]), words
    return body


@pytest.mark.parametrize("case_server", ["sqlite"], indirect=True)
async def test_the_party_form_says_what_to_do_for_each_field(case_server: RunningServer, broker: Mosquitto) -> None:
    wuhua = await logged_in(case_server, "wuhua")
    base = f"/api/cases/{await case_id(wuhua, await new_case(broker))}"
    try:

        async def party(**changes: Any) -> dict[str, Any]:
            return refusal(await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A, **changes)))

        phone = await party(phone="1388800")
        assert phone["code"] == "invalid_phone" and phone["field"] == "phone"
        assert phone["detail"].startswith("手机号应为11位数字，以1开头")
        assert phone["errors"] == [{"field": "phone", "code": "invalid_phone", "message": phone["detail"]}]

        check = await party(id_number="530402196505056621")
        assert (check["code"], check["field"]) == ("id_check_digit_mismatch", "id_number")
        assert check["detail"].startswith("身份证号校验位不符")
        assert (await party(id_number="5304021965"))["code"] == "invalid_id_number"
        assert (await party(id_number="530402196513056620"))["code"] == "invalid_id_birth_date"
        assert (await party(licence_no="abc"))["code"] == "invalid_licence_no"
        plate = await party(plate="云A58")
        assert (plate["code"], plate["field"]) == ("invalid_plate", "plate") and "云A5H821" in plate["detail"]
        assert (await party(vehicle_type="Z99"))["code"] == "unknown_vehicle_type"
        assert (await party(policy_no="保单"))["code"] == "invalid_policy_no"
        name = await party(name="")
        assert (name["code"], name["field"], name["detail"]) == ("required", "name", "请填写姓名 (this is required)")
        long_name = await party(name="张" * 41)
        assert long_name["code"] == "too_long" and long_name["detail"].startswith("姓名最多40个字")
        assert (await party(role="passenger"))["code"] == "not_a_choice"

        # A driver's missing vehicle is one rule about three fields: each is named.
        bare = await party(licence_no=None, plate=None, vehicle_type=None)
        assert bare["code"] == "driver_needs_vehicle"
        assert bare["detail"].startswith("机动车驾驶人须填写驾驶证号、车牌号、车辆类型")
        assert [e["field"] for e in bare["errors"]] == ["licence_no", "plate", "vehicle_type"]

        # Several problems at once: all are listed, the first is the detail.
        both = await party(phone="12", id_number="1")
        assert {e["field"] for e in both["errors"]} == {"phone", "id_number"}
        assert both["detail"] == both["errors"][0]["message"]
        assert (await wuhua.http.get(f"{base}/work")).json()["parties"] == []

        facts = refusal(await wuhua.http.put(f"{base}/facts", json=FACTS | {"place": "五", "injury": "bad"}))
        assert {(e["field"], e["code"]) for e in facts["errors"]} == {
            ("place", "too_short"),
            ("injury", "not_a_choice"),
        }
        missing = refusal(
            await wuhua.http.put(f"{base}/facts", json={k: v for k, v in FACTS.items() if k != "weather"})
        )
        assert (missing["field"], missing["code"], missing["detail"]) == (
            "weather",
            "required",
            "请填写天气 (this is required)",
        )

        span = {"party_id": 1, "start": "2026-05-03T06:00:10Z", "end": "2026-05-03T06:00:00Z", "summary": "追尾"}
        backwards = refusal(await wuhua.http.post(f"{base}/statements", json=span))
        assert (backwards["code"], backwards["field"]) == ("statement_span_order", "end")
        naive = refusal(await wuhua.http.post(f"{base}/statements", json=span | {"start": "2026-05-03 06:00"}))
        assert (naive["code"], naive["field"]) == ("bad_time", "start")

        junk = await wuhua.http.post(
            f"{base}/parties", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert refusal(junk)["code"] == "bad_request"
        extra = refusal(await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A) | {"age": 3}))
        assert extra["code"] == "unexpected"
    finally:
        await wuhua.close()


@pytest.mark.parametrize("case_server", ["sqlite"], indirect=True)
async def test_the_officers_login_and_domain_refusals_carry_codes(
    case_server: RunningServer, broker: Mosquitto
) -> None:
    officer = await logged_in(case_server, "officer")
    try:
        cid = await case_id(officer, await new_case(broker))
        short = {
            "situation": "rear_end",
            "liabilities": [{"party_id": 1, "liability": "全部"}],
            "facts": "追尾",
            "legal_basis": "《道路交通安全法》第四十三条",
        }
        facts = refusal(await officer.http.post(f"/api/cases/{cid}/determinations", json=short))
        assert (facts["code"], facts["field"]) == ("facts_too_short", "facts")
        assert facts["detail"].startswith("事故事实至少写10个字")
        share = refusal(
            await officer.http.post(
                f"/api/cases/{cid}/determinations",
                json=short
                | {
                    "facts": "甲车追尾乙车，双方车辆受损，无人受伤。",
                    "liabilities": [{"party_id": 1, "liability": "大部分"}],
                },
            )
        )
        assert (share["field"], share["code"]) == ("liabilities.0.liability", "not_a_choice")
        assert share["detail"].startswith("请从列表中选择责任")

        login = refusal(await httpx.AsyncClient(base_url=case_server.url).post("/api/login", json={"username": ""}))
        assert {e["field"] for e in login["errors"]} == {"username", "password"}

        absent = await officer.http.get("/api/cases/999999")
        assert absent.status_code == 404
        assert absent.json() == {"detail": "案件不存在，请刷新队列 (no such case)", "code": "no_such_case"}
        no_route = await officer.http.get("/api/nothing-here")
        assert no_route.status_code == 404 and no_route.json()["code"] == "not_found"
        assert no_route.json()["detail"].startswith("没有这个页面或接口")
    finally:
        await officer.close()


@pytest.mark.parametrize("case_server", ["sqlite"], indirect=True)
async def test_a_party_using_someone_elses_papers_fails_the_licence_check(
    case_server: RunningServer, broker: Mosquitto
) -> None:
    """张三 gives 李建华's ID number and licence: the registry has both as 李建华's."""
    wuhua = await logged_in(case_server, "wuhua")
    base = f"/api/cases/{await case_id(wuhua, await new_case(broker))}"
    try:
        assert (await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A, name="张三"))).status_code == 201
        assert (await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_B))).status_code == 201
        await wuhua.http.put(f"{base}/facts", json=FACTS)
        work = (await wuhua.http.post(f"{base}/checks")).json()
        borrowed, own = (p["checks"]["licence"] for p in work["parties"])
        assert borrowed["result"] == "fail" and borrowed["reason"].startswith("姓名与身份证、驾驶证登记的持有人不符")
        assert own["result"] == "pass" and own["reason"].startswith("驾驶证有效至")
        assert work["case"]["eligibility"] == "ineligible"
    finally:
        await wuhua.close()
