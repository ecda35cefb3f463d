"""Hostile input over HTTP, against a running worker: bodies beyond their route's limit, errors that
never send the input back, password guessing from one address or against one account, the live
sockets opened from another site's page, numbers in the address beyond 64 bits."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
import websockets

from server.api.limits import JSON_MAX
from server.api.origin import origin_allowed
from server.config import ServerConfig
from server.users import Role
from tests.conftest import PASSWORD, RunningServer, add_user
from tests.wire import Console, login_from

CHINESE = re.compile(r"[\u4e00-\u9fff]")


async def raw_post(server: RunningServer, path: str, head: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """Send a request as a client that may lie about, or never finish, its body; the status and body
    of the answer. httpx cannot: it insists on sending what it announced."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.cfg.http.port)
    try:
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
        lines += [f"{name}: {value}" for name, value in head.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        async with asyncio.timeout(20):
            status_line = await reader.readline()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            answer = await reader.readexactly(int(headers["content-length"]))
    finally:
        writer.close()
    return int(status_line.split()[1]), answer


def too_large(status: int, answer: bytes) -> dict[str, Any]:
    assert status == 413, answer[:300]
    assert len(answer) < 1024  # the refusal, not what was sent
    body: dict[str, Any] = json.loads(answer)
    assert body["code"] == "too_large" and CHINESE.match(body["detail"]), body
    return body


async def test_a_50_mb_login_is_refused_before_it_is_read(server: RunningServer) -> None:
    username = b'{"username": "' + b"a" * (1024 * 1024)  # the first MB of 50; the rest never needs sending
    status, answer = await raw_post(server, "/api/login", {"Content-Length": str(50 * 1024 * 1024)}, username)
    body = too_large(status, answer)
    assert "64KB" in body["detail"] and b"aaaa" not in answer


async def test_a_body_sent_in_chunks_is_cut_off_at_the_limit(server: RunningServer) -> None:
    piece = b"a" * 16 * 1024
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    chunks = b'e\r\n{"username": "\r\n' + chunk * (JSON_MAX // len(piece) + 4)  # never finished
    status, answer = await raw_post(server, "/api/login", {"Transfer-Encoding": "chunked"}, chunks)
    too_large(status, answer)


async def test_a_file_route_takes_more_than_a_form(server: RunningServer) -> None:
    """/api/verify takes a determination PDF of up to 5 MB: 100 KB reaches its own check."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.post("/api/verify", content=b"%PDF-1.7\n" + b"0" * 100 * 1024)
    assert answer.status_code == 200, answer.text
    assert answer.json()["genuine"] is False, answer.text  # looked at, and found not to be one


async def test_a_refused_form_never_echoes_what_was_sent(server: RunningServer) -> None:
    marker = "回声测试echo-marker-"
    async with httpx.AsyncClient(base_url=server.url) as http:
        long_name = await http.post("/api/login", json={"username": marker * 10, "password": "x"})
        wrong_type = await http.post("/api/login", json={"username": {"nested": marker}, "password": [marker]})
        not_json = await http.post("/api/login", content=b'{"username": "' + marker.encode(), headers=_json)
    for answer in (long_name, wrong_type, not_json):
        assert answer.status_code == 422, answer.text
        assert "echo-marker" not in answer.text and "nested" not in answer.text, answer.text
        assert CHINESE.match(answer.json()["detail"]), answer.text


_json = {"content-type": "application/json"}


async def test_wrong_passwords_from_one_address_do_not_lock_the_user_out_from_another(server: RunningServer) -> None:
    await add_user(server.cfg, "target", Role.DISPATCHER, ["530102"])
    async with httpx.AsyncClient(base_url=server.url) as http:
        tries = [(await login_from(http, "10.0.0.66", "target", f"guess {i}")).status_code for i in range(5)]
        assert tries == [401] * 5
        right_but_throttled = await login_from(http, "10.0.0.66", "target", PASSWORD)
        assert right_but_throttled.status_code == 429
        assert re.match(r"登录失败次数过多，请[1-5]分钟后再试", right_but_throttled.json()["detail"])
        assert (await login_from(http, "10.0.0.7", "target", PASSWORD)).status_code == 200


async def test_failures_spread_over_usernames_from_one_address_are_slowed(server: RunningServer) -> None:
    await add_user(server.cfg, "target", Role.DISPATCHER, ["530102"])
    async with httpx.AsyncClient(base_url=server.url) as http:
        tries = [(await login_from(http, "10.0.0.66", f"user{i}", "guess")).status_code for i in range(20)]
        assert tries == [401] * 20
        for username, password in (("user20", "guess"), ("target", PASSWORD)):
            refused = await login_from(http, "10.0.0.66", username, password)
            assert refused.status_code == 429 and CHINESE.match(refused.json()["detail"]), refused.text
        assert (await login_from(http, "10.0.0.7", "target", PASSWORD)).status_code == 200


async def open_live(server: RunningServer, path: str, cookie: str, origin: str | None) -> dict[str, Any] | int:
    """The first message of the live socket at ``path`` as a page on ``origin`` would open it, or the
    HTTP status that refused the handshake."""
    headers = {"Cookie": cookie} | ({"Origin": origin} if origin else {})
    try:
        async with websockets.connect(server.url.replace("http://", "ws://") + path, additional_headers=headers) as ws:
            hello: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return hello
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


async def test_the_live_feed_refuses_another_sites_page(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    console = Console(server.url)
    try:
        assert (await console.login("wuhua", PASSWORD)).status_code == 200
        cookie = "; ".join(f"{k}={v}" for k, v in console.http.cookies.items())
        own = f"http://127.0.0.1:{server.cfg.http.port}"
        for origin in (own, None):  # the console's own page; a program, not a browser
            hello = await open_live(server, "/api/ws", cookie, origin)
            assert isinstance(hello, dict) and hello["type"] == "hello", hello
        for origin in ("https://evil.example", f"http://127.0.0.1:{server.cfg.http.port + 1}", "null"):
            assert await open_live(server, "/api/ws", cookie, origin) == 403, origin
        # The parties' socket too, refused for its origin before any session is looked at.
        caplog.clear()
        assert await open_live(server, "/api/portal/ws", "", "https://evil.example") == 403
        assert "refused: opened from the page of another site" in caplog.text
    finally:
        await console.close()


def test_origins_allowed_besides_the_address_itself() -> None:
    http = {"public_url": "https://kuaichu.example.cn", "allowed_origins": ["https://jj.km.example.cn:8443"]}
    cfg = ServerConfig.model_validate(
        {"server": {"data_dir": "/nonexistent"}, "broker": {"host": "127.0.0.1"}, "http": http}
    )
    for origin in ("https://kuaichu.example.cn", "https://KUAICHU.example.cn", "https://jj.km.example.cn:8443"):
        assert origin_allowed(origin, "10.0.0.5:8080", cfg), origin
    assert origin_allowed("http://10.0.0.5:8080", "10.0.0.5:8080", cfg)  # the address the socket was opened at
    for origin in ("http://kuaichu.example.cn", "https://jj.km.example.cn", "https://kuaichu.example.cn.evil.io"):
        assert not origin_allowed(origin, "10.0.0.5:8080", cfg), origin


async def test_numbers_in_the_address_beyond_64_bits_are_refused_in_words(server: RunningServer) -> None:
    await add_user(server.cfg, "boss", Role.ADMIN, [])
    console = Console(server.url)
    try:
        assert (await console.login("boss", PASSWORD)).status_code == 200
        huge = "99999999999999999999"
        for path in (
            f"/api/cases/{huge}",
            f"/api/cases/{huge}/plates",
            f"/api/evidence/{huge}",
            f"/api/determinations/{huge}/pdf",
            f"/api/reviews/{huge}",
            f"/api/cases/{2**63}",
            "/api/cases/-1",
        ):
            answer = await console.http.get(path)
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["code"] == "bad_path" and CHINESE.match(answer.json()["detail"]), answer.text
        assert (await console.http.get(f"/api/cases/{2**63 - 1}")).status_code == 404  # the largest id: none such
    finally:
        await console.close()
