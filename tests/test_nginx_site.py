"""The shipped nginx site (server/install/nginx-kuaichu.conf) run by Debian's nginx in front of
workers on plain HTTP: what an operator gets after editing the name, the certificate and the ports;
one worker running everything, and the three kinds of worker install-server.sh sets up.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import websockets

from protocol.messages import encode
from server.api.deps import SESSION_COOKIE
from server.config import ServerConfig, WorkerPart
from server.users import Role
from tests.configs import WebCert, web_cert
from tests.conftest import PASSWORD, RunningServer, add_user, make_server_config, start_server
from tests.metrics_text import samples, value
from tests.reports import WUHUA, in_car_report
from tests.services import Mosquitto, free_port, wait_for_port
from tests.wire import publish_report, raw_device

SITE = Path(__file__).parents[1] / "server" / "install" / "nginx-kuaichu.conf"
HOST = "kuaichu.test"

# The site file is included in the http block of nginx.conf, as Debian's does with sites-enabled;
# everything nginx writes goes to the test's folder.
NGINX_CONF = """\
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/kuaichu.conf;
}}
"""


def nginx() -> str:
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if path is None:
        raise RuntimeError("nginx not installed: install.sh installs Debian's 'nginx' package")
    return path


def site_for(cert: WebCert, http_port: int, https_port: int, console_port: int, media_port: int) -> str:
    """The shipped file with the edits its header asks for (name, certificate, workers) and the test's
    ports on loopback. Each edited line must be there, or the file changed under the test."""
    text = SITE.read_text(encoding="utf-8")
    edits = {
        "kuaichu.example.cn": HOST,
        "/etc/kuaichu/tls/console.crt": str(cert.cert),
        "/etc/kuaichu/tls/console.key": str(cert.key),
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{console_port};",
        "server 127.0.0.1:8090;": f"server 127.0.0.1:{media_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": f"listen [::1]:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2;": f"listen [::1]:{https_port} ssl http2;",
    }
    for old, new in edits.items():
        assert old in text, f"{SITE.name} no longer has {old!r}"
        text = text.replace(old, new)
    return text


@dataclass
class Site:
    http_port: int
    https_port: int
    tls: ssl.SSLContext

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"


@asynccontextmanager
async def running_site(tmp_path: Path, console_port: int, media_port: int) -> AsyncIterator[Site]:
    """Debian's nginx running the shipped site in front of the console and media workers' ports."""
    cert = web_cert(tmp_path / "web", HOST, "127.0.0.1")
    http_port, https_port = free_port(), free_port()
    folder = tmp_path / "nginx"
    folder.mkdir()
    (folder / "kuaichu.conf").write_text(site_for(cert, http_port, https_port, console_port, media_port))
    (folder / "nginx.conf").write_text(NGINX_CONF.format(dir=folder))
    args = ["-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")]
    check = await asyncio.create_subprocess_exec(nginx(), "-t", *args, stderr=asyncio.subprocess.PIPE)
    _, said = await check.communicate()
    assert check.returncode == 0, said.decode()
    proc = await asyncio.create_subprocess_exec(nginx(), *args)
    try:
        await asyncio.to_thread(wait_for_port, https_port)
        yield Site(http_port, https_port, ssl.create_default_context(cafile=str(cert.ca)))
    finally:
        proc.terminate()
        await proc.wait()


def behind_the_site(cfg: ServerConfig, *runs: WorkerPart) -> ServerConfig:
    """A worker as the site's header says: plain HTTP on loopback, Secure cookies, the public
    address; running ``runs``, or everything."""
    values = cfg.model_dump()
    values["http"] |= {"secure_cookies": True, "public_url": f"https://{HOST}"}
    if runs:
        values["server"]["runs"] = runs
    return ServerConfig.model_validate(values)


@dataclass
class Proxied:
    worker: RunningServer
    http_port: int
    https_port: int
    tls: ssl.SSLContext


@pytest.fixture
async def proxied(tmp_path: Path, broker: Mosquitto) -> AsyncIterator[Proxied]:
    worker = await start_server(behind_the_site(make_server_config(tmp_path / "server", broker.port)))
    await add_user(worker.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    try:
        async with running_site(tmp_path, worker.cfg.http.port, worker.cfg.http.port) as site:
            yield Proxied(worker, site.http_port, site.https_port, site.tls)
    finally:
        await worker.stop()


async def test_plain_http_is_sent_to_the_sites_https_name(proxied: Proxied) -> None:
    async with httpx.AsyncClient(headers={"Host": "evil.example"}) as plain:
        page = await plain.get(f"http://127.0.0.1:{proxied.http_port}/p/abc?x=1")
    assert (page.status_code, page.headers["location"]) == (301, f"https://{HOST}/p/abc?x=1")


async def test_console_through_nginx_login_cookie_hsts_and_live_feed(proxied: Proxied) -> None:
    base = f"https://127.0.0.1:{proxied.https_port}"
    async with httpx.AsyncClient(base_url=base, verify=proxied.tls, timeout=10) as console:
        login = await console.post("/api/login", json={"username": "wuhua", "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert login.headers["strict-transport-security"] == "max-age=31536000"
        cookie = login.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=") and "; secure" in cookie.lower()
        session = f"{SESSION_COOKIE}={console.cookies[SESSION_COOKIE]}"
    # The WebSocket upgrade passes through nginx to the worker, which says hello to the operator.
    async with websockets.connect(
        f"wss://127.0.0.1:{proxied.https_port}/api/ws", ssl=proxied.tls, additional_headers={"Cookie": session}
    ) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert hello["type"] == "hello" and hello["operator"]["username"] == "wuhua"


async def _scrape(worker: RunningServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as direct:
        return samples((await direct.get("/metrics")).text)


async def test_intake_console_and_media_workers_on_postgresql_behind_nginx(
    tmp_path: Path, broker: Mosquitto, pg_url: str
) -> None:
    """The deployment install-server.sh writes without --tls-cert: one worker of each kind on one
    PostgreSQL and one data folder, the site routing between the console and the media worker."""
    kinds = {"media": WorkerPart.MEDIA, "console": WorkerPart.CONSOLE, "intake": WorkerPart.INTAKE}
    workers: dict[str, RunningServer] = {}
    try:
        for name, part in kinds.items():  # one after another: each upgrades the schema as it starts
            base = make_server_config(tmp_path / "server", broker.port, database_url=pg_url, worker_id=name)
            workers[name] = await start_server(behind_the_site(base, part))
        await add_user(workers["console"].cfg, "wuhua", Role.DISPATCHER, ["530102"])
        console_port, media_port = workers["console"].cfg.http.port, workers["media"].cfg.http.port
        async with (
            running_site(tmp_path, console_port, media_port) as site,
            httpx.AsyncClient(base_url=site.url, verify=site.tls, timeout=10) as http,
        ):
            assert (await http.post("/api/login", json={"username": "wuhua", "password": PASSWORD})).status_code == 200
            cookie = {"Cookie": f"{SESSION_COOKIE}={http.cookies[SESSION_COOKIE]}"}
            async with websockets.connect(
                f"wss://127.0.0.1:{site.https_port}/api/ws", ssl=site.tls, additional_headers=cookie
            ) as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "hello"
                # A unit's report: taken in by the intake worker, in the console's queue and live feed.
                report = in_car_report("car-0301", WUHUA)
                async with raw_device(broker.port, "car-0301") as (client, acks):
                    await publish_report(client, "car-0301", encode(report))
                    ack = await asyncio.wait_for(acks.get(), 15)
                assert ack.status == "accepted" and ack.case_no is not None
                async with asyncio.timeout(15):
                    while ack.case_no not in await ws.recv():
                        pass
                # The live socket's call messages are answered by the worker that holds the calls.
                await ws.send(json.dumps({"type": "participant.list", "call_id": report.report_id}))
                async with asyncio.timeout(10):
                    while (reply := json.loads(await ws.recv()))["type"] != "call.error":
                        pass
                assert "no such call" in reply["reason"], reply
            [case] = [c for c in (await http.get("/api/cases")).json() if c["case_no"] == ack.case_no]

            # The console worker serves the pages and the API; the calls' paths reach the media worker.
            for path in ("/console", "/workspace", "/p", f"/api/cases/{case['id']}/work", "/api/me"):
                assert (await http.get(path)).status_code == 200, path
            calls = await http.get("/api/calls")
            assert calls.status_code == 200 and calls.json()["calls"] == [], calls.text
            now = datetime.now(UTC)
            statement = {"party_id": 1, "start": now.isoformat(), "end": (now + timedelta(minutes=1)).isoformat()}
            said = await http.post(f"/api/cases/{case['id']}/statements", json=statement | {"summary": "追尾"})
            assert said.json()["detail"].startswith("当事人不存在"), said.text  # refused by the media worker, below

        # Each worker on its own port serves its kind and no other.
        async with httpx.AsyncClient(timeout=10, headers=cookie) as direct:
            taken = await direct.get(f"{workers['console'].url}/api/calls")
            assert taken.status_code == 409 and "不处理通话" in taken.json()["detail"]
            for name in ("media", "intake"):
                for path in ("/console", "/api/cases"):
                    assert (await direct.get(f"{workers[name].url}{path}")).status_code == 404, (name, path)
                assert (await direct.get(f"{workers[name].url}/readyz")).status_code == 200, name
        found = {name: await _scrape(worker) for name, worker in workers.items()}
        for name, part in kinds.items():
            assert value(found[name], "kuaichu_worker_info", worker_id=name, runs=part.value) == 1
            assert value(found[name], "kuaichu_reports_received_total") == (1 if name == "intake" else 0), name
        route = {"method": "POST", "route": "/api/cases/{case_id}/statements", "status": "4xx"}
        assert value(found["media"], "kuaichu_http_request_duration_seconds_count", **route) == 1
        assert ("kuaichu_http_request_duration_seconds_count", frozenset(route.items())) not in found["console"]
    finally:
        for worker in workers.values():
            await worker.stop()
