"""Determinations pushed to the insurers by the running server: a case delivered by SMS reaches the
insurer of each party, signed (the library's verifier takes it, a tampered body it refuses), with
links that open the document as on record; an insurer down for a while and a server restarted
mid-send lose nothing (the insurer deduplicating by webhook id keeps one of each); an insurer that
never answers ends as a dead letter on the administrators' page, and a resend delivers it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from server.cases import now_utc
from server.config import ServerConfig
from server.db.engine import make_engine, make_sessionmaker
from server.insurers.directory import add_insurer
from server.users import Role
from tests.cases import handed_over_case, logged_in
from tests.casework_data import decision, seed_registry
from tests.configs import sms_config
from tests.conftest import RunningServer, add_user, make_server_config, start_server
from tests.insurer_endpoints import Endpoint, insurer_endpoints, specs
from tests.services import Mosquitto, free_port
from tests.sms_provider import sms_provider
from tests.waiting import wait_for

FAST = {"timeout_s": 1, "retry_first_s": 0.2, "retry_max_s": 1, "poll_s": 0.1}


def _config(tmp_path: Path, broker: Mosquitto, font_cache: Path, sms_port: int, **insurers: Any) -> ServerConfig:
    cfg = sms_config(make_server_config(tmp_path / "server", broker.port), tmp_path / "sms", font_cache, sms_port)
    return ServerConfig.model_validate(cfg.model_dump() | {"insurers": FAST | insurers})


async def _prepare(cfg: ServerConfig, tmp_path: Path, endpoints: dict[str, Endpoint]) -> dict[str, str]:
    """Registry, operators and the three insurers; each insurer's webhook secret."""
    await seed_registry(cfg.database_url, tmp_path / "registry")
    await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(cfg, "officer", Role.OFFICER, ["530102"])
    await add_user(cfg, "admin", Role.ADMIN, [])
    engine = make_engine(cfg.database_url)
    try:
        sessions = make_sessionmaker(engine)
        return {s.code: (await add_insurer(sessions, s, now_utc())).secret for s in specs(endpoints)}
    finally:
        await engine.dispose()


def _ports() -> dict[str, int]:
    return {code: free_port() for code in ("PICC", "PAIC", "CPIC")}


async def _determined(server: RunningServer, broker: Mosquitto) -> dict[str, Any]:
    cid, ids = await handed_over_case(server, broker)
    officer = await logged_in(server, "officer")
    try:
        issued: dict[str, Any] = (
            await officer.http.post(f"/api/cases/{cid}/determinations", json=decision(ids))
        ).json()
    finally:
        await officer.close()
    return issued


async def test_a_delivered_case_reaches_each_partys_insurer_signed(
    tmp_path: Path, broker: Mosquitto, font_cache: Path
) -> None:
    sms_port = free_port()
    cfg = _config(tmp_path, broker, font_cache, sms_port)
    async with insurer_endpoints(_ports()) as endpoints:
        server = await start_server(cfg)
        try:
            secrets = await _prepare(cfg, tmp_path, endpoints)
            async with sms_provider(sms_port, server.url):
                issued = await _determined(server, broker)

                async def both() -> bool:
                    return all(endpoints[c].unique() for c in ("PICC", "PAIC"))

                await wait_for("both insurers acknowledged", both)
                picc = next(iter(endpoints["PICC"].unique().values()))
                headers = {k: v for k, v in picc.headers.items() if k.startswith("webhook-")}
                event = Webhook(secrets["PICC"]).verify(picc.body, headers)
                with pytest.raises(WebhookVerificationError):
                    Webhook(secrets["PICC"]).verify(picc.body.replace('"全部"'.encode(), '"无"'.encode()), headers)
                with pytest.raises(WebhookVerificationError):
                    Webhook(secrets["PAIC"]).verify(picc.body, headers)

                assert event["type"] == "determination.delivered"
                data = event["data"]
                assert data["case_no"] == issued["case_no"] and data["accident"]["situation_name"] == "追尾"
                assert data["determination"]["version"] == 1 and data["determination"]["sha256"] == issued["sha256"]
                (insured,) = data["insured"]
                assert insured["name"] == "李建华" and insured["id_number"] == "530402196505056620"
                assert insured["liability"] == "全部" and insured["policy_no"].startswith("PICC")
                (other,) = data["others"]
                assert other["name"] == "王*" and other["insurer"] == "PAIC" and "id_number" not in other
                paic = next(iter(endpoints["PAIC"].unique().values())).event["data"]
                assert [p["name"] for p in paic["insured"]] == ["王芳"] and paic["others"][0]["name"] == "李**"
                assert endpoints["CPIC"].requests == []

                async with httpx.AsyncClient() as insurer:
                    pdf = await insurer.get(data["determination"]["pdf_url"])
                    assert pdf.status_code == 200, (pdf.text, data["determination"]["pdf_url"])
                    assert hashlib.sha256(pdf.content).hexdigest() == issued["sha256"]
                    forged = await insurer.get(data["determination"]["pdf_url"].replace("/PICC/", "/CPIC/"))
                    assert forged.status_code == 403 and "链接无效" in forged.json()["detail"]
        finally:
            await server.stop()


