"""Reports from phones without a unit (视频报警 in the parties' web app): every try is written down,
so that reports are throttled per number and per address alike on every worker.

The case a phone opens is an ordinary ``cases`` row with ``device_id`` null and ``reporter_phone``
set (migration 0012); this table only counts and explains the tries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base


class PhoneReport(Base):
    """One press of 视频报警 that got past the throttle, and what came of it."""

    __tablename__ = "phone_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True, comment="the phone's IP address")
    at: Mapped[datetime] = mapped_column(index=True)
    accuracy_m: Mapped[float | None] = mapped_column(Float, comment="as the browser gave it")
    outcome: Mapped[str] = mapped_column(String(12), comment="case / coarse / outside / open_case")
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), comment="the case it opened, or holds open")
