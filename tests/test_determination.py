"""The officer's determination over the real API, on SQLite and PostgreSQL: role checks, liability
consistency, the signed PDF (embedded CJK font, extractable text, QR link), verification by the
public API and ``kuaichu verify``, tampering, and corrections as new versions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from server.casework.document import DocumentData, PartyLine, render
from server.casework.font import DocumentFont
from tests import pki
from tests.cases import detail, handed_over_case, logged_in
from tests.casework_data import decision
from tests.conftest import RunningServer
from tests.pdf_text import text_of
from tests.services import Mosquitto
from tests.wire import Console


def kuaichu_verify(server: RunningServer, folder: Path, pdf: bytes) -> subprocess.CompletedProcess[str]:
    cfg = server.cfg
    config, path = folder / "server.toml", folder / "doc.pdf"
    config.write_text(
        f'[server]\ndata_dir = "{cfg.server.data_dir}"\n\n[broker]\nhost = "127.0.0.1"\nport = {cfg.broker.port}\n\n'
        + pki.tls_table(pki.current().server_tls())
        + f'[database]\nurl = "{cfg.database_url}"\nmigrate = false\n'
    )
    path.write_bytes(pdf)
    return subprocess.run(
        [sys.executable, "-m", "kuaichu.cli", "verify", str(path), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


async def test_an_officer_issues_a_signed_determination(
    case_server: RunningServer, broker: Mosquitto, tmp_path: Path
) -> None:
    server = case_server
    cid, ids = await handed_over_case(server, broker)
    base = f"/api/cases/{cid}"
    officer = await logged_in(server, "officer")
    wuhua = await logged_in(server, "wuhua")
    other = await logged_in(server, "guandu-officer")

    assert (await wuhua.http.post(f"{base}/determinations", json=decision(ids))).status_code == 403
    assert (await other.http.post(f"{base}/determinations", json=decision(ids))).status_code == 404
    assert (await other.http.get(f"{base}/work")).status_code == 404
    bad = await officer.http.post(f"{base}/determinations", json=decision(ids, ("主要", "无")))
    assert bad.status_code == 422 and "inconsistent liabilities 主要/无" in detail(bad)
    one = decision(ids) | {"liabilities": [{"party_id": ids[0], "liability": "全部"}]}
    bad = await officer.http.post(f"{base}/determinations", json=one)
    assert bad.status_code == 422 and "one liability for each party" in detail(bad)
    assert (await officer.http.get(f"{base}/determinations")).json() == []

    issued = await officer.http.post(f"{base}/determinations", json=decision(ids))
    assert issued.status_code == 201, issued.text
    v1 = issued.json()
    assert v1["version"] == 1 and v1["current"]
    pdf = (await officer.http.get(f"/api/determinations/{v1['id']}/pdf")).content
    assert pdf.startswith(b"%PDF")
    text = text_of(pdf)
    for expected in (
        "道路交通事故认定书（简易程序）",
        "五华区",
        "李建华",
        "云A5H821",
        "当事人甲李建华负全部责任",
        "当事人乙王芳负无责任",
        "第四十三条",
        "送达之日起三日内",
        "中国人民财产保险股份有限公司昆明市分公司",
        f"/verify/{v1['token']}",
    ):
        assert expected in text, expected
    assert b"/FontFile" in pdf  # the font is embedded

    # Public verification: genuine; any change to the document shows.
    public = Console(server.url)
    check = (await public.http.post("/api/verify", content=pdf)).json()
    assert check == {
        "genuine": True,
        "reason": "genuine and unaltered",
        "case_no": v1["case_no"],
        "version": 1,
        "current": True,
    }
    page = (await public.http.get(f"/api/verify/{v1['token']}")).json()
    assert page["sha256"] == v1["sha256"] and "李建华" not in str(page)
    i = pdf.find(b"/Author")
    tampered = pdf[: i + 10] + bytes([pdf[i + 10] ^ 1]) + pdf[i + 11 :]
    result = (await public.http.post("/api/verify", content=tampered)).json()
    assert result["genuine"] is False and "altered" in result["reason"]
    junk = (await public.http.post("/api/verify", content=b"%PDF-1.4 not ours")).json()
    assert junk["genuine"] is False and "no signature block" in junk["reason"]
    done = await asyncio.to_thread(kuaichu_verify, server, tmp_path, pdf)
    assert done.returncode == 0 and "genuine and unaltered" in done.stdout and "the current version" in done.stdout
    done = await asyncio.to_thread(kuaichu_verify, server, tmp_path, tampered)
    assert done.returncode == 1 and "NOT genuine" in done.stdout

    # Corrections: a new version with its reason; the first stays, no longer current.
    again = await officer.http.post(f"{base}/determinations", json=decision(ids, ("主要", "次要")))
    assert again.status_code == 422 and "needs its reason" in detail(again)
    corrected = await officer.http.post(
        f"{base}/determinations", json=decision(ids, ("主要", "次要"), correction_reason="乙车未开启危险报警闪光灯")
    )
    assert corrected.status_code == 201
    versions = (await officer.http.get(f"{base}/determinations")).json()
    assert [(v["version"], v["current"]) for v in versions] == [(1, False), (2, True)]
    pdf2 = (await officer.http.get(f"/api/determinations/{versions[1]['id']}/pdf")).content
    assert "更正原因：乙车未开启危险报警闪光灯" in text_of(pdf2)
    old = (await public.http.post("/api/verify", content=pdf)).json()
    assert old["genuine"] is True and old["current"] is False
    stored = server.cfg.documents_dir / f"{v1['case_no']}/v1.pdf"
    assert stored.read_bytes() == pdf and stored.stat().st_mode & 0o222 == 0  # kept read-only, as issued
    events = (await officer.http.get(f"{base}/events")).json()
    issued_events = [e for e in events["events"] if e["action"] in ("determination.issued", "delivery.device")]
    assert [e["action"] for e in issued_events] == ["determination.issued", "delivery.device"] * 2
    # The reporting unit was told where its parties follow the case (the broker took the command):
    # a kiosk shows the parties' page, where a party logs in with their phone.
    told = {"sent": True, "url": f"{server.cfg.public_url}/p?case={v1['case_no']}"}
    assert issued_events[1]["detail"] == told
    assert events["chain_problems"] == []
    for console in (officer, wuhua, other, public):
        await console.close()


def test_a_rare_character_gets_a_font_of_its_own(font_cache: Path) -> None:
    # 䶮 (CJK Extension A) is outside GB 2312, so outside the cached font.
    party = PartyLine("甲", "机动车驾驶人", "刘䶮", "11010519491231002X", "13888000001", "", "", "", "全部")
    other = PartyLine("乙", "财产所有人", "王芳", "530402196505056620", "13888000002", "", "", "", "无")
    data = DocumentData(
        "公交认字〔2026〕第1号",
        "530102202611250001",
        1,
        None,
        "2026年11月25日",
        "翠湖南路",
        "晴",
        [party, other],
        "甲倒车时撞到乙的围墙。",
        "倒车",
        "第五十条",
        "五华区交通警察大队",
        "民警",
        "2026年11月25日",
        "http://127.0.0.1/verify/x",
        [],
    )
    fonts = DocumentFont(font_cache)
    assert "当事人甲刘䶮负全部责任" in text_of(render(data, fonts))
    assert fonts.common_path.exists()
