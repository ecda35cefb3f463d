"""The console's login throttle, counted in the database so that every worker sees every failure.

Kept per worker in memory, the counts split over the workers (four workers let four times the
guesses through) and a restart forgot them. Here the rule is ``server.users.ThrottleRule`` as before,
word for word; only where the counts live changes:

- each failure is a row of its own (``login_failures``), written with a plain INSERT, so two workers
  counting at once never lose a count and no row is ever updated under contention;
- the slowed account's one try per interval is taken with a conditional UPSERT (``login_slowed``:
  ``ON CONFLICT DO UPDATE … WHERE`` the last one is old enough), so two workers cannot both let one
  through at the same moment; the database decides which;
- a success marks that address's failures on that account as cleared (they still count for the
  address and the account, as before) and records the address as one the account logs in from;
- rows older than the window (trusted addresses after 30 days) are swept by whichever worker counts
  a failure, at most once a window each.

Two workers that read the counts at the same moment may still each let one try through at the limit
(as they did with counts in memory): a count is never lost, so the next try waits.

Addresses and usernames are personal data, and the rows would otherwise be a five-minute log of who
tried to log in from where (and, for 30 days, where each dispatcher logs in from). They are stored
only as HMAC-SHA256 under a key every worker shares (``server_secrets``, made by the first worker
that needs it), cut to 128 bits: a row still matches exactly, but a dump of these tables or a look at
them in ``psql`` says nothing without the key, and unlike a plain hash an IPv4 address cannot be
found again by hashing all four billion of them. The key lives in the same database, so this guards
the tables, not a stolen copy of the whole database. Times are Unix seconds from the wall clock, the one
clock every worker and a restarted one share.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.logins import LoginFailure, LoginSlowed, LoginTrusted
from server.shared_keys import shared_key
from server.users import ThrottleRule

KEY_NAME = "login_throttle"


class SharedLoginThrottle:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rule: ThrottleRule | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rule = rule or ThrottleRule()
        self._sessions = sessions
        self._clock = clock
        self._key: bytes | None = None
        self._swept = -math.inf

    async def wait_s(self, address: str, username: str) -> float:
        """0 when this try may go ahead (it is then counted as the slowed account's one try), else how
        many seconds this address must wait for this account."""
        now = self._clock()
        address_key, account_key = await self._keys(address, username)
        since = now - self.rule.window_s - 1  # the rule itself decides what is in the window
        async with self._sessions() as session:
            from_address = (
                await session.execute(
                    select(LoginFailure.at, LoginFailure.account_key, LoginFailure.cleared)
                    .where(LoginFailure.address_key == address_key, LoginFailure.at > since)
                    .order_by(LoginFailure.at, LoginFailure.id)
                )
            ).all()
            on_account = await session.scalars(
                select(LoginFailure.at)
                .where(LoginFailure.account_key == account_key, LoginFailure.at > since)
                .order_by(LoginFailure.at, LoginFailure.id)
            )
            account = self.rule.recent(on_account, now)
            trusted_at = await session.scalar(
                select(LoginTrusted.at).where(
                    LoginTrusted.account_key == account_key, LoginTrusted.address_key == address_key
                )
            )
            tried_at = await session.scalar(select(LoginSlowed.tried_at).where(LoginSlowed.account_key == account_key))
        pair = self.rule.recent((at for at, key, cleared in from_address if key == account_key and not cleared), now)
        wait, takes_the_try = self.rule.wait(
            now, pair, self.rule.recent((row.at for row in from_address), now), account, trusted_at, tried_at
        )
        if takes_the_try and not await self._take_the_try(account_key, now):
            async with self._sessions() as session:
                tried_at = await session.scalar(
                    select(LoginSlowed.tried_at).where(LoginSlowed.account_key == account_key)
                )
            wait = max((tried_at or now) + self.rule.account_interval_s - now, 0.0)  # another worker's, just now
        return wait

    async def failed(self, address: str, username: str) -> None:
        now = self._clock()
        address_key, account_key = await self._keys(address, username)
        async with self._sessions.begin() as session:
            session.add(LoginFailure(at=now, address_key=address_key, account_key=account_key, cleared=False))
        if now - self._swept >= self.rule.window_s:
            self._swept = now
            await self._sweep(now)

    async def succeeded(self, address: str, username: str) -> None:
        now = self._clock()
        address_key, account_key = await self._keys(address, username)
        async with self._sessions.begin() as session:
            await session.execute(
                update(LoginFailure)
                .where(
                    LoginFailure.address_key == address_key,
                    LoginFailure.account_key == account_key,
                    LoginFailure.cleared.is_(False),
                )
                .values(cleared=True)
            )
            upsert = _insert_for(session)(LoginTrusted).values(account_key=account_key, address_key=address_key, at=now)
            await session.execute(
                upsert.on_conflict_do_update(index_elements=["account_key", "address_key"], set_={"at": now})
            )
            newest = (
                select(LoginTrusted.address_key)
                .where(LoginTrusted.account_key == account_key)
                .order_by(LoginTrusted.at.desc())
                .limit(self.rule.trusted_per_account)
            )
            await session.execute(
                delete(LoginTrusted).where(
                    LoginTrusted.account_key == account_key, LoginTrusted.address_key.not_in(newest)
                )
            )

    async def _take_the_try(self, account_key: str, now: float) -> bool:
        """Whether this worker took the slowed account's one try: the row is written only when the
        last try is at least the interval old, and the database lets one writer at a time decide."""
        async with self._sessions.begin() as session:
            upsert = _insert_for(session)(LoginSlowed).values(account_key=account_key, tried_at=now)
            result = await session.execute(
                upsert.on_conflict_do_update(
                    index_elements=["account_key"],
                    set_={"tried_at": now},
                    where=LoginSlowed.tried_at + self.rule.account_interval_s - now <= 0,
                )
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _sweep(self, now: float) -> None:
        """Rows no rule looks at any more; any worker may do it, twice is harmless."""
        async with self._sessions.begin() as session:
            await session.execute(delete(LoginFailure).where(LoginFailure.at <= now - self.rule.window_s - 1))
            await session.execute(delete(LoginTrusted).where(LoginTrusted.at <= now - self.rule.trusted_s - 1))
            await session.execute(
                delete(LoginSlowed).where(LoginSlowed.tried_at <= now - self.rule.account_interval_s - 1)
            )

    async def _keys(self, address: str, username: str) -> tuple[str, str]:
        if self._key is None:
            self._key = await shared_key(self._sessions, KEY_NAME)
        return _mac(self._key, "address", address), _mac(self._key, "account", username)


def _mac(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}\n{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _insert_for(session: AsyncSession) -> Callable[..., postgresql.Insert | sqlite.Insert]:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
