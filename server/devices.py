"""What the server knows of each device's presence: online/offline and its last heartbeat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.messages import Heartbeat, Presence
from server.db.models import Device

Status = tuple[str, Presence | Heartbeat]


class DeviceStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, statuses: list[Status], now: datetime) -> None:
        """Every presence change and heartbeat of a batch in one transaction, in arrival order."""
        async with self._sessions.begin() as session:
            ids = {device_id for device_id, _ in statuses}
            devices = {d.id: d for d in (await session.scalars(select(Device).where(Device.id.in_(ids)))).all()}
            for device_id, status in statuses:
                device = devices.get(device_id)
                if isinstance(status, Heartbeat):
                    if device is None:
                        device = devices[device_id] = Device(
                            id=device_id, kind=status.device_kind.value, first_seen=now, last_seen=now
                        )
                        session.add(device)
                    device.online = True
                    device.firmware = status.health.firmware
                    device.last_heartbeat = status.model_dump(mode="json", exclude_none=True)
                elif device is None:
                    continue  # a device is known from its first report or heartbeat, which carry its kind
                else:
                    device.online = status.state == "online"
                    if status.firmware:
                        device.firmware = status.firmware
                device.last_seen = now
