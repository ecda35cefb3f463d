"""The officer as the determination names them, and the facts drafted for them: an officer added
with a display name and police number (警号) signs as 交通警察：王警官（警号012345）; 建议 proposes
the liabilities, the basis and a draft of the facts from what the dispatcher collected."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cases import handed_over_case, logged_in
from tests.casework_data import decision
from tests.commands import kuaichu, write_server_toml
from tests.conftest import PASSWORD, RunningServer
from tests.pdf_text import text_of
from tests.services import Mosquitto


@pytest.mark.parametrize("case_server", ["sqlite"], indirect=True)
async def test_the_determination_names_the_officer_and_starts_from_drafted_facts(
    case_server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    config = str(write_server_toml(case_server, tmp_path / "server.toml"))
    add = ["server", "add-user", "wang", "--role", "officer", "--unit", "530102", "--config", config]
    bad = kuaichu(*add, "--display-name", "王警官", "--police-no", "12345", stdin=f"{PASSWORD}\n")
    assert bad.returncode == 1 and "six digits" in bad.stderr
    done = kuaichu(*add, "--display-name", "王警官", "--police-no", "012345", stdin=f"{PASSWORD}\n")
    assert done.returncode == 0, done.stderr

    cid, ids = await handed_over_case(case_server, broker)
    officer = await logged_in(case_server, "wang")
    try:
        me = (await officer.http.get("/api/me")).json()
        assert (me["display_name"], me["police_no"]) == ("王警官", "012345")

        proposal = await officer.http.get(f"/api/cases/{cid}/proposal", params={"situation": "rear_end", "at_fault": 0})
        assert proposal.status_code == 200, proposal.text
        drafted = proposal.json()
        assert drafted["liabilities"] == ["全部", "无"] and "第四十三条" in drafted["legal_basis"]
        facts = drafted["facts"]
        for collected in (
            "在五华区翠湖南路与洪化桥交叉口",
            "天气晴",
            "甲方李建华驾驶小型轿车云A5H821",
            "乙方王芳驾驶小型轿车云AD12345",
            "甲方车辆追尾乙方车辆",
            "无人员受伤",
        ):
            assert collected in facts, (collected, facts)
        assert facts.startswith(("20", "19")) and "年" in facts and "时" in facts and facts.endswith("。")
        nobody = await officer.http.get(f"/api/cases/{cid}/proposal", params={"situation": "rear_end", "at_fault": 2})
        assert nobody.status_code == 422

        issued = await officer.http.post(f"/api/cases/{cid}/determinations", json=decision(ids) | {"facts": facts})
        assert issued.status_code == 201, issued.text
        pdf = (await officer.http.get(f"/api/determinations/{issued.json()['id']}/pdf")).content
        text = text_of(pdf)
        assert "交通警察：王警官（警号012345）" in text
        assert "".join(facts.split()) in text and "allunits" not in text
    finally:
        await officer.close()
