"""The insurers' API and the one-key claim over the running server, on SQLite and PostgreSQL, with
three insurers as real local HTTP servers: a party claims from the portal once the determination has
reached them, the claim goes to their insurer (a ``claim.requested`` event, a row in claims), the
insurer works it through the API and every step reaches the party's progress and SMS. An insurer
asking for another insurer's case or claim is told it does not exist; wrong or absent keys and
certificates are refused; the rate is limited; every call is logged."""

from __future__ import annotations

import asyncio
import hashlib
import io
import ssl
from pathlib import Path

import httpx
import pytest

from server.db.models import Evidence
from tests.cases import detail
from tests.conftest import RunningServer, make_server_config, start_server
from tests.insurers import API, calls_logged, claim_sms, issue_cert, three_insurers, webhooks
from tests.pki import FleetPki
from tests.review_data import determined_over_api, party_client
from tests.services import Mosquitto, free_port

PHONES = ("13700003333", "13700004444")  # 甲 holds a PICC policy, 乙 a PAIC one (tests.casework_data)


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


PHOTO = _jpeg()  # the party's own photo of the dent


async def _photo(server: RunningServer, case_id: int, party_id: int) -> int:
    """A photo the party gave, as the phone's upload stores it."""
    from server.cases import now_utc
    from server.db.engine import make_engine, make_sessionmaker

    path = f"{case_id}/photo-claim.jpg"
    target = server.cfg.evidence_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(PHOTO)
    engine = make_engine(server.cfg.database_url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            row = Evidence(
                case_id=case_id,
                kind="photo",
                path=path,
                sha256=hashlib.sha256(PHOTO).hexdigest(),
                size_bytes=len(PHOTO),
                created_at=now_utc(),
                party_id=party_id,
            )
            session.add(row)
            await session.flush()
            return row.id
    finally:
        await engine.dispose()


async def test_a_one_key_claim_through_the_insurers_api(
    case_server: RunningServer, broker: Mosquitto, fleet_pki: FleetPki, tmp_path: Path
) -> None:
    server = case_server
    async with three_insurers(server, fleet_pki, tmp_path / "certs") as insurers:
        cid, case_no, ids = await determined_over_api(server, broker, PHONES)
        photo = await _photo(server, cid, ids[0])
        party = await party_client(server, case_no, PHONES[0])
        picc, cpic = insurers.client(server, "PICC"), insurers.client(server, "CPIC")
        try:
            before = (await party.get("/api/portal/claim")).json()
            assert not before["can_claim"] and "送达" in before["reason"] and before["insurer"] == "人保财险"
            refused = await party.post("/api/portal/claim", json={})
            assert refused.status_code == 409 and "送达" in detail(refused)
            (version,) = (await party.get("/api/portal/case")).json()["determinations"]
            assert (await party.get(version["pdf"])).status_code == 200  # the party's first look: delivered
            standing = (await party.get("/api/portal/claim")).json()
            assert standing["can_claim"] and standing["photos"] == 1

            made = await party.post("/api/portal/claim", json={"preferred_contact": "afternoon"})
            assert made.status_code == 201, made.text
            claim = made.json()["claim"]
            assert claim["status"] == "requested" and not made.json()["can_claim"]
            again = await party.post("/api/portal/claim", json={})
            assert again.status_code == 201 and again.json()["claim"]["id"] == claim["id"]

            (event,) = await webhooks(server, "claim.requested")
            assert event.insurer_code == "PICC" and event.case_id == cid
            sent = event.payload["data"]
            assert sent["claim"]["phone"] == PHONES[0] and sent["claim"]["vehicle"]["plate"] == "云A5H821"
            assert sent["claim"]["preferred_contact"].startswith("下午")
            assert sent["claim"]["photos"] == [hashlib.sha256(PHOTO).hexdigest()]
            assert [p["position"] for p in sent["insured"]] == ["甲"] and sent["others"][0]["name"] == "王*"

            # The insurer's own view; another insurer's is refused as absent.
            (listed,) = (await picc.get("/claims", params={"status": "requested"})).json()
            assert listed["claim_id"] == claim["id"] and listed["claimant"]["phone"] == PHONES[0]
            assert (await cpic.get("/claims")).json() == []
            case = (await picc.get(f"/cases/{case_no}")).json()
            assert case["case_no"] == case_no and "sig=" in case["determination"]["pdf_url"]
            assert (await cpic.get(f"/cases/{case_no}")).status_code == 404
            assert (await picc.get("/cases/530102209901010001")).status_code == 404
            pdf = await picc.get(f"/cases/{case_no}/determinations/1/pdf")
            assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
            assert (await cpic.get(f"/cases/{case_no}/determinations/1/pdf")).status_code == 404
            assert (await picc.get(f"/cases/{case_no}/determinations/9/pdf")).status_code == 404
            copy = await picc.get(f"/evidence/{photo}")  # a masked copy, made for the insurer
            assert copy.status_code == 200 and copy.headers["content-type"] == "image/jpeg"
            assert (await cpic.get(f"/evidence/{photo}")).status_code == 404

            # The claim worked through: illegal moves refused with the reason, another insurer's absent.
            base = f"/claims/{claim['id']}/status"
            assert (await cpic.post(base, json={"status": "accepted"})).status_code == 404
            assert (await picc.post(base, json={"status": "paid", "amount_cny": 1})).status_code == 409
            assert (await picc.post(base, json={"status": "accepted"})).json()["status"] == "accepted"
            assert (await picc.post(base, json={"status": "adjuster_assigned"})).status_code == 422
            adjuster = {"name": "王强", "phone": "13800000000"}
            moved = await picc.post(base, json={"status": "adjuster_assigned", "adjuster": adjuster})
            assert moved.json()["adjuster"] == adjuster
            assert (await picc.post(base, json={"status": "assessed", "amount_cny": "3200.00"})).status_code == 200
            assert (await picc.post(base, json={"status": "paid", "amount_cny": 3200})).status_code == 200
            closed = await picc.post(base, json={"status": "closed", "reason": "已赔付，结案"})
            assert [u["status"] for u in closed.json()["updates"]] == [
                "requested",
                "accepted",
                "adjuster_assigned",
                "assessed",
                "paid",
                "closed",
            ]
            late = await picc.post(base, json={"status": "accepted"})
            assert late.status_code == 409 and "已结案" in detail(late)

            steps = (await party.get("/api/portal/case")).json()["steps"]
            claim_steps = {s["key"]: s for s in steps if s["key"].startswith("claim_")}
            assert claim_steps["claim_adjuster_assigned"]["title"] == "人保财险查勘员 王强 13800000000 将联系您"
            assert claim_steps["claim_paid"]["done"] and "3200.00元" in claim_steps["claim_paid"]["title"]
            texts = await claim_sms(server, PHONES[0])
            assert len(texts) == 6
            assert "【快处】人保财险查勘员 王* 138****0000 将联系您，请保持电话畅通。" in texts
            assert await claim_sms(server, PHONES[1]) == []  # the other party's claim is their own

            logged = await calls_logged(server)
            assert ("CPIC", "GET", f"{API}/cases/{case_no}", 404) in logged
            assert sum(1 for code, *_ in logged if code == "PICC") >= 12
        finally:
            for client in (party, picc, cpic):
                await client.aclose()


async def test_keys_and_certificates_refused(server: RunningServer, fleet_pki: FleetPki, tmp_path: Path) -> None:
    async with three_insurers(server, fleet_pki, tmp_path / "certs"):
        async with httpx.AsyncClient(base_url=server.url + API, timeout=10) as anyone:
            absent = await anyone.get("/claims")
            assert absent.status_code == 401 and "API 密钥" in detail(absent)
            wrong = await anyone.get("/claims", headers={"Authorization": "Bearer kcik_not-a-key"})
            assert wrong.status_code == 401
            # PAIC chose a certificate: on the console's port there is none to show.
            assert (await anyone.get("/claims", headers={"Authorization": "Basic UEFJQzp4"})).status_code == 401
        logged = await calls_logged(server)
        assert (None, "GET", f"{API}/claims", 401) in logged


@pytest.fixture
async def tls_server(tmp_path: Path, broker: Mosquitto, fleet_pki: FleetPki) -> tuple[RunningServer, int]:
    listener = issue_cert(fleet_pki, tmp_path / "listener", "127.0.0.1", server=True)
    port = free_port()
    cfg = make_server_config(tmp_path / "server", broker.port)
    section = cfg.insurer_api.model_copy(
        update={
            "tls_port": port,
            "tls_cert_file": listener.cert,
            "tls_key_file": listener.key,
            "client_ca_file": fleet_pki.layout.ca_cert,
        }
    )
    return await start_server(cfg.model_copy(update={"insurer_api": section})), port


async def test_mutual_tls_on_the_insurers_own_port(
    tls_server: tuple[RunningServer, int], fleet_pki: FleetPki, tmp_path: Path
) -> None:
    server, port = tls_server
    try:
        async with three_insurers(server, fleet_pki, tmp_path / "certs") as insurers:
            url = f"https://127.0.0.1:{port}{API}"
            async with httpx.AsyncClient(base_url=url, verify=insurers.paic_cert.ssl(), timeout=10) as paic:
                assert (await paic.get("/claims")).json() == []
                # Its certificate is its credential; a key would have to be an API-key insurer's.
                assert (await paic.get("/claims", headers={"Authorization": "Bearer x"})).status_code == 401
            stranger = issue_cert(fleet_pki, tmp_path / "certs", "not-an-insurer")
            async with httpx.AsyncClient(base_url=url, verify=stranger.ssl(), timeout=10) as other:
                assert (await other.get("/claims")).status_code == 401  # the CA's, but not on record
            bare = ssl.create_default_context(cafile=str(fleet_pki.layout.ca_cert))
            async with httpx.AsyncClient(base_url=url, verify=bare, timeout=10) as none:
                with pytest.raises(httpx.TransportError):  # no certificate: no TLS session at all
                    await none.get("/claims")
            # The console's own routes are not on this port; an API key still works on it.
            async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=insurers.paic_cert.ssl()) as c:
                assert (await c.get("/api/cases")).status_code == 404
                picc = {"Authorization": f"Bearer {insurers.sims['PICC'].login.api_key}"}
                assert (await c.get(f"{API}/claims", headers=picc)).status_code == 200
        logged = await calls_logged(server)
        assert ("PAIC", "GET", f"{API}/claims", 200) in logged
    finally:
        await server.stop()


