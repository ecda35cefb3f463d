"""``/metrics``, ``/healthz`` and ``/readyz`` of a running worker, on SQLite and PostgreSQL: scraped
after a real report over MQTT and a refused one (and a degraded call and a waiting SMS in its
database); refused to an address outside ``[metrics] allow_from`` (as nginx forwards it); ready
only while the broker is up. The alerting rules pass ``promtool check rules`` and their own
``promtool test rules``. The certificates a worker serves and connects with are exported with
their expiry, the earliest in a file with intermediates."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from pydantic import ValidationError
from sqlalchemy import select

from protocol.messages import encode
from server.cases import now_utc
from server.config import InsurerApiSection, MetricsSection
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Call, Case, SmsMessage
from server.metrics import certificate_expiry
from tests.cases import new_case
from tests.configs import https, web_cert
from tests.conftest import make_server_config, start_server
from tests.metrics_text import ROOT, RULES, promtool, samples, value
from tests.reports import WUHUA, in_car_report
from tests.services import Mosquitto
from tests.waiting import wait_for
from tests.wire import publish_report, raw_device


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_worker_reports_what_it_took_in_and_whether_it_is_ready(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, broker: Mosquitto
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    cfg = make_server_config(tmp_path / "server", broker.port, database_url=url)
    # nginx's certificate, which the worker only watches: five days left, and one file never made.
    nginx = web_cert(tmp_path / "nginx", "kuaichu.example.cn", days=5)
    watched = {"nginx": nginx.cert, "gone": tmp_path / "not-there.crt"}
    server = await start_server(cfg.model_copy(update={"metrics": MetricsSection(watch_cert_files=watched)}))
    try:
        case_no = await new_case(broker)
        async with raw_device(broker.port, "car-0601") as (client, acks):
            # The payload claims another device: refused at intake with its reason.
            await publish_report(client, "car-0601", encode(in_car_report("car-0602", WUHUA)))
            ack = await asyncio.wait_for(acks.get(), 10)
        assert ack.status == "refused" and ack.reason == "device_mismatch"

        # A call without a video path, and a message the (unconfigured) SMS gateway never took.
        engine = make_engine(server.cfg.database_url)
        try:
            async with make_sessionmaker(engine).begin() as session:
                cid = (await session.scalars(select(Case.id).where(Case.case_no == case_no))).one()
                now = now_utc()
                session.add(Call(call_id="0" * 26, case_id=cid, device_id="car-0600", state="degraded", started_at=now))
                waiting = {"phone": "13700005555", "text": "测试", "status": "pending", "next_attempt_at": now}
                session.add(SmsMessage(case_id=cid, created_at=now - timedelta(minutes=10), **waiting))
        finally:
            await engine.dispose()

        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/api/cases")).status_code == 401
            scraped = await http.get("/metrics")
            assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
            found = samples(scraped.text)
            assert value(found, "kuaichu_reports_received_total") == 2
            assert value(found, "kuaichu_reports_refused_total", reason="device_mismatch") == 1
            assert value(found, "kuaichu_cases", status="new") == 1, case_no
            assert value(found, "kuaichu_calls", state="degraded") == 1
            assert value(found, "kuaichu_outbox_depth", outbox="sms") == 1
            assert value(found, "kuaichu_outbox_oldest_seconds", outbox="sms") >= 600
            assert value(found, "kuaichu_outbox_depth", outbox="insurers") == 0
            assert value(found, "kuaichu_devices_active") >= 0 and "kuaichu_devices_online" in {n for n, _ in found}
            free = value(found, "kuaichu_evidence_disk_free_bytes")
            assert 0 < free <= value(found, "kuaichu_evidence_disk_total_bytes")
            assert value(found, "kuaichu_worker_info", worker_id="w1", runs="console,intake,media") == 1
            refused = {"method": "GET", "route": "/api/cases", "status": "4xx"}
            assert value(found, "kuaichu_http_request_duration_seconds_count", **refused) == 1
            left = value(found, "kuaichu_tls_cert_not_after_seconds", cert="nginx") - now_utc().timestamp()
            assert 4 * 86400 < left < 5 * 86400  # under the alert's fourteen days
            assert value(found, "kuaichu_tls_cert_not_after_seconds", cert="gone") == 0  # as if long expired
            # Renewed in place (an ACME client, then nginx reloaded): the next scrape reads the new one.
            renewed = web_cert(tmp_path / "renewed", "kuaichu.example.cn", days=90)
            shutil.copy(renewed.cert, nginx.cert)
            found = samples((await http.get("/metrics")).text)
            left = value(found, "kuaichu_tls_cert_not_after_seconds", cert="nginx") - now_utc().timestamp()
            assert 89 * 86400 < left < 90 * 86400

            # Through nginx, the client's own address counts: a stranger is refused.
            stranger = await http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
            assert stranger.status_code == 403 and "allow_from" in stranger.json()["detail"]

            broker.stop()
            try:
                down = await wait_for("readyz to see the broker gone", lambda: _not_ready(http), within_s=20)
                assert "broker" in " ".join(down["problems"])
                assert (await http.get("/healthz")).status_code == 200
            finally:
                broker.start()
    finally:
        await server.stop()


async def _not_ready(http: httpx.AsyncClient) -> dict[str, list[str]] | None:
    response = await http.get("/readyz")
    return response.json() if response.status_code == 503 else None


def test_the_alerting_rules_fire_when_they_should() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(ROOT / "tests" / "data" / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.mark.usefixtures("fleet_pki")  # the broker's client certificate and CA
def test_the_certificates_a_worker_uses_are_exported_with_their_expiry(tmp_path: Path) -> None:
    console = web_cert(tmp_path / "web", "kuaichu.example.cn")
    # The console's file carries an intermediate after it that expires first: that one counts.
    soon = web_cert(tmp_path / "soon", "intermediate.example.cn", days=10)
    console.cert.write_bytes(console.cert.read_bytes() + soon.cert.read_bytes())
    insurer = web_cert(tmp_path / "insurer", "insurer-api.example.cn", days=400)
    cfg = https(make_server_config(tmp_path / "server", 1883), console)
    cfg = cfg.model_copy(
        update={
            "insurer_api": InsurerApiSection(
                tls_port=8443, tls_cert_file=insurer.cert, tls_key_file=insurer.key, client_ca_file=insurer.ca
            )
        }
    )
    assert cfg.broker.tls is not None

    def expires(path: Path) -> float:  # the file's first certificate
        return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc.timestamp()

    found = certificate_expiry(cfg)
    assert found == {
        "console": expires(soon.cert),
        "insurer_api": expires(insurer.cert),
        "insurer_client_ca": expires(insurer.ca),
        "broker_client": expires(cfg.broker.tls.cert_file),
        "broker_ca": expires(cfg.broker.tls.ca_file),
    }
    # Ten days from now, under the alert's fourteen.
    assert 9 * 86400 < found["console"] - now_utc().timestamp() < 11 * 86400


def test_certificates_the_worker_only_watches_are_refused_under_its_own_names() -> None:
    """A watched file (nginx's certificate) may not hide one the worker uses, nor take a name an alert
    reader would stumble on; the files themselves are checked on a running worker above."""
    for name, words in [("console", "另取一个"), ("nginx cert", "字母、数字和下划线")]:
        with pytest.raises(ValidationError, match=words):
            MetricsSection(watch_cert_files={name: Path("/etc/ssl/certs/kuaichu.pem")})
    assert MetricsSection(watch_cert_files={"nginx": Path("/etc/ssl/certs/kuaichu.pem")}).watch_cert_files
