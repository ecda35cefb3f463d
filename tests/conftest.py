"""Shared fixtures: the session's fleet PKI, a private mutual-TLS Mosquitto per test running the
provisioned configuration, server workers in this event loop, operators."""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.config import ServerConfig
from server.db.engine import make_engine, make_sessionmaker, upgrade_schema
from server.users import Role, UserStore
from server.worker import serve
from tests import pki
from tests.services import Mosquitto, free_port

PASSWORD = "correct horse battery"


# Modules that start the whole system (kuaichu demo; a unit's self-test against broker and server).
WHOLE_STACK = {"tests.test_demo", "tests.test_selftest"}
# Modules slow for a reason of their own.
SLOW = {"tests.test_api_fuzz": "calls every HTTP operation with generated requests as each kind of user"}


def slow_because(module: types.ModuleType) -> str | None:
    """Why a test module's tests are end to end and slow, if they are, read off what the module uses:
    a headless browser (tests.browser), aiortc calls, a device's firmware run against the broker and
    a server (tests.devices.running_device, start_device), firmware releases (tests.releases), or a
    benchmark run as a test."""
    if module.__name__.rpartition(".")[2].startswith("test_bench_"):
        return "runs a benchmark"
    if module.__name__ in WHOLE_STACK:
        return "runs the whole stack as separate processes"
    if module.__name__ in SLOW:
        return SLOW[module.__name__]
    for value in vars(module).values():
        origin = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if not isinstance(origin, str):
            continue
        if origin == "tests.browser":
            return "drives headless Chromium"
        if origin == "tests.calls" or origin.split(".")[0] == "aiortc":
            return "makes aiortc calls"
        if origin == "tests.devices" and getattr(value, "__name__", "") in {"running_device", "start_device"}:
            return "runs a device's firmware against the broker and a server"
        if origin == "tests.releases" and getattr(value, "__name__", "") == "release_base":
            return "builds the firmware's wheel and makes releases from it (signed, installed into virtualenvs)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the slow end-to-end tests ``slow`` (pyproject.toml): ``pytest -m "not slow"`` is the fast part."""
    reasons: dict[str, str | None] = {}
    for item in items:
        module = getattr(item, "module", None)
        if module is None:
            continue
        if module.__name__ not in reasons:
            reasons[module.__name__] = slow_because(module)
        if reasons[module.__name__] is not None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def fleet_pki() -> Iterator[pki.FleetPki]:
    with pki.session_pki() as made:
        yield made


@pytest.fixture
def broker(tmp_path: Path, fleet_pki: pki.FleetPki) -> Iterator[Mosquitto]:
    with fleet_pki.mosquitto(tmp_path / "mosquitto.log") as running:
        yield running


def make_server_config(
    data_dir: Path,
    broker_port: int,
    *,
    database_url: str | None = None,
    worker_id: str = "w1",
    control_dir: Path | None = None,
) -> ServerConfig:
    return ServerConfig.model_validate(
        {
            "server": {"data_dir": data_dir, "worker_id": worker_id},
            "broker": {
                "host": "127.0.0.1",
                "port": pki.current().server_port(broker_port),  # the server workers' listener
                "session_expiry_s": 300,
                "tls": pki.current().server_tls().model_dump(),
            },
            "database": {"url": database_url},
            "http": {"host": "127.0.0.1", "port": free_port(), "secure_cookies": False},
            "demo": {"control_dir": control_dir},
        }
    )


@dataclass
class RunningServer:
    cfg: ServerConfig
    task: asyncio.Task[None]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.http.port}"

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def start_server(cfg: ServerConfig) -> RunningServer:
    ready = asyncio.Event()
    task = asyncio.create_task(serve(cfg, ready))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()
    if waiter not in done:
        task.cancel()
        raise TimeoutError("server did not become ready")
    return RunningServer(cfg, task)


@pytest.fixture
async def server(tmp_path: Path, broker: Mosquitto) -> AsyncIterator[RunningServer]:
    running = await start_server(make_server_config(tmp_path / "server", broker.port))
    yield running
    await running.stop()


async def add_user(cfg: ServerConfig, username: str, role: Role, units: list[str], password: str = PASSWORD) -> None:
    await upgrade_schema(cfg.database_url)
    engine = make_engine(cfg.database_url)
    try:
        await UserStore(make_sessionmaker(engine)).add_user(username, password, role, units)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def font_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One determination font for the session (server/casework/font.py), built here once: it takes
    ~10 s, which would otherwise land in the first test's request."""
    from server.casework.font import DocumentFont

    folder = tmp_path_factory.mktemp("fonts")
    DocumentFont(folder).prepare()
    return folder


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[str]:
    from tests.services import postgresql

    with postgresql() as url:
        yield url


@pytest.fixture
def pg_url(pg_cluster: str) -> str:
    """A fresh, empty database in the session's throwaway cluster."""
    from tests.services import create_database

    return create_database(pg_cluster)


@pytest.fixture(params=["sqlite", "postgresql"])
async def case_server(
    request: pytest.FixtureRequest, tmp_path: Path, broker: Mosquitto
) -> AsyncIterator[RunningServer]:
    """A worker for the case-work tests, on each database, with the demo registry and the operators
    of two districts: dispatchers wuhua (530102) and guandu (530111), officers officer (530102) and
    guandu-officer (530111)."""
    from tests.casework_data import seed_registry

    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    server = await start_server(make_server_config(tmp_path / "server", broker.port, database_url=url))
    await seed_registry(server.cfg.database_url, tmp_path / "registry")
    await add_user(server.cfg, "wuhua", Role.DISPATCHER, ["530102"])
    await add_user(server.cfg, "guandu", Role.DISPATCHER, ["530111"])
    await add_user(server.cfg, "officer", Role.OFFICER, ["530102"])
    await add_user(server.cfg, "guandu-officer", Role.OFFICER, ["530111"])
    yield server
    await server.stop()
