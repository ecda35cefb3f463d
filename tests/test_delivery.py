"""Delivery by SMS, on SQLite and PostgreSQL: the outbox keeps every message while the provider is
down and across a server restart, retries, records when each party was reached, and marks the
case delivered; receipts need the provider's token."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import pytest

from server.users import Role
from tests.cases import handed_over_case, logged_in
from tests.casework_data import decision, seed_registry
from tests.configs import sms_config
from tests.conftest import RunningServer, add_user, make_server_config, start_server
from tests.services import Mosquitto, free_port, postgresql
from tests.sms_provider import RECEIPT_TOKEN, sms_provider
from tests.waiting import wait_for


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_sms_gateway_down_for_a_while_loses_nothing(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, broker: Mosquitto, font_cache: Path
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    provider_port = free_port()
    cfg = sms_config(
        make_server_config(tmp_path / "server", broker.port, database_url=url),
        tmp_path / "sms",
        font_cache,
        provider_port,
    )
    server: RunningServer = await start_server(cfg)
    try:
        await seed_registry(cfg.database_url, tmp_path / "registry")
        await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
        await add_user(cfg, "officer", Role.OFFICER, ["530102"])
        cid, ids = await handed_over_case(server, broker)
        officer = await logged_in(server, "officer")
        issued = (await officer.http.post(f"/api/cases/{cid}/determinations", json=decision(ids))).json()

        # The provider is down: the messages wait, and the attempts show why.
        async def tried_twice() -> bool:
            rows = (await officer.http.get(f"/api/cases/{cid}/deliveries")).json()
            return all(r["attempts"] >= 2 for r in rows) and len(rows) == 2

        await wait_for("two failed attempts", tried_twice)
        rows = (await officer.http.get(f"/api/cases/{cid}/deliveries")).json()
        assert {r["status"] for r in rows} == {"pending"}
        assert all("provider unreachable" in r["last_error"] for r in rows)
        await officer.close()

        # The server restarts meanwhile; the outbox is in the database.
        await server.stop()
        server = await start_server(cfg)
        async with sms_provider(provider_port, server.url, fail_next=2) as provider:
            officer = await logged_in(server, "officer")

            async def delivered() -> bool:
                work = (await officer.http.get(f"/api/cases/{cid}/work")).json()
                return bool(work["case"]["status"] == "delivered")

            await wait_for("the case delivered", delivered)
            rows = (await officer.http.get(f"/api/cases/{cid}/deliveries")).json()
            assert [r["status"] for r in rows] == ["reached", "reached"]
            assert all(r["reached_at"] for r in rows)
            assert provider.requests >= 4  # two refused with 503, then both taken
            # Each party's link went out when the dispatcher saved them; then the determination's.
            determined = [m for m in provider.received if "认定书已出具" in m["text"]]
            assert sorted(m["to"] for m in determined) == ["13888000001", "13888000001"]
            text = determined[0]["text"]
            assert issued["case_no"] in text and f"{server.url}/p/" in text and "三日内" in text
            assert len(determined) == 2  # each party once, nothing sent twice

            events = [e["action"] for e in (await officer.http.get(f"/api/cases/{cid}/events")).json()["events"]]
            assert events[-3:] == ["delivery.reached", "delivery.reached", "case.delivered"]
            token = issued["token"]
            # The QR code's page is public; the document with the parties' data is not.
            pdf = (await officer.http.get(f"/api/verify/{token}/pdf")).content
            async with httpx.AsyncClient(base_url=server.url) as public:
                refused = await public.get(f"/api/verify/{token}/pdf")
                assert refused.status_code == 401 and "验证码" in refused.json()["detail"]
                record = (await public.get(f"/api/verify/{token}")).json()
                assert [p["name"] for p in record["parties"]] == ["李**", "王*"]
                assert "530402196505056620" not in str(record)
                assert (await public.post("/api/verify", content=pdf)).json()["genuine"] is True
                forged = await public.post(
                    "/api/sms/receipts",
                    json={"id": "p-1", "status": "delivered"},
                    headers={"Authorization": "Bearer x"},
                )
                assert forged.status_code == 401
                unknown = await public.post(
                    "/api/sms/receipts",
                    json={"id": "nope", "status": "delivered"},
                    headers={"Authorization": f"Bearer {RECEIPT_TOKEN}"},
                )
                assert unknown.status_code == 404
            await officer.close()
    finally:
        await server.stop()


async def test_a_receipt_that_overtakes_the_send_answer_still_counts(
    tmp_path: Path, broker: Mosquitto, font_cache: Path
) -> None:
    provider_port = free_port()
    cfg = sms_config(make_server_config(tmp_path / "server", broker.port), tmp_path / "sms", font_cache, provider_port)
    server = await start_server(cfg)
    try:
        await seed_registry(cfg.database_url, tmp_path / "registry")
        await add_user(cfg, "wuhua", Role.DISPATCHER, ["530102"])
        await add_user(cfg, "officer", Role.OFFICER, ["530102"])
        async with sms_provider(provider_port, server.url, receipt_first=True):
            cid, ids = await handed_over_case(server, broker)
            officer = await logged_in(server, "officer")
            await officer.http.post(f"/api/cases/{cid}/determinations", json=decision(ids))

            async def delivered() -> bool:
                return bool((await officer.http.get(f"/api/cases/{cid}/work")).json()["case"]["status"] == "delivered")

            await wait_for("the case delivered", delivered)
            rows = (await officer.http.get(f"/api/cases/{cid}/deliveries")).json()
            assert [r["status"] for r in rows] == ["reached", "reached"]
            await officer.close()
    finally:
        await server.stop()


async def test_receipts_while_postgresql_is_down_ask_the_provider_to_come_back(
    tmp_path: Path, broker: Mosquitto, font_cache: Path
) -> None:
    """A receipt is the provider's only word that a party was reached: on 500 it may drop it, on 503
    with Retry-After it sends it again. So a worker whose PostgreSQL is down answers 503."""
    with contextlib.ExitStack() as cluster:
        url = cluster.enter_context(postgresql())  # a cluster of its own: this test stops it
        cfg = sms_config(
            make_server_config(tmp_path / "server", broker.port, database_url=url),
            tmp_path / "sms",
            font_cache,
            free_port(),
        )
        server = await start_server(cfg)
        try:
            cluster.close()  # PostgreSQL's server stops (pg_ctl -m immediate)
            async with httpx.AsyncClient(base_url=server.url) as provider:
                receipt = await provider.post(
                    "/api/sms/receipts",
                    json={"id": "p-1", "status": "delivered"},
                    headers={"Authorization": f"Bearer {RECEIPT_TOKEN}"},
                )
                login = await provider.post("/api/login", json={"username": "wuhua", "password": "x" * 12})
        finally:
            await server.stop()
    for answer in (receipt, login):
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["retry-after"]) > 0
        assert answer.json()["code"] == "database_unavailable" and "数据库" in answer.json()["detail"]
