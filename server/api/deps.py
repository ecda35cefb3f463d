"""Typed dependencies: the worker's state, who is acting, and the case they may see.

A route names what it needs (``OperatorDep``, ``DispatcherDep``, ``CaseDep``, ``ActorDep``) and
gets it checked, so a refusal is the same everywhere. FastAPI resolves a route's dependencies in
the order of its parameters: a role (``DispatcherDep``, ``OfficerDep``) is put before ``CaseDep``,
so an operator of the wrong role hears 403 before anything about the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request, WebSocket
from fastapi.requests import HTTPConnection

from server.api.state import ServerState
from server.casework.events import Actor
from server.db.models import Case, User
from server.errors import Forbidden, NoSuchCase, Unauthenticated
from server.users import Role

SESSION_COOKIE = "kc_session"
ROLE_NAMES = {Role.ADMIN: "管理员", Role.DISPATCHER: "接警员", Role.OFFICER: "民警", Role.REVIEWER: "复核民警"}


@dataclass(frozen=True)
class Operator:
    id: int
    username: str
    display_name: str
    role: Role
    units: frozenset[str]
    police_no: str | None = None  # 警号, an officer's

    @classmethod
    def of(cls, user: User) -> Operator:
        units = frozenset(u.adcode for u in user.units)
        return cls(user.id, user.username, user.display_name, Role(user.role), units, user.police_no)

    @property
    def visible_units(self) -> frozenset[str] | None:
        """The units whose cases this operator may see; None means all of them."""
        return None if self.role is Role.ADMIN else self.units

    def sees(self, adcode: str) -> bool:
        return self.role is Role.ADMIN or adcode in self.units


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.kuaichu
    return state


def get_ws_state(websocket: WebSocket) -> ServerState:
    state: ServerState = websocket.app.state.kuaichu
    return state


async def operator_from_token(state: ServerState, token: str | None) -> Operator | None:
    if not token:
        return None
    user = await state.users.session_user(token)
    return Operator.of(user) if user else None


async def current_operator(request: Request, state: Annotated[ServerState, Depends(get_state)]) -> Operator:
    operator = await operator_from_token(state, request.cookies.get(SESSION_COOKIE))
    if operator is None:
        raise Unauthenticated("请先登录 (login required)")
    return operator


def role_required(role: Role) -> Any:
    """A dependency that lets only operators of ``role`` through."""

    async def check(operator: Annotated[Operator, Depends(current_operator)]) -> Operator:
        if operator.role is not role:
            raise Forbidden(f"仅限{ROLE_NAMES[role]}操作 ({role.value}s only)")
        return operator

    return Depends(check)


def actor(operator: Operator, connection: HTTPConnection) -> Actor:
    """The operator as the case log names them, from the address of their request or console socket."""
    return Actor(operator.id, operator.username, connection.client.host if connection.client else "unknown")


# A row id as a path names it: no more than the database's 64-bit keys hold, so that
# /api/cases/99999999999999999999 is refused in words (server/api/validation.py) rather than
# overflowing in the database driver (a 500).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


async def acting(operator: Annotated[Operator, Depends(current_operator)], request: Request) -> Actor:
    return actor(operator, request)


async def visible_case(
    case_id: RowId,
    operator: Annotated[Operator, Depends(current_operator)],
    state: Annotated[ServerState, Depends(get_state)],
) -> Case:
    """The case of the path's ``case_id``. Someone else's case is reported as absent, as in the
    queue, so ids do not leak which cases exist."""
    case = await state.cases.get(case_id)
    if case is None or not operator.sees(case.unit_adcode):
        raise NoSuchCase()
    return case


StateDep = Annotated[ServerState, Depends(get_state)]
OperatorDep = Annotated[Operator, Depends(current_operator)]
AdminDep = Annotated[Operator, role_required(Role.ADMIN)]
DispatcherDep = Annotated[Operator, role_required(Role.DISPATCHER)]
OfficerDep = Annotated[Operator, role_required(Role.OFFICER)]
ReviewerDep = Annotated[Operator, role_required(Role.REVIEWER)]
ActorDep = Annotated[Actor, Depends(acting)]
CaseDep = Annotated[Case, Depends(visible_case)]
