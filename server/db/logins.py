"""The console login throttle's counts (``server.login_throttle``), shared by every worker and kept
across restarts. Addresses and usernames are stored only as keyed hashes (``login_throttle`` says
why); times are Unix seconds, the unit the throttle's rule counts in.

Kept apart from the case tables like ``portal.py``; one ``Base`` and one chain of migrations
(0017 made these).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base


class LoginFailure(Base):
    """One failed login: a row each, so two workers counting at once never lose a count."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_address", "address_key", "at"),
        Index("ix_login_failures_account", "account_key", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True, comment="Unix seconds")
    address_key: Mapped[str] = mapped_column(String(32), comment="keyed hash of the client address")
    account_key: Mapped[str] = mapped_column(String(32), comment="keyed hash of the username tried")
    cleared: Mapped[bool] = mapped_column(
        Boolean, default=False, comment="a later success of this address and account: no longer counted for the pair"
    )


class LoginTrusted(Base):
    """An address an account logged in from: not held up by guesses made elsewhere."""

    __tablename__ = "login_trusted"
    account_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    address_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[float] = mapped_column(Float, comment="the last success, Unix seconds")


class LoginSlowed(Base):
    """The last try let through on an account slowed by guesses from everywhere (one per interval)."""

    __tablename__ = "login_slowed"
    account_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    tried_at: Mapped[float] = mapped_column(Float, comment="Unix seconds")
