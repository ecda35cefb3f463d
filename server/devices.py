"""What the server knows of each device's presence: online/offline and its last heartbeat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.messages import Heartbeat, Presence
from server.db.models import Device


class DeviceStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record_presence(self, device_id: str, presence: Presence, now: datetime) -> None:
        async with self._sessions.begin() as session:
            device = await session.get(Device, device_id)
            if device is None:
                return  # a device is known from its first report or heartbeat, which carry its kind
            device.online = presence.state == "online"
            device.last_seen = now
            if presence.firmware:
                device.firmware = presence.firmware

    async def record_heartbeat(self, device_id: str, heartbeat: Heartbeat, now: datetime) -> None:
        async with self._sessions.begin() as session:
            device = await session.get(Device, device_id)
            if device is None:
                device = Device(id=device_id, kind=heartbeat.device_kind.value, first_seen=now, last_seen=now)
                session.add(device)
            device.online = True
            device.last_seen = now
            device.firmware = heartbeat.health.firmware
            device.last_heartbeat = heartbeat.model_dump(mode="json", exclude_none=True)
