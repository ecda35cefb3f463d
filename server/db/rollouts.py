"""Rollouts of a firmware or plate-models release to a group of units, and each unit's progress in one.

The group is fixed when the rollout is made (a share, a district or a list, resolved to unit ids
then), so that what the fleet page shows and what pauses the rollout are the same units whatever
joins the fleet later. A unit row without ``told_at`` has not been offered the release yet: a
paused or cancelled rollout leaves it so. A unit told that made no progress for
``[updates] no_answer_h`` has the step ``no_answer`` (the server's, not one a unit says): its batch
slot is freed, and a later heartbeat of its own still replaces it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base


class Rollout(Base):
    __tablename__ = "rollouts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8), server_default="firmware", comment="firmware or models")
    group_kind: Mapped[str] = mapped_column(String(8), comment="percent, district or devices")
    group_value: Mapped[str] = mapped_column(String(200), comment="the share, the adcode, or how many units listed")
    max_rollback_pct: Mapped[float] = mapped_column(Float, comment="pause when more of the finished units roll back")
    batch: Mapped[int] = mapped_column(Integer, comment="units offered the release and not yet finished, at most")
    state: Mapped[str] = mapped_column(String(10), comment="active, paused, cancelled or done")
    paused_reason: Mapped[str | None] = mapped_column(String(200))
    forgiven: Mapped[int] = mapped_column(Integer, default=0, comment="rollbacks before the last resume, not counted")
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    changed_at: Mapped[datetime]


class RolloutUnit(Base):
    __tablename__ = "rollout_units"
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    told_at: Mapped[datetime | None] = mapped_column(comment="when update.check with the release was sent")
    step: Mapped[str | None] = mapped_column(String(12), comment="the unit's last UpdateStep in this rollout")
    step_at: Mapped[datetime | None] = mapped_column(comment="when the unit says it reached the step")
    code: Mapped[str | None] = mapped_column(String(24), comment="a refusal's code")
    reason: Mapped[str | None] = mapped_column(String(120), comment="why it rolled back, refused or failed")
