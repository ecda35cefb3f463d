"""The fleet over HTTP, for admins: what the fleet page shows, and the provisioning station's
registrations and retirements."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from protocol.messages import DeviceKind, Site, Vehicle, utc_iso
from protocol.topics import DEVICE_ID_PATTERN
from server.api.deps import AdminDep, StateDep
from server.cases import now_utc
from server.devices import Registration, fleet_entry
from server.errors import Invalid, NotFound

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/devices", tags=["fleet"])

DeviceIdPath = Annotated[str, Path(pattern=DEVICE_ID_PATTERN)]


class RegistrationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DeviceKind
    cert_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the device certificate (DER)")
    vehicle: Vehicle | None = None
    site: Site | None = None


class RetirementBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DeviceKind


@router.get("")
async def fleet(admin: AdminDep, state: StateDep) -> dict[str, Any]:
    now = now_utc()
    alert_after = timedelta(minutes=state.cfg.fleet.offline_alert_min)
    devices = [fleet_entry(d, now, alert_after) for d in await state.devices.list()]
    return {"now": utc_iso(now), "offline_alert_min": state.cfg.fleet.offline_alert_min, "devices": devices}


@router.get("/{device_id}")
async def device(device_id: DeviceIdPath, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    found = await state.devices.get(device_id)
    if found is None:
        raise NotFound("设备不存在 (no such device)")
    return fleet_entry(found, now_utc(), timedelta(minutes=state.cfg.fleet.offline_alert_min))


@router.put("/{device_id}")
async def register(device_id: DeviceIdPath, body: RegistrationBody, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    if (body.kind is DeviceKind.IN_CAR) != (body.vehicle is not None) or (body.kind is DeviceKind.KIOSK) != (
        body.site is not None
    ):
        raise Invalid("车载设备须登记车辆，报警亭须登记站点 (an in-car unit has a vehicle, a kiosk a site)")
    registration = Registration(body.kind, body.cert_fingerprint, body.vehicle, body.site)
    registered = await state.devices.register(device_id, registration, now_utc())
    logger.info("device %s registered by operator %d", device_id, admin.id)
    return fleet_entry(registered, now_utc(), timedelta(minutes=state.cfg.fleet.offline_alert_min))


@router.post("/{device_id}/retire")
async def retire(device_id: DeviceIdPath, body: RetirementBody, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    retired = await state.devices.retire(device_id, body.kind, now_utc())
    logger.info("device %s retired by operator %d", device_id, admin.id)
    return fleet_entry(retired, now_utc(), timedelta(minutes=state.cfg.fleet.offline_alert_min))
