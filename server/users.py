"""Operator accounts and console sessions."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import secrets
import time
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import now_utc
from server.db.models import Session, Unit, User
from server.passwords import hash_password, verify_password

MIN_PASSWORD_LENGTH = 10
POLICE_NO = re.compile(r"\d{6}")


class Role(StrEnum):
    DISPATCHER = "dispatcher"  # 接警员: takes reports of the units they serve
    OFFICER = "officer"  # 民警: decides liability for the units they serve
    ADMIN = "admin"  # sees every unit, manages the fleet
    REVIEWER = "reviewer"  # 复核: of the unit above, decides the reviews of the units they serve


class UserError(Exception):
    pass


class LoginThrottle:
    """Failed logins per username; after ``limit`` within ``window_s`` that username must wait."""

    def __init__(self, limit: int = 5, window_s: float = 300.0) -> None:
        self._limit = limit
        self._window_s = window_s
        self._failures: dict[str, list[float]] = {}

    def blocked(self, username: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._failures.get(username, []) if now - t < self._window_s]
        if recent:
            self._failures[username] = recent
        else:
            self._failures.pop(username, None)
        return len(recent) >= self._limit

    def failed(self, username: str) -> None:
        self._failures.setdefault(username, []).append(time.monotonic())

    def succeeded(self, username: str) -> None:
        self._failures.pop(username, None)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add_user(
        self,
        username: str,
        password: str,
        role: Role,
        units: list[str],
        display_name: str | None = None,
        police_no: str | None = None,
    ) -> User:
        """``police_no`` (警号, six digits) is an officer's: the determinations they sign name them by it."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
        if police_no is not None and not POLICE_NO.fullmatch(police_no):
            raise UserError("a police number (警号) is six digits, e.g. 012345")
        if role is not Role.ADMIN and not units:
            raise UserError(f"a {role.value} must serve at least one unit (--unit ADCODE)")
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self._sessions.begin() as session:
            if await session.scalar(select(User).where(User.username == username)) is not None:
                raise UserError(f"user {username!r} exists already")
            found = list((await session.scalars(select(Unit).where(Unit.adcode.in_(units)))).all())
            missing = sorted(set(units) - {u.adcode for u in found})
            if missing:
                raise UserError(f"unknown unit(s): {', '.join(missing)}")
            user = User(
                username=username,
                password_hash=password_hash,
                role=role.value,
                display_name=display_name or username,
                police_no=police_no,
                created_at=now_utc(),
                units=found,
            )
            session.add(user)
        return user

    async def authenticate(self, username: str, password: str) -> User | None:
        async with self._sessions() as session:
            user = await session.scalar(select(User).where(User.username == username))
        # Check a hash even for an unknown user, so timing does not tell which usernames exist.
        stored = user.password_hash if user else _dummy_hash()
        ok = await asyncio.to_thread(verify_password, password, stored)
        return user if ok and user else None

    async def open_session(self, user: User, ttl: timedelta) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(32)
        now = now_utc()
        expires = now + ttl
        async with self._sessions.begin() as session:
            await session.execute(delete(Session).where(Session.expires_at < now))
            session.add(Session(token_hash=_token_hash(token), user_id=user.id, created_at=now, expires_at=expires))
        return token, expires

    async def session_user(self, token: str) -> User | None:
        async with self._sessions() as session:
            row = await session.get(Session, _token_hash(token))
            if row is None or row.expires_at <= now_utc():
                return None
            return row.user

    async def close_session(self, token: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(delete(Session).where(Session.token_hash == _token_hash(token)))


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))
