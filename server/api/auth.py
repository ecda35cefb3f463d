"""Login and logout. Sessions are HttpOnly, SameSite=Strict cookies; failed logins are throttled."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from server.api.deps import SESSION_COOKIE, Operator, OperatorDep, StateDep
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


@router.post("/login")
async def login(body: Login, response: Response, state: StateDep) -> dict[str, Any]:
    if state.throttle.blocked(body.username):
        raise Throttled("登录失败次数过多，请几分钟后再试 (too many failed logins; wait a few minutes)")
    user = await state.users.authenticate(body.username, body.password)
    if user is None:
        state.throttle.failed(body.username)
        logger.warning("console login failed")
        raise Unauthenticated("用户名或密码错误，请重新输入 (wrong username or password)")
    state.throttle.succeeded(body.username)
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
