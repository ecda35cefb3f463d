"""Keys the server makes once and every worker shares (``server_secrets``): the one that signs the
insurers' short-lived links, the one that hashes the login throttle's addresses and usernames."""

from __future__ import annotations

import contextlib
import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import now_utc
from server.db.insurers import ServerSecret


async def shared_key(sessions: async_sessionmaker[AsyncSession], name: str) -> bytes:
    """The key, made by whichever worker asks first; a worker that loses the race reads the winner's."""
    async with sessions() as session:
        row = await session.get(ServerSecret, name)
    if row is None:
        with contextlib.suppress(IntegrityError):
            async with sessions.begin() as session:
                session.add(ServerSecret(name=name, value=secrets.token_urlsafe(32), created_at=now_utc()))
        async with sessions() as session:
            row = await session.get(ServerSecret, name)
    assert row is not None
    return row.value.encode()