async def test_an_insurer_down_and_a_server_restarted_mid_send_lose_nothing(
    tmp_path: Path, broker: Mosquitto, font_cache: Path
) -> None:
    sms_port = free_port()
    cfg = _config(tmp_path, broker, font_cache, sms_port)
    async with insurer_endpoints(_ports()) as endpoints:
        endpoints["PICC"].answer = 503  # down
        endpoints["PAIC"].hold.clear()  # takes the request and does not answer yet
        server = await start_server(cfg)
        try:
            await _prepare(cfg, tmp_path, endpoints)
            async with sms_provider(sms_port, server.url):
                await _determined(server, broker)

                async def tried() -> bool:
                    return len(endpoints["PICC"].requests) >= 3 and len(endpoints["PAIC"].requests) >= 1

                await wait_for("PICC refusing, PAIC holding", tried)
                # The server stops while PAIC holds its request; PAIC then takes it after all, but
                # the server never heard the answer.
                await server.stop()
                endpoints["PAIC"].hold.set()
                await wait_for("PAIC took the first copy", lambda: _acknowledged(endpoints["PAIC"], 1))
                endpoints["PICC"].answer = 200  # back
                server = await start_server(cfg)
                admin = await logged_in(server, "admin")

                async def settled() -> bool:
                    pending = (await admin.http.get("/api/admin/insurers/deliveries?status=pending")).json()
                    return not pending and all(endpoints[c].unique() for c in ("PICC", "PAIC"))

                await wait_for("every event delivered", settled, within_s=30)
                for code in ("PICC", "PAIC"):
                    ids = {r.webhook_id for r in endpoints[code].requests}
                    assert len(ids) == 1 and len(endpoints[code].unique()) == 1  # one event, however often sent
                assert len(endpoints["PAIC"].acknowledged) == 2  # sent again after the restart: at least once
                listed = {i["code"]: i for i in (await admin.http.get("/api/admin/insurers")).json()}
                assert listed["PICC"]["events"] == {"delivered": 1} and listed["CPIC"]["events"] == {}
                await admin.close()
        finally:
            await server.stop()


async def _acknowledged(endpoint: Endpoint, n: int) -> bool:
    return len(endpoint.acknowledged) >= n


async def test_an_insurer_that_keeps_failing_is_a_dead_letter_until_resent(
    tmp_path: Path, broker: Mosquitto, font_cache: Path
) -> None:
    sms_port = free_port()
    cfg = _config(tmp_path, broker, font_cache, sms_port, retry_for_h=0.0003, min_attempts=3)
    async with insurer_endpoints(_ports()) as endpoints:
        endpoints["PICC"].answer = 500
        server = await start_server(cfg)
        try:
            await _prepare(cfg, tmp_path, endpoints)
            async with sms_provider(sms_port, server.url):
                await _determined(server, broker)
                admin = await logged_in(server, "admin")

                async def dead() -> list[dict[str, Any]]:
                    rows: list[dict[str, Any]] = (await admin.http.get("/api/admin/insurers/deliveries")).json()
                    return rows

                (letter,) = await wait_for("a dead letter", dead)
                assert letter["insurer"] == "PICC" and letter["last_error"] == "answered 500"
                assert letter["attempts"] >= 3 and letter["type"] == "determination.delivered"
                tries = len(endpoints["PICC"].requests)
                assert tries == letter["attempts"]
                page = await admin.http.get("/insurers")
                assert page.status_code == 200 and "重发" in (await admin.http.get("/static/insurers.js")).text

                wuhua = await logged_in(server, "wuhua")
                refused = await wuhua.http.post(f"/api/admin/insurers/deliveries/{letter['id']}/resend")
                assert refused.status_code == 403
                await wuhua.close()

                endpoints["PICC"].answer = 200
                assert (await admin.http.post(f"/api/admin/insurers/deliveries/{letter['id']}/resend")).json() == {
                    "queued": True
                }
                await wait_for("the resend acknowledged", lambda: _acknowledged(endpoints["PICC"], 1))
                assert {r.webhook_id for r in endpoints["PICC"].requests} == {letter["webhook_id"]}

                async def none_dead() -> bool:
                    return await dead() == []

                await wait_for("the dead letter gone", none_dead)
                again = await admin.http.post(f"/api/admin/insurers/deliveries/{letter['id']}/resend")
                assert again.status_code == 404  # delivered: nothing to resend
                await admin.close()
        finally:
            await server.stop()