async def test_the_insurers_own_port_refuses_in_the_same_words_and_codes(
    tls_server: tuple[RunningServer, int], fleet_pki: FleetPki, tmp_path: Path
) -> None:
    server, port = tls_server
    try:
        async with three_insurers(server, fleet_pki, tmp_path / "certs") as insurers:
            url = f"https://127.0.0.1:{port}{API}"
            async with httpx.AsyncClient(base_url=url, verify=insurers.paic_cert.ssl(), timeout=10) as paic:
                bad_status = await paic.post("/claims/1/status", json={"status": "lost"})
                assert bad_status.status_code == 422
                assert bad_status.json() == {
                    "detail": "请从列表中选择状态 (choose one of the list)",
                    "code": "not_a_choice",
                    "field": "status",
                    "errors": [
                        {
                            "field": "status",
                            "code": "not_a_choice",
                            "message": "请从列表中选择状态 (choose one of the list)",
                        }
                    ],
                }
                adjuster = {"name": "李查勘", "phone": "12345"}
                bad_phone = await paic.post(
                    "/claims/1/status", json={"status": "adjuster_assigned", "adjuster": adjuster}
                )
                assert bad_phone.status_code == 422
                body = bad_phone.json()
                assert (body["code"], body["field"]) == ("invalid_phone", "adjuster.phone")
                assert body["detail"].startswith("手机号应为11位数字")
                no_route = await paic.get("/nothing-here")
                assert no_route.status_code == 404 and no_route.json()["code"] == "not_found"
                assert detail(no_route).startswith("没有这个页面或接口")
    finally:
        await server.stop()


async def test_rate_limited_per_insurer(tmp_path: Path, broker: Mosquitto, fleet_pki: FleetPki) -> None:
    cfg = make_server_config(tmp_path / "server", broker.port)
    section = cfg.insurer_api.model_copy(update={"rate_per_s": 2, "burst": 3})
    server = await start_server(cfg.model_copy(update={"insurer_api": section}))
    try:
        async with three_insurers(server, fleet_pki, tmp_path / "certs") as insurers:
            picc, cpic = insurers.client(server, "PICC"), insurers.client(server, "CPIC")
            async with picc, cpic:
                answers = [(await picc.get("/claims")).status_code for _ in range(3)]
                limited = await picc.get("/claims")
                assert answers == [200, 200, 200] and limited.status_code == 429
                assert int(limited.headers["retry-after"]) >= 1 and "秒后重试" in detail(limited)
                assert (await cpic.get("/claims")).status_code == 200  # its own bucket
                await asyncio.sleep(0.6)
                assert (await picc.get("/claims")).status_code == 200
        assert ("PICC", "GET", f"{API}/claims", 429) in await calls_logged(server)
    finally:
        await server.stop()
