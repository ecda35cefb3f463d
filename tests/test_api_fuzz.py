"""The HTTP API fuzzed from its own OpenAPI document (Schemathesis), as each kind of user: no
request gets a server error, and no response carries a case or a phone number the user may not see.

Two cases are seeded: one of 五华 (530102) whose two parties have phones, one of 官渡 (530111) with a
party of its own. The users: an admin (sees everything), a dispatcher, an officer and a reviewer of
五华 only, the first party of the 五华 case in their own session, an insurer with its API key, and
a stranger with no session at all. Every operation in ``/openapi.json`` is called with requests
generated from its schema, as each of them in turn.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from protocol.messages import encode
from server.cases import now_utc
from server.db.engine import make_engine, make_sessionmaker
from server.insurers.directory import add_insurer, demo_insurers
from server.users import Role
from tests.casework_data import DRIVER_B, driver
from tests.conftest import RunningServer, add_user
from tests.insurers import API
from tests.parties import PHONE_A, PHONE_B, case_with_parties, logged_in_party, stack
from tests.reports import GUANDU, in_car_report
from tests.services import Mosquitto
from tests.sms_provider import Provider
from tests.wire import Console, publish_report, raw_device

__all__ = ["stack"]

PHONE_C = "13600009999"  # the 官渡 case's party
# Calls that would end the very session being fuzzed; everything else is called as it comes.
SESSION_ENDERS = {("POST", "/api/logout"), ("POST", "/api/portal/logout")}
EXAMPLES = 4  # per operation and user: enough to reach every route's handler, bounded for the suite


@dataclass
class User:
    name: str
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)  # what must never appear in a response to them
    shown: set[str] = field(default_factory=set)


async def _other_unit_case(server: RunningServer, broker: Mosquitto) -> str:
    """A 官渡 case with one party, added by 官渡's own dispatcher."""
    async with raw_device(broker.port, "car-0700") as (client, acks):
        await publish_report(client, "car-0700", encode(in_car_report("car-0700", GUANDU)))
        ack = await asyncio.wait_for(acks.get(), 10)
    assert ack.case_no is not None and ack.case_no.startswith("530111")
    await add_user(server.cfg, "guandu", Role.DISPATCHER, ["530111"])
    guandu = Console(server.url)
    try:
        assert (await guandu.login("guandu", "correct horse battery")).status_code == 200
        cid = next(c["id"] for c in (await guandu.http.get("/api/cases")).json() if c["case_no"] == ack.case_no)
        added = await guandu.http.post(f"/api/cases/{cid}/parties", json=driver(DRIVER_B, phone=PHONE_C))
        assert added.status_code == 201, added.text
    finally:
        await guandu.close()
    return ack.case_no


async def _console_cookies(server: RunningServer, username: str) -> dict[str, str]:
    console = Console(server.url)
    try:
        assert (await console.login(username, "correct horse battery")).status_code == 200
        return dict(console.http.cookies.items())
    finally:
        await console.close()


async def _insurer_key(server: RunningServer) -> str:
    engine = make_engine(server.cfg.database_url)
    try:
        (spec,) = demo_insurers({"PICC": "http://127.0.0.1:9/webhooks"})
        made = await add_insurer(make_sessionmaker(engine), spec, now_utc())
    finally:
        await engine.dispose()
    assert made.api_key
    return made.api_key


def _reason(body: bytes) -> bool:
    """A refusal that says in Chinese what happened (a unit that did not answer is a 504, not a fault)."""
    return re.search("[\u4e00-\u9fff]", body.decode(errors="replace")) is not None


def _fuzz(schema: Any, base_url: str, users: list[User], watched: list[str]) -> list[str]:
    """Every operation, as every user: the server errors, one line each, and which of ``watched``
    each user was shown (in ``User.shown``). Runs on a thread: the server answers on the test's
    event loop meanwhile."""
    errors: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in SESSION_ENDERS:
            for user in users:
                errors += _fuzz_as(operation, user, base_url, watched)
    return errors


def _fuzz_as(operation: Any, user: User, base_url: str, watched: list[str]) -> list[str]:
    errors: list[str] = []
    with requests.Session() as http:
        http.cookies.update(user.cookies)
        http.headers.update(user.headers)

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy() | operation.as_strategy(GenerationMode.NEGATIVE))
        def call(case: Any) -> None:
            response = case.call(base_url=base_url, session=http, timeout=30)
            body = response.content  # documents and photos too, not only JSON
            if response.status_code == 500 or (response.status_code > 500 and not _reason(body)):
                where = f"{user.name}: {case.method} {case.formatted_path}"
                errors.append(f"{where} -> {response.status_code} {body[:200].decode(errors='replace')}")
            user.shown.update(value for value in watched if value.encode() in body)

        call()
    return errors


async def test_every_operation_as_every_user_gives_no_server_error_and_leaks_nothing(
    stack: tuple[RunningServer, Provider, Mosquitto],
) -> None:
    server, provider, broker = stack
    case_a, _ = await case_with_parties(server, broker)
    case_b = await _other_unit_case(server, broker)
    party, _token = await logged_in_party(server, provider, PHONE_A)
    party_cookies = dict(party.cookies.items())
    await party.aclose()
    await add_user(server.cfg, "admin", Role.ADMIN, [])
    await add_user(server.cfg, "reviewer", Role.REVIEWER, ["530102"])
    wuhua_only = {case_b, PHONE_C}
    users = [
        User("admin", await _console_cookies(server, "admin")),
        User("dispatcher", await _console_cookies(server, "wuhua"), secrets=wuhua_only),
        User("officer", await _console_cookies(server, "officer"), secrets=wuhua_only),
        User("reviewer", await _console_cookies(server, "reviewer"), secrets=wuhua_only),
        # The other party's number in full: a party sees it masked (test_portal_api.py).
        User("party", party_cookies, secrets={*wuhua_only, PHONE_B}),
        User(
            "insurer",
            headers={"Authorization": f"Bearer {await _insurer_key(server)}"},
            secrets={case_a, case_b, PHONE_A, PHONE_B, PHONE_C},
        ),
        User("stranger", secrets={case_a, case_b, PHONE_A, PHONE_B, PHONE_C}),
    ]
    async with httpx.AsyncClient(base_url=server.url) as http:
        document = (await http.get("/openapi.json")).json()
        # Found by this fuzzing: a signature with non-ASCII in it was a 500 (hmac.compare_digest of str).
        forged = await http.get(f"{API}/links/PICC/evidence/1", params={"exp": 4102444800, "sig": "签名"})
        assert forged.status_code == 403, forged.text
    assert any(path.startswith(API) for path in document["paths"])
    schema = schemathesis.openapi.from_dict(document)
    everything = [case_a, case_b, PHONE_A, PHONE_B, PHONE_C]
    errors = await asyncio.to_thread(_fuzz, schema, server.url, users, everything)
    # The same error from several generated requests is one finding: fold the numbers away.
    assert sorted({re.sub(r"\d{3,}", "N", e) for e in errors}) == []
    assert {user.name: user.shown & user.secrets for user in users} == {user.name: set() for user in users}
    # The check can fail: the admin, who may see both cases, was shown them.
    assert {case_a, case_b} <= users[0].shown
