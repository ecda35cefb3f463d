"""The shipped nginx site (server/install/nginx-kuaichu.conf) run by Debian's nginx in front of a
worker on plain HTTP: what an operator gets after editing the name, the certificate and the ports.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from server.api.deps import SESSION_COOKIE
from server.users import Role
from tests.configs import WebCert, web_cert
from tests.conftest import PASSWORD, RunningServer, add_user, make_server_config, start_server
from tests.services import Mosquitto, free_port, wait_for_port

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


def site_for(cert: WebCert, http_port: int, https_port: int, worker_port: int) -> str:
    """The shipped file with the edits its header asks for (name, certificate, worker) and the test's
    ports on loopback. Each edited line must be there, or the file changed under the test."""
    text = SITE.read_text(encoding="utf-8")
    edits = {
        "kuaichu.example.cn": HOST,
        "/etc/kuaichu/tls/console.crt": str(cert.cert),
        "/etc/kuaichu/tls/console.key": str(cert.key),
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{worker_port};",
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
class Proxied:
    worker: RunningServer
    http_port: int
    https_port: int
    tls: ssl.SSLContext


@pytest.fixture
async def proxied(tmp_path: Path, broker: Mosquitto) -> AsyncIterator[Proxied]:
    cert = web_cert(tmp_path / "web", HOST, "127.0.0.1")
    http_port, https_port = free_port(), free_port()
    cfg = make_server_config(tmp_path / "server", broker.port)
    # The worker as the site's header says: plain HTTP on loopback, Secure cookies, the public address.
    values = cfg.model_dump()
    values["http"] |= {"secure_cookies": True, "public_url": f"https://{HOST}"}
    worker = await start_server(type(cfg).model_validate(values))
    await add_user(worker.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    folder = tmp_path / "nginx"
    folder.mkdir()
    (folder / "kuaichu.conf").write_text(site_for(cert, http_port, https_port, worker.cfg.http.port))
    (folder / "nginx.conf").write_text(NGINX_CONF.format(dir=folder))
    args = ["-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")]
    check = await asyncio.create_subprocess_exec(nginx(), "-t", *args, stderr=asyncio.subprocess.PIPE)
    _, said = await check.communicate()
    assert check.returncode == 0, said.decode()
    proc = await asyncio.create_subprocess_exec(nginx(), *args)
    try:
        await asyncio.to_thread(wait_for_port, https_port)
        yield Proxied(worker, http_port, https_port, ssl.create_default_context(cafile=str(cert.ca)))
    finally:
        proc.terminate()
        await proc.wait()
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
