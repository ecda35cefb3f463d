"""Operator accounts and console sessions."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ThrottleRule:
    """Failed console logins, counted so that guessing is slowed and a stranger cannot lock anyone out.

    Counting by username alone (as the first throttle did) let anyone lock a dispatcher out for five
    minutes with five wrong passwords, while one address trying twenty usernames was never slowed.
    The rule now, over the last ``window_s`` (five minutes):

    - one address, one account: after ``pair_limit`` (5) failures that address waits for that
      account until the window has passed; the same account from another address is untouched;
    - one address, any accounts: after ``address_limit`` (20) failures the address waits for every
      account that never logged in from it here; a success does not reset this count, so a valid
      account cannot launder guesses, and a station's dispatchers behind one NAT address are not
      locked out by whoever keeps failing there;
    - one account, any addresses: after ``account_limit`` (20) failures the account takes one try per
      ``account_interval_s`` (2 s) from addresses it has never logged in from here, so a guessing
      botnet gets a few hundred tries a window; an address the account logged in from before
      (``trusted_s``, 30 days) is not slowed, and anyone else waits seconds, not minutes.

    Only the decision lives here, over what a store remembers: the console counts in the database
    (``server.login_throttle.SharedLoginThrottle``) so that every worker sees every failure, and
    tests/throttle_reference.py keeps the counts in memory as the rule's reference."""

    pair_limit: int = 5
    address_limit: int = 20
    account_limit: int = 20
    window_s: float = 300.0
    account_interval_s: float = 2.0
    trusted_s: float = 30 * 86400.0
    trusted_per_account: int = 20

    def recent(self, times: Iterable[float], now: float) -> list[float]:
        return [at for at in times if now - at < self.window_s]

    def wait(
        self,
        now: float,
        pair: Sequence[float],
        address: Sequence[float],
        account: Sequence[float],
        trusted_at: float | None,
        tried_at: float | None,
    ) -> tuple[float, bool]:
        """How long this try must wait, and whether it is the slowed account's one try, from the
        failures still in the window (oldest first) of this address on this account, of this address,
        and of this account; when the account last succeeded from this address and when its last
        slowed try was let through."""
        trusted = trusted_at is not None and now - trusted_at < self.trusted_s
        waits = [self._over(pair, self.pair_limit, now)]
        if not trusted:
            waits.append(self._over(address, self.address_limit, now))
        slowed = not trusted and len(account) >= self.account_limit
        if slowed:
            waits.append((-math.inf if tried_at is None else tried_at) + self.account_interval_s - now)
        wait = max(waits)
        return max(wait, 0.0), wait <= 0 and slowed

    def _over(self, times: Sequence[float], limit: int, now: float) -> float:
        """Until the failure that made ``limit`` falls out of the window; 0 below the limit."""
        return times[len(times) - limit] + self.window_s - now if len(times) >= limit else 0.0


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
