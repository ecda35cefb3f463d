"""What the console tells a case's reporting unit beyond the call: the dispatcher's instruction to the
parties, the end of the unit's part in the case, and a remote self-test from the fleet page.

An instruction is for a case still being handled at the scene (``new``); it is kept in the case's
log like every other word to the parties. The unit's part ends when the case is handed over or
escalated (``release_unit``): without being told, a unit stayed ``in_case`` for its whole
``case_hold_s`` and a kiosk sent the next walk-up party's press to a case long gone.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from protocol.messages import Command, utc_iso
from server.api.deps import ActorDep, AdminDep, CaseDep, DispatcherDep, StateDep
from server.api.devices import DeviceIdPath
from server.api.state import ServerState
from server.cases import now_utc
from server.casework.events import append
from server.db.models import Case
from server.errors import Conflict, NotFound, Unavailable
from server.lifecycles.case import CaseStatus

logger = logging.getLogger(__name__)
router = APIRouter(tags=["units"])

NOT_TAKEN = "消息服务器未接收指令，请重试 (the broker did not take the command; try again)"


class InstructionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=200, description="what the parties are to do, as the kiosk shows it")


@router.post("/api/cases/{case_id}/instruct")
async def instruct(
    body: InstructionBody, operator: DispatcherDep, case: CaseDep, actor: ActorDep, state: StateDep
) -> dict[str, Any]:
    """The instruction on the unit's screen (a kiosk); an in-car unit beeps and the dispatcher says it."""
    if case.device_id is None:
        raise Conflict(
            "本案由手机报警，没有可显示提示的设备，请在通话中告知 (reported from a phone: say it on the call)"
        )
    if case.status != CaseStatus.NEW:
        raise Conflict(
            "案件已离开现场处理阶段，设备不再显示本案 (the case is past the scene; its unit shows it no more)"
        )
    if not await state.outbound.command(
        case.device_id, Command(type="instruction", case_no=case.case_no, text=body.text)
    ):
        raise Unavailable(NOT_TAKEN)
    now = now_utc()
    async with state.cases.sessions.begin() as session:
        await append(session, case.id, actor, "unit.instruction", {"text": body.text}, now)
    return {"case_no": case.case_no, "device_id": case.device_id, "text": body.text, "sent_at": utc_iso(now)}


async def release_unit(state: ServerState, case: Case) -> None:
    """Tell the case's unit its part is over, so that it is free for the next report at once. Not
    taken by the broker, the unit's own ``case_hold_s`` still frees it: logged, not refused."""
    if case.device_id is None:
        return
    if not await state.outbound.command(case.device_id, Command(type="case.closed", case_no=case.case_no)):
        logger.warning("case %s: case.closed not sent to %s; its case hold frees it", case.case_no, case.device_id)


@router.post("/api/devices/{device_id}/selftest", status_code=status.HTTP_202_ACCEPTED)
async def remote_selftest(device_id: DeviceIdPath, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    """Ask a unit to test itself while its firmware runs; the result arrives on its selftest topic
    and shows on the fleet page (a result newer than ``requested_at``)."""
    device = await state.devices.get(device_id)
    if device is None:
        raise NotFound("设备不存在 (no such device)")
    if not device.online:
        raise Conflict("设备离线，无法远程自检 (the device is offline)")
    requested_at = now_utc()
    if not await state.outbound.command(device_id, Command(type="selftest.run")):
        raise Unavailable(NOT_TAKEN)
    logger.info("device %s: remote self-test asked by operator %d", device_id, admin.id)
    return {"device_id": device_id, "requested_at": utc_iso(requested_at)}
