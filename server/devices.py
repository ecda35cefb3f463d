"""What the server knows of each device: its registration, presence, heartbeats and self-tests.

Intake writes what devices say (``record``); the provisioning station writes what the fleet's
operator decided (``register``, ``retire``); the fleet page reads both (``list``). A retired
device's traffic is dropped here, so a unit cut off at the broker stays cut off even for what the
broker had queued before the revocation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.datum import wgs84_to_gcj02
from protocol.messages import CheckStatus, DeviceKind, Heartbeat, Presence, SelfTest, Site, Vehicle, utc_iso
from server.db.models import Device, DeviceStatus
from server.errors import Conflict

logger = logging.getLogger(__name__)

Status = tuple[str, Presence | Heartbeat | SelfTest]


@dataclass(frozen=True)
class Registration:
    """What the provisioning station tells the server about a device it has issued a bundle for."""

    kind: DeviceKind
    cert_fingerprint: str
    vehicle: Vehicle | None = None
    site: Site | None = None


class DeviceStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, statuses: list[Status], now: datetime) -> None:
        """Every presence change, heartbeat and self-test of a batch in one transaction, in arrival order."""
        async with self._sessions.begin() as session:
            ids = {device_id for device_id, _ in statuses}
            devices = {d.id: d for d in (await session.scalars(select(Device).where(Device.id.in_(ids)))).all()}
            for device_id, status in statuses:
                device = devices.get(device_id)
                if device is not None and device.status == DeviceStatus.RETIRED:
                    continue
                if device is None:
                    if isinstance(status, Presence):
                        continue  # its kind comes with its first report, heartbeat or self-test
                    device = devices[device_id] = Device(id=device_id, kind=status.device_kind.value, first_seen=now)
                    session.add(device)
                if isinstance(status, Heartbeat):
                    _set_online(device, True, now)
                    device.firmware = status.health.firmware
                    device.last_heartbeat = status.model_dump(mode="json", exclude_none=True)
                    device.last_heartbeat_at = now
                elif isinstance(status, SelfTest):
                    device.firmware = status.firmware
                    device.last_selftest = status.model_dump(mode="json", exclude_none=True)
                    device.last_selftest_at = now
                    failed = [c.name for c in status.checks if c.status is CheckStatus.FAIL]
                    logger.info(
                        "device %s: self-test %s%s",
                        device_id,
                        "passed" if status.passed else "failed",
                        f" ({', '.join(failed)})" if failed else "",
                    )
                else:
                    _set_online(device, status.state == "online", now)
                    if status.firmware:
                        device.firmware = status.firmware
                device.last_seen = now

    async def register(self, device_id: str, registration: Registration, now: datetime) -> Device:
        """Create or update a device's registration; a retired device id is never brought back."""
        async with self._sessions.begin() as session:
            device = await session.get(Device, device_id)
            if device is not None and device.status == DeviceStatus.RETIRED:
                raise Conflict(
                    f"设备 {device_id} 已停用，请为新设备另配编号 "
                    f"(device {device_id} is retired; provision a new device id)"
                )
            if device is None:
                device = Device(id=device_id, kind=registration.kind.value)
                session.add(device)
            elif device.kind != registration.kind.value:
                raise Conflict(
                    f"设备 {device_id} 的类型与登记不符 "
                    f"(device {device_id} is known as {device.kind}, not {registration.kind.value})"
                )
            device.status = DeviceStatus.REGISTERED.value
            device.registered_at = device.registered_at or now
            device.cert_fingerprint = registration.cert_fingerprint
            device.plate = registration.vehicle.plate if registration.vehicle else None
            device.vin = registration.vehicle.vin if registration.vehicle else None
            device.site = registration.site.model_dump(mode="json", exclude_none=True) if registration.site else None
            return device

    async def retire(self, device_id: str, kind: DeviceKind, now: datetime) -> Device:
        """Mark a device retired (idempotent). An unknown id is recorded as retired too: the
        revocation may reach the server before the registration or the device ever did."""
        async with self._sessions.begin() as session:
            device = await session.get(Device, device_id)
            if device is None:
                device = Device(id=device_id, kind=kind.value)
                session.add(device)
            if device.status != DeviceStatus.RETIRED:
                device.status = DeviceStatus.RETIRED.value
                device.retired_at = now
                device.online = False
                logger.info("device %s retired", device_id)
            return device

    async def list(self) -> list[Device]:
        async with self._sessions() as session:
            return list((await session.scalars(select(Device).order_by(Device.id))).all())

    async def get(self, device_id: str) -> Device | None:
        async with self._sessions() as session:
            return await session.get(Device, device_id)


def _set_online(device: Device, online: bool, now: datetime) -> None:
    if device.online != online or device.state_since is None:
        device.state_since = now
    device.online = online


def fleet_entry(device: Device, now: datetime, offline_alert: timedelta) -> dict[str, Any]:
    """What the fleet page shows of a device, with the alert decided here rather than in the browser.

    The alert fires for a device that has been offline, or silent while nominally online (a
    connection the broker has not yet noticed is dead), for longer than ``offline_alert``. A
    retired device never alerts; a device never heard from alerts once it is overdue since its
    registration.
    """
    heard = device.last_seen or device.registered_at
    if device.status == DeviceStatus.RETIRED or heard is None:
        alert = False
    elif device.online:
        alert = now - heard > offline_alert
    else:
        alert = now - (device.state_since or heard) > offline_alert
    heartbeat = device.last_heartbeat or {}
    selftest = device.last_selftest
    return {
        "id": device.id,
        "kind": device.kind,
        "status": device.status,
        "online": device.online and device.status != DeviceStatus.RETIRED,
        "state_since": _iso(device.state_since),
        "last_seen": _iso(device.last_seen),
        "last_heartbeat_at": _iso(device.last_heartbeat_at),
        "registered_at": _iso(device.registered_at),
        "retired_at": _iso(device.retired_at),
        "firmware": device.firmware,
        "health": heartbeat.get("health"),
        "app_state": heartbeat.get("app_state"),
        "outbox_pending": heartbeat.get("outbox_pending"),
        "plate": device.plate,
        "site": device.site,
        "position": _where(device.site, heartbeat.get("position")),
        "selftest": None
        if selftest is None
        else {
            "at": _iso(device.last_selftest_at),
            "passed": selftest["passed"],
            "failed": [c["name"] for c in selftest["checks"] if c["status"] == CheckStatus.FAIL.value],
            "checks": selftest["checks"],
        },
        "alert": alert,
    }


def _where(site: dict[str, Any] | None, fix: dict[str, Any] | None) -> dict[str, Any] | None:
    """Where the fleet map puts a unit, in GCJ-02 as the district outlines are: a kiosk's surveyed
    site, else the last heartbeat's fix (an in-car unit that never had one is listed beside the map)."""
    if site is not None:
        lon, lat = wgs84_to_gcj02(site["lon"], site["lat"])
        return {"lon": lon, "lat": lat, "source": "site", "at": None}
    if fix is not None:
        lon, lat = wgs84_to_gcj02(fix["lon"], fix["lat"])
        return {"lon": lon, "lat": lat, "source": "fix", "at": fix["time"]}
    return None


def _iso(value: datetime | None) -> str | None:
    return utc_iso(value) if value else None
