"""Refusals: each kind of server domain error reaches the console as its HTTP status and a
``{"detail": message, "code": code}`` body, the message in Chinese first, through the one handler
in the app."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from server.api.app import refused
from server.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NoSuchCase,
    NotFound,
    Throttled,
    TimedOut,
    Unauthenticated,
    Unavailable,
)
from server.users import Role
from tests.conftest import PASSWORD, RunningServer, add_user
from tests.wire import Console

KINDS: list[tuple[DomainError, int]] = [
    (NotFound("没有 (nothing)"), 404),
    (NoSuchCase(), 404),
    (Conflict("已关闭 (closed)"), 409),
    (Invalid("有误 (wrong)"), 422),
    (Forbidden("不允许 (not allowed)"), 403),
    (Unauthenticated("请先登录 (login required)"), 401),
    (Throttled("稍后再试 (later)"), 429),
    (Unavailable("请重试 (try again)"), 503),
    (TimedOut("未应答 (no answer)"), 504),
    (DomainError("无法办理 (refused)"), 409),  # a kind with no status of its own is still a refusal
]


async def test_a_refusal_may_name_its_own_code_and_field() -> None:
    app = FastAPI()
    app.add_exception_handler(DomainError, refused)

    @app.get("/refuse")
    async def refuse() -> None:
        raise Invalid("请对照截图核对车牌 (check the plate)", code="invalid_plate", field="text")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/refuse")
    assert response.status_code == 422
    assert response.json() == {
        "detail": "请对照截图核对车牌 (check the plate)",
        "code": "invalid_plate",
        "field": "text",
    }
    assert [type(e).code for e, _ in KINDS] == [
        "not_found",
        "no_such_case",
        "conflict",
        "invalid",
        "forbidden",
        "unauthenticated",
        "throttled",
        "unavailable",
        "timed_out",
        "refused",
    ]


@pytest.mark.parametrize(("error", "code"), KINDS, ids=[type(e).__name__ for e, _ in KINDS])
async def test_each_kind_has_its_status_and_keeps_its_message(error: DomainError, code: int) -> None:
    """Over the app's own handler: a broker that refuses or a unit that does not answer cannot be
    staged on a test worker without a broker of its own, so every kind is raised by a route here."""
    app = FastAPI()
    app.add_exception_handler(DomainError, refused)

    @app.get("/refuse")
    async def refuse() -> None:
        raise error

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/refuse")
    assert response.status_code == code
    assert response.json() == {"detail": str(error), "code": error.code}


async def test_the_running_worker_refuses_in_chinese_first(server: RunningServer) -> None:
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(server.cfg, "admin", Role.ADMIN, [])
    dispatcher, admin = Console(server.url), Console(server.url)
    try:

        async def refusal(response: httpx.Response) -> tuple[int, str]:
            return response.status_code, response.json()["detail"]

        assert await refusal(await dispatcher.http.get("/api/me")) == (401, "请先登录 (login required)")
        wrong = await dispatcher.login("wuhua", "not the password")
        assert await refusal(wrong) == (401, "用户名或密码错误，请重新输入 (wrong username or password)")
        assert (await dispatcher.login("wuhua", PASSWORD)).status_code == 200
        assert (await admin.login("admin", PASSWORD)).status_code == 200

        assert await refusal(await dispatcher.http.get("/api/cases/999999")) == (
            404,
            "案件不存在，请刷新队列 (no such case)",
        )
        assert await refusal(await dispatcher.http.get("/api/cases/999999/work")) == (
            404,
            "案件不存在，请刷新队列 (no such case)",
        )
        assert await refusal(await dispatcher.http.get("/api/devices")) == (403, "仅限管理员操作 (admins only)")
        hand_over = await admin.http.post("/api/cases/999999/hand-over")
        assert await refusal(hand_over) == (403, "仅限接警员操作 (dispatchers only)")  # the role before the case
        assert await refusal(await dispatcher.http.get("/api/cases", params={"unit": "530111"})) == (
            403,
            "您不负责该单位，请选择您所在的单位 (you do not serve this unit)",
        )
        proposal = await dispatcher.http.get("/api/situations/nonsense/proposal", params={"parties": 2, "at_fault": 0})
        assert await refusal(proposal) == (422, "没有这种事故情形或当事人 (unknown situation or party)")

        car = {"kind": "in-car", "cert_fingerprint": "ab" * 32, "vehicle": {"plate": "云A5H821"}}
        assert (await admin.http.put("/api/devices/car-err-01", json=car)).status_code == 200
        assert (await admin.http.post("/api/devices/car-err-01/retire", json={"kind": "in-car"})).status_code == 200
        assert await refusal(await admin.http.put("/api/devices/car-err-01", json=car)) == (
            409,
            "设备 car-err-01 已停用，请为新设备另配编号 (device car-err-01 is retired; provision a new device id)",
        )

        for _ in range(5):
            await dispatcher.login("wuhua", "guessing")
        assert await refusal(await dispatcher.login("wuhua", PASSWORD)) == (
            429,
            "登录失败次数过多，请5分钟后再试 (too many failed logins; try again in 5 min)",  # the window just began
        )
    finally:
        await dispatcher.close()
        await admin.close()
