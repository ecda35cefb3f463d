"""The console's demo panel: press the button of a simulated device running on this machine.

Present only when the server is configured with ``demo.control_dir`` (``kuaichu demo`` does this);
it drives the simulated device's GPIO pin through the device's control socket, so the press goes
through the same firmware path as a real one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from device.sim.control import send_control
from protocol.topics import DEVICE_ID_PATTERN
from server.api.deps import OperatorDep, StateDep
from server.errors import NotFound, Unavailable

router = APIRouter(prefix="/api/demo", tags=["demo"])


class Press(BaseModel):
    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    trigger: Literal["button", "hazard"] = "button"


def _control_dir(state: StateDep) -> Path:
    control_dir = state.cfg.demo.control_dir
    if control_dir is None:
        raise NotFound("这不是演示服务器 (not a demo server)")
    return control_dir


@router.get("/devices")
async def devices(operator: OperatorDep, state: StateDep) -> list[str]:
    return sorted(p.stem for p in _control_dir(state).glob("*.sock"))


@router.post("/press")
async def press(body: Press, operator: OperatorDep, state: StateDep) -> dict[str, Any]:
    sock = _control_dir(state) / f"{body.device_id}.sock"
    if not sock.exists():
        raise NotFound("没有这台模拟设备 (no such simulated device)")
    command: dict[str, Any] = {"cmd": "press"} if body.trigger == "button" else {"cmd": "hazard", "on": True}
    try:
        return await send_control(sock, command)
    except OSError as exc:
        raise Unavailable(f"模拟设备没有应答，请重启演示 (simulated device not answering: {exc})") from None
