"""The dispatcher's work on a case over HTTP: parties, checks, facts, escalation, hand-over.

Reading a case's work is open to every operator who serves its unit; changing it is for
dispatchers only. Someone else's case answers 404, as in the queue.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, status

from protocol.messages import Command
from server.api.deps import ActorDep, CaseDep, DispatcherDep, RowId, StateDep
from server.api.state import ServerState
from server.api.unit_commands import release_unit
from server.casework.escalation import EscalationIn
from server.casework.parties import FactsIn, PartyIn, StatementIn
from server.casework.store import party_json, statement_json
from server.errors import Invalid, Unavailable

router = APIRouter(prefix="/api/cases/{case_id}", tags=["case work"])
# A statement waits on the call's recording, so it is served where the calls are (the media worker).
statements = APIRouter(prefix="/api/cases/{case_id}", tags=["case work"])
STATEMENT_WAIT_S = 8.0  # a key frame asked for, the segment closed, hashed and kept


async def changed(state: ServerState, work: dict[str, Any]) -> dict[str, Any]:
    """Tell every console of the case's new state; returns ``work``."""
    await state.outbound.case_changed(work["case"])
    return work


@router.get("/work")
async def work(case: CaseDep, state: StateDep) -> dict[str, Any]:
    return await state.work.work(case.id)


@router.get("/events")
async def events(case: CaseDep, state: StateDep) -> dict[str, Any]:
    """The case's log, and whether its chain is whole."""
    return await state.work.events(case.id)


@router.post("/parties", status_code=status.HTTP_201_CREATED)
async def add_party(
    body: PartyIn, operator: DispatcherDep, case: CaseDep, actor: ActorDep, state: StateDep
) -> dict[str, Any]:
    return party_json(await state.work.add_party(case.id, body, actor))


@router.put("/parties/{party_id}")
async def update_party(
    party_id: RowId, body: PartyIn, operator: DispatcherDep, case: CaseDep, actor: ActorDep, state: StateDep
) -> dict[str, Any]:
    return party_json(await state.work.update_party(case.id, party_id, body, actor))


@router.put("/facts")
async def set_facts(
    body: FactsIn, operator: DispatcherDep, case: CaseDep, actor: ActorDep, state: StateDep
) -> dict[str, Any]:
    await state.work.set_facts(case.id, body, actor)
    return await state.work.work(case.id)


@router.post("/checks")
async def run_checks(operator: DispatcherDep, case: CaseDep, actor: ActorDep, state: StateDep) -> dict[str, Any]:
    await state.work.run_checks(case.id, actor)
    # Other consoles on the case and the parties' progress ("证件和保险已核验") follow it.
    return await changed(state, await state.work.work(case.id))


@router.post("/escalate")
async def escalate(
    body: EscalationIn, operator: DispatcherDep, case: CaseDep, actor: ActorDep, state: StateDep
) -> dict[str, Any]:
    """Cannot be undone: the page asks the dispatcher to confirm; a reason is required."""
    await state.work.escalate(case.id, body, actor)
    await release_unit(state, case)  # the officers take it on at the scene
    return await changed(state, await state.work.work(case.id))


@statements.post("/statements", status_code=status.HTTP_201_CREATED)
async def add_statement(
    body: StatementIn, operator: DispatcherDep, case: CaseDep, actor: ActorDep, state: StateDep
) -> dict[str, Any]:
    """Saved the moment the dispatcher marks its end: the open recording segment is closed on the
    spot and the request waits (a second or so) until it is kept; only closed, hashed segments
    count as covering a statement."""
    deadline = asyncio.get_running_loop().time() + STATEMENT_WAIT_S
    cut = False
    while True:
        try:
            return statement_json(await state.work.add_statement(case.id, body, actor))
        except Invalid as exc:
            if exc.code != "recording_pending" or asyncio.get_running_loop().time() > deadline:
                raise
            if not cut:
                cut = state.calls is not None and state.calls.cut_recording(case.id)
                if not cut:
                    raise  # the call is on another worker: the dispatcher is told to wait and save again
            await asyncio.sleep(0.2)


@router.post("/clear-road")
async def clear_road(operator: DispatcherDep, case: CaseDep, actor: ActorDep, state: StateDep) -> dict[str, Any]:
    """Tell the reporting unit to have the parties leave: it speaks and shows it."""
    case = await state.work.clearable(case.id)
    command = Command(type="road.clear", case_no=case.case_no)
    # A phone's report has no unit to speak it: the phone's progress page shows the step.
    if case.device_id is not None and not await state.outbound.command(case.device_id, command):
        raise Unavailable("消息服务器未接收指令，请重试 (the broker did not take the command; try again)")
    await state.work.road_cleared(case.id, actor)
    return await changed(state, await state.work.work(case.id))


@router.post("/hand-over")
async def hand_over(operator: DispatcherDep, case: CaseDep, actor: ActorDep, state: StateDep) -> dict[str, Any]:
    await state.work.hand_over(case.id, actor)
    await release_unit(state, case)
    return await changed(state, await state.work.work(case.id))
