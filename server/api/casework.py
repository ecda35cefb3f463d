"""The dispatcher's work on a case over HTTP: parties, checks, facts, escalation, hand-over.

Reading a case's work is open to every operator who serves its unit; changing it is for
dispatchers only. Someone else's case answers 404, as in the queue.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.requests import HTTPConnection
from pydantic import BaseModel, ConfigDict, Field

from protocol.messages import Command
from server.api.deps import DispatcherDep, Operator, OperatorDep, StateDep
from server.api.state import ServerState
from server.casework.events import Actor
from server.casework.parties import FactsIn, PartyIn, StatementIn
from server.casework.store import CaseWorkError, party_json, statement_json

router = APIRouter(prefix="/api/cases/{case_id}", tags=["case work"])


class EscalationBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str | None = Field(default=None, max_length=300, description="default: the eligibility reason")


def actor(operator: Operator, connection: HTTPConnection) -> Actor:
    """The operator as the case log names them, from the address of their request or console socket."""
    return Actor(operator.id, operator.username, connection.client.host if connection.client else "unknown")


async def visible_case(state: ServerState, operator: Operator, case_id: int) -> None:
    case = await state.cases.get(case_id)
    if case is None or not operator.sees(case.unit_adcode):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")


async def changed(state: ServerState, work: dict[str, Any]) -> dict[str, Any]:
    """Tell every console of the case's new state; returns ``work``."""
    await state.outbound.case_changed(work["case"])
    return work


def refused(exc: CaseWorkError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@router.get("/work")
async def work(case_id: int, operator: OperatorDep, state: StateDep) -> dict[str, Any]:
    await visible_case(state, operator, case_id)
    return await state.work.work(case_id)


@router.get("/events")
async def events(case_id: int, operator: OperatorDep, state: StateDep) -> dict[str, Any]:
    """The case's log, and whether its chain is whole."""
    await visible_case(state, operator, case_id)
    return await state.work.events(case_id)


@router.post("/parties", status_code=status.HTTP_201_CREATED)
async def add_party(
    case_id: int, body: PartyIn, operator: DispatcherDep, state: StateDep, request: Request
) -> dict[str, Any]:
    await visible_case(state, operator, case_id)
    try:
        return party_json(await state.work.add_party(case_id, body, actor(operator, request)))
    except CaseWorkError as exc:
        raise refused(exc) from None


@router.put("/parties/{party_id}")
async def update_party(
    case_id: int, party_id: int, body: PartyIn, operator: DispatcherDep, state: StateDep, request: Request
) -> dict[str, Any]:
    await visible_case(state, operator, case_id)
    try:
        return party_json(await state.work.update_party(case_id, party_id, body, actor(operator, request)))
    except CaseWorkError as exc:
        raise refused(exc) from None


@router.put("/facts")
async def set_facts(
    case_id: int, body: FactsIn, operator: DispatcherDep, state: StateDep, request: Request
) -> dict[str, Any]:
    await visible_case(state, operator, case_id)
    try:
        await state.work.set_facts(case_id, body, actor(operator, request))
    except CaseWorkError as exc:
        raise refused(exc) from None
    return await state.work.work(case_id)


@router.post("/checks")
async def run_checks(case_id: int, operator: DispatcherDep, state: StateDep, request: Request) -> dict[str, Any]:
    await visible_case(state, operator, case_id)
    try:
        await state.work.run_checks(case_id, actor(operator, request))
    except CaseWorkError as exc:
        raise refused(exc) from None
    return await state.work.work(case_id)


@router.post("/escalate")
async def escalate(
    case_id: int, body: EscalationBody, operator: DispatcherDep, state: StateDep, request: Request
) -> dict[str, Any]:
    await visible_case(state, operator, case_id)
    try:
        await state.work.escalate(case_id, body.reason, actor(operator, request))
    except CaseWorkError as exc:
        raise refused(exc) from None
    return await changed(state, await state.work.work(case_id))


@router.post("/statements", status_code=status.HTTP_201_CREATED)
async def add_statement(
    case_id: int, body: StatementIn, operator: DispatcherDep, state: StateDep, request: Request
) -> dict[str, Any]:
    await visible_case(state, operator, case_id)
    try:
        return statement_json(await state.work.add_statement(case_id, body, actor(operator, request)))
    except CaseWorkError as exc:
        raise refused(exc) from None


@router.post("/clear-road")
async def clear_road(case_id: int, operator: DispatcherDep, state: StateDep, request: Request) -> dict[str, Any]:
    """Tell the reporting unit to have the parties leave: it speaks and shows it."""
    await visible_case(state, operator, case_id)
    try:
        case = await state.work.clearable(case_id)
    except CaseWorkError as exc:
        raise refused(exc) from None
    command = Command(type="road.clear", case_no=case.case_no)
    if not await state.outbound.command(case.device_id, command):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the broker did not take the command; try again")
    await state.work.road_cleared(case_id, actor(operator, request))
    return await changed(state, await state.work.work(case_id))


@router.post("/hand-over")
async def hand_over(case_id: int, operator: DispatcherDep, state: StateDep, request: Request) -> dict[str, Any]:
    await visible_case(state, operator, case_id)
    try:
        await state.work.hand_over(case_id, actor(operator, request))
    except CaseWorkError as exc:
        raise refused(exc) from None
    return await changed(state, await state.work.work(case_id))
