"""rollouts of a firmware release and each unit's progress

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release", sa.String(length=40), nullable=False),
        sa.Column("group_kind", sa.String(length=8), nullable=False, comment="percent, district or devices"),
        sa.Column(
            "group_value",
            sa.String(length=200),
            nullable=False,
            comment="the share, the adcode, or how many units listed",
        ),
        sa.Column(
            "max_rollback_pct",
            sa.Float(),
            nullable=False,
            comment="pause when more of the finished units roll back",
        ),
        sa.Column(
            "batch", sa.Integer(), nullable=False, comment="units offered the release and not yet finished, at most"
        ),
        sa.Column("state", sa.String(length=10), nullable=False, comment="active, paused, cancelled or done"),
        sa.Column("paused_reason", sa.String(length=200), nullable=True),
        sa.Column("forgiven", sa.Integer(), nullable=False, comment="rollbacks before the last resume, not counted"),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "rollout_units",
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column(
            "told_at", sa.DateTime(timezone=True), nullable=True, comment="when update.check with the release was sent"
        ),
        sa.Column("step", sa.String(length=12), nullable=True, comment="the unit's last UpdateStep in this rollout"),
        sa.Column(
            "step_at", sa.DateTime(timezone=True), nullable=True, comment="when the unit says it reached the step"
        ),
        sa.Column("code", sa.String(length=24), nullable=True, comment="a refusal's code"),
        sa.Column("reason", sa.String(length=120), nullable=True, comment="why it rolled back, refused or failed"),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rollout_id", "device_id"),
    )


def downgrade() -> None:
    op.drop_table("rollout_units")
    op.drop_table("rollouts")
