"""The objects a running server worker shares between its API routes and its MQTT intake."""

from __future__ import annotations

from dataclasses import dataclass

from server.cases import CaseStore
from server.config import ServerConfig
from server.events import CaseHub
from server.users import UserStore


@dataclass(frozen=True)
class ServerState:
    cfg: ServerConfig
    cases: CaseStore
    users: UserStore
    hub: CaseHub
