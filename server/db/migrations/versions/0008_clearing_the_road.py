"""clearing the road

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "clear_sent_at",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="the unit was first told to clear the road",
            )
        )
        batch_op.add_column(
            sa.Column(
                "moved_off_at",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="the in-car unit's GNSS showed it gone",
            )
        )
        batch_op.add_column(
            sa.Column(
                "clear_overdue_at", sa.DateTime(timezone=True), nullable=True, comment="flagged: not moved off in time"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("clear_overdue_at")
        batch_op.drop_column("moved_off_at")
        batch_op.drop_column("clear_sent_at")
