"""A registry that cannot answer: the checks say unknown with the reason, never pass or fail, and
the case is neither refused nor escalated for it; it waits, and checks run again once the registry
is back decide it. The registry is made to fail for real: its tables are renamed away under the
running server (a connector losing its platform raises the same ``RegistryUnavailable``), on
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from server.db.engine import make_engine
from tests.cases import case_id, detail, logged_in, new_case
from tests.casework_data import DRIVER_A, DRIVER_B, FACTS, driver
from tests.conftest import RunningServer
from tests.services import Mosquitto


async def rename(server: RunningServer, tables: dict[str, str]) -> None:
    engine = make_engine(server.cfg.database_url)
    try:
        async with engine.begin() as conn:
            for old, new in tables.items():
                await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    finally:
        await engine.dispose()


async def test_checks_against_a_registry_that_cannot_answer_are_unknown_and_block_nothing_wrongly(
    case_server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    case_no = await new_case(broker)
    wuhua = await logged_in(case_server, "wuhua")
    cid = await case_id(wuhua, case_no)
    base = f"/api/cases/{cid}"
    for party in (DRIVER_A, DRIVER_B):
        assert (await wuhua.http.post(f"{base}/parties", json=driver(party))).status_code == 201
    status = (await wuhua.http.put(f"{base}/facts", json=FACTS)).json()["case"]["status"]

    # Only the insurers' policies are out: the licences and vehicles still answer.
    await rename(case_server, {"registry_policies": "registry_policies_down"})
    work = (await wuhua.http.post(f"{base}/checks")).json()
    for party in work["parties"]:
        checks = party["checks"]
        assert (checks["licence"]["result"], checks["vehicle"]["result"]) == ("pass", "pass")
        assert checks["insurance"]["result"] == "unknown"
        assert checks["insurance"]["reason"].startswith("登记系统暂时无法查询，结果未知")
        assert "(registry unavailable: " in checks["insurance"]["reason"]
        assert checks["insurance"]["record"] is None
    case = work["case"]
    assert case["eligibility"] == "incomplete" and "unknown" in case["eligibility_reason"]
    assert case["status"] == status  # not escalated: nobody found the parties uninsured
    held = await wuhua.http.post(f"{base}/hand-over")
    assert held.status_code == 409 and "unknown" in detail(held)

    # Everything out.
    await rename(
        case_server, {"registry_licences": "registry_licences_down", "registry_vehicles": "registry_vehicles_down"}
    )
    work = (await wuhua.http.post(f"{base}/checks")).json()
    for party in work["parties"]:
        assert {kind: check["result"] for kind, check in party["checks"].items()} == {
            "licence": "unknown",
            "vehicle": "unknown",
            "insurance": "unknown",
        }
    assert work["case"]["eligibility"] == "incomplete" and work["case"]["status"] == status
    events = (await wuhua.http.get(f"{base}/events")).json()["events"]
    last = events[-1]
    assert last["action"] == "checks.run" and {c["result"] for c in last["detail"]["checks"]} == {"unknown"}

    # The registry is back: the same checks decide the case, and it goes to the officers.
    await rename(
        case_server,
        {
            "registry_policies_down": "registry_policies",
            "registry_licences_down": "registry_licences",
            "registry_vehicles_down": "registry_vehicles",
        },
    )
    work = (await wuhua.http.post(f"{base}/checks")).json()
    for party in work["parties"]:
        assert {check["result"] for check in party["checks"].values()} == {"pass"}
    assert work["case"]["eligibility"] == "eligible"
    assert (await wuhua.http.post(f"{base}/hand-over")).status_code == 200
    await wuhua.close()
