"""device registry: registration, retirement, presence times, self-test results

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=12), server_default="unregistered", nullable=False))
        batch_op.add_column(sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("plate", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("vin", sa.String(length=17), nullable=True))
        batch_op.add_column(sa.Column("site", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("cert_fingerprint", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "state_since",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="when the device last went online or offline",
            )
        )
        batch_op.add_column(sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_selftest", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("last_selftest_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("first_seen", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.alter_column("last_seen", existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.alter_column("last_seen", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column("first_seen", existing_type=sa.DateTime(timezone=True), nullable=False)
        for column in (
            "last_selftest_at",
            "last_selftest",
            "last_heartbeat_at",
            "state_since",
            "cert_fingerprint",
            "site",
            "vin",
            "plate",
            "retired_at",
            "registered_at",
            "status",
        ):
            batch_op.drop_column(column)
