"""Typed dependencies: the worker's state and the logged-in operator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, WebSocket, status

from server.api.state import ServerState
from server.db.models import User
from server.users import Role

SESSION_COOKIE = "kc_session"


@dataclass(frozen=True)
class Operator:
    id: int
    username: str
    display_name: str
    role: Role
    units: frozenset[str]

    @classmethod
    def of(cls, user: User) -> Operator:
        return cls(user.id, user.username, user.display_name, Role(user.role), frozenset(u.adcode for u in user.units))

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
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "login required")
    return operator


async def current_admin(operator: Annotated[Operator, Depends(current_operator)]) -> Operator:
    if operator.role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admins only")
    return operator


def role_required(role: Role) -> Any:
    """A dependency that lets only operators of ``role`` through."""

    async def check(operator: Annotated[Operator, Depends(current_operator)]) -> Operator:
        if operator.role is not role:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{role.value}s only")
        return operator

    return Depends(check)


StateDep = Annotated[ServerState, Depends(get_state)]
OperatorDep = Annotated[Operator, Depends(current_operator)]
AdminDep = Annotated[Operator, Depends(current_admin)]
DispatcherDep = Annotated[Operator, role_required(Role.DISPATCHER)]
OfficerDep = Annotated[Operator, role_required(Role.OFFICER)]
