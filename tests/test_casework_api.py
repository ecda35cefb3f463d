"""The dispatcher's case work over the real HTTP API, on SQLite and PostgreSQL: parties, registry
checks, facts, eligibility, hand-over to the officers and escalation, with the role checks."""

from __future__ import annotations

from tests.cases import case_id, detail, logged_in, new_case
from tests.casework_data import DRIVER_A, DRIVER_B, DRIVER_C, FACTS, driver
from tests.conftest import RunningServer
from tests.services import Mosquitto


async def test_a_case_from_parties_to_the_officers_queue(case_server: RunningServer, broker: Mosquitto) -> None:
    case_no = await new_case(broker)
    wuhua = await logged_in(case_server, "wuhua")
    cid = await case_id(wuhua, case_no)
    base = f"/api/cases/{cid}"

    bad_id = await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A, id_number="530402196505056621"))
    assert bad_id.status_code == 422 and "check character" in detail(bad_id)
    bad_plate = await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A, plate="云A58"))
    assert bad_plate.status_code == 422 and "not a valid plate" in detail(bad_plate)
    assert (await wuhua.http.get(f"{base}/work")).json()["parties"] == []  # nothing half-stored

    # 甲 is the reporting car: its plate comes from the device's read, confirmed as read.
    a = await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A, plate_read_source="report"))
    assert a.status_code == 201
    assert a.json()["plate_read"] == "云A5H821" and not a.json()["plate_corrected"]
    b = await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_B, phone="13988000002"))
    assert b.json()["label"] == "乙"

    # Roles: an officer reads but does not edit; another district's dispatcher sees nothing.
    officer = await logged_in(case_server, "officer")
    assert (await officer.http.post(f"{base}/parties", json=driver(DRIVER_C))).status_code == 403
    assert (await officer.http.get(f"{base}/work")).status_code == 200
    guandu = await logged_in(case_server, "guandu")
    assert (await guandu.http.get(f"{base}/work")).status_code == 404
    assert (await guandu.http.post(f"{base}/checks")).status_code == 404

    early = await wuhua.http.post(f"{base}/hand-over")
    assert early.status_code == 409 and "facts of the accident not entered" in detail(early)
    work = (await wuhua.http.put(f"{base}/facts", json=FACTS)).json()
    assert (
        work["case"]["eligibility"] == "incomplete" and "甲: licence not checked" in work["case"]["eligibility_reason"]
    )

    work = (await wuhua.http.post(f"{base}/checks")).json()
    for party in work["parties"]:
        assert {k: c["result"] for k, c in party["checks"].items()} == {
            "licence": "pass",
            "vehicle": "pass",
            "insurance": "pass",
        }
    # The record is kept as seen, with the holder's name and ID number masked.
    seen = work["parties"][0]["checks"]["licence"]["record"]
    assert seen["classes"] == "C1" and seen["id_number"] == "530402********6620" and seen["name"] == "李**"
    assert work["case"]["eligibility"] == "eligible"

    # A correction of 乙's plate after the checks makes its checks stale: not eligible until re-run.
    corrected = driver(DRIVER_B, plate="云AD12346")
    assert (await wuhua.http.put(f"{base}/parties/{b.json()['id']}", json=corrected)).status_code == 200
    work = (await wuhua.http.get(f"{base}/work")).json()
    assert work["case"]["eligibility"] == "incomplete" and work["parties"][1]["checks"]["vehicle"] is None
    work = (await wuhua.http.post(f"{base}/checks")).json()
    assert work["parties"][1]["checks"]["vehicle"]["result"] == "fail"  # no such registration
    assert "no vehicle registered under 云AD12346" in work["parties"][1]["checks"]["vehicle"]["reason"]
    await wuhua.http.put(f"{base}/parties/{b.json()['id']}", json=driver(DRIVER_B))
    work = (await wuhua.http.post(f"{base}/checks")).json()
    assert work["case"]["eligibility"] == "eligible"

    assert (await officer.http.post(f"{base}/hand-over")).status_code == 403
    await officer.connect_live()
    handed = await wuhua.http.post(f"{base}/hand-over")
    assert handed.status_code == 200 and handed.json()["case"]["status"] == "handed_over"
    update = await officer.next_event()  # the officers' consoles hear of it at once
    assert update["type"] == "case.update" and update["case"]["case_no"] == case_no
    assert update["case"]["status"] == "handed_over"
    queue = (await officer.http.get("/api/cases", params={"status": "handed_over"})).json()
    assert [c["case_no"] for c in queue] == [case_no]

    late = await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_C))
    assert late.status_code == 409 and "handed over" in detail(late)
    for console in (wuhua, officer, guandu):
        await console.close()


async def test_an_uninsured_vehicle_is_escalated_with_everything_kept(
    case_server: RunningServer, broker: Mosquitto
) -> None:
    case_no = await new_case(broker)
    wuhua = await logged_in(case_server, "wuhua")
    base = f"/api/cases/{await case_id(wuhua, case_no)}"
    await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_A, plate="云A5H821", plate_read_source="report"))
    await wuhua.http.post(f"{base}/parties", json=driver(DRIVER_C))
    await wuhua.http.put(f"{base}/facts", json=FACTS)
    work = (await wuhua.http.post(f"{base}/checks")).json()
    insurance = work["parties"][1]["checks"]["insurance"]
    assert insurance["result"] == "fail" and "expired at the accident time" in insurance["reason"]
    assert work["case"]["eligibility"] == "ineligible"
    assert "乙: no compulsory insurance" in work["case"]["eligibility_reason"]
    refused = await wuhua.http.post(f"{base}/hand-over")
    assert refused.status_code == 409 and "no compulsory insurance" in detail(refused)

    # It cannot be undone: never without a reason, chosen from the exclusions or written.
    for empty in ({}, {"reason": " "}, {"reason_code": "other"}):
        refused = await wuhua.http.post(f"{base}/escalate", json=empty)
        assert refused.status_code == 422 and refused.json()["code"] == "escalation_reason_required"
        assert "原因" in detail(refused)
    assert (await wuhua.http.get(f"{base}/work")).json()["case"]["status"] == "new"
    chosen = {"reason_code": "no_insurance", "reason": "乙车交强险已过期"}
    work = (await wuhua.http.post(f"{base}/escalate", json=chosen)).json()
    assert work["case"]["status"] == "escalated"
    assert work["case"]["escalation_reason"] == "车辆未投保交强险：乙车交强险已过期"
    assert len(work["parties"]) == 2 and work["parties"][1]["checks"]["insurance"]["result"] == "fail"
    again = await wuhua.http.post(f"{base}/escalate", json=chosen)
    assert again.status_code == 409
    await wuhua.close()


async def test_a_corrected_plate_keeps_the_read(case_server: RunningServer, broker: Mosquitto) -> None:
    case_no = await new_case(broker)
    wuhua = await logged_in(case_server, "wuhua")
    base = f"/api/cases/{await case_id(wuhua, case_no)}"
    party = await wuhua.http.post(
        f"{base}/parties", json=driver(DRIVER_B, plate="云 ad·12345", plate_read_source="report")
    )
    assert party.status_code == 201
    assert party.json()["plate"] == "云AD12345" and party.json()["plate_read"] == "云A5H821"
    assert party.json()["plate_corrected"]
    bad_facts = await wuhua.http.put(f"{base}/facts", json=FACTS | {"injury": "broken"})
    assert bad_facts.status_code == 422
    await wuhua.close()
