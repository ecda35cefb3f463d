"""Login and logout. Sessions are HttpOnly, SameSite=Strict cookies; failed logins are throttled."""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from server.api.deps import SESSION_COOKIE, Operator, OperatorDep, StateDep
from server.api.portal import client_address
from server.errors import Throttled, Unauthenticated

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["auth"])


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=40)
    password: str = Field(min_length=1, max_length=200)


def operator_json(op: Operator) -> dict[str, Any]:
    return {
        "username": op.username,
        "display_name": op.display_name,
        "police_no": op.police_no,
        "role": op.role.value,
        "units": sorted(op.units),
    }


def throttled(wait_s: float) -> Throttled:
    if wait_s > 60:
        minutes = math.ceil(wait_s / 60)
        return Throttled(
            f"登录失败次数过多，请{minutes}分钟后再试 (too many failed logins; try again in {minutes} min)"
        )
    seconds = math.ceil(wait_s)
    return Throttled(f"登录尝试过于频繁，请{seconds}秒后再试 (too many login attempts; try again in {seconds} s)")


@router.post("/login")
async def login(body: Login, request: Request, response: Response, state: StateDep) -> dict[str, Any]:
    """Throttled per address and per account (``server.users.ThrottleRule`` says how), counted in the
    database for every worker (``server.login_throttle``)."""
    address = client_address(request)
    wait_s = await state.throttle.wait_s(address, body.username)
    if wait_s > 0:
        raise throttled(wait_s)
    user = await state.users.authenticate(body.username, body.password)
    if user is None:
        await state.throttle.failed(address, body.username)
        logger.warning("console login failed")
        raise Unauthenticated("用户名或密码错误，请重新输入 (wrong username or password)")
    await state.throttle.succeeded(address, body.username)
    token, expires = await state.users.open_session(user, timedelta(hours=state.cfg.http.session_ttl_h))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        expires=expires,
        httponly=True,
        samesite="strict",
        secure=state.cfg.http.secure_cookies,
        path="/",
    )
    logger.info("operator %d logged in", user.id)
    return operator_json(Operator.of(user))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, response: Response, state: StateDep) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await state.users.close_session(token)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me")
async def me(operator: OperatorDep) -> dict[str, Any]:
    return operator_json(operator)
