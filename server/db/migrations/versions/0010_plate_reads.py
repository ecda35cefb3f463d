"""plate reads

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 02:56:09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plate_readings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reading_id", sa.String(length=26), nullable=False, comment="the device's ULID, or the request's"),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=26), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True, comment="when the device took the still"),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="null while a request waits for the device",
        ),
        sa.Column("error", sa.String(length=120), nullable=True, comment="why the device read no plates"),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reading_id"),
    )
    with op.batch_alter_table("plate_readings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plate_readings_report_id"), ["report_id"], unique=False)

    op.create_table(
        "plate_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reading_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, comment="0 = the device's best read"),
        sa.Column("text", sa.String(length=10), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("box", sa.JSON(), nullable=False, comment="x1, y1, x2, y2 in the still"),
        sa.Column("crop", sa.LargeBinary(), nullable=False, comment="JPEG of the straightened plate"),
        sa.Column(
            "confirmed_text", sa.String(length=10), nullable=True, comment="as the dispatcher confirmed or corrected"
        ),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["reading_id"],
            ["plate_readings.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reading_id", "position"),
    )
    with op.batch_alter_table("plate_reads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plate_reads_reading_id"), ["reading_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("plate_reads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plate_reads_reading_id"))

    op.drop_table("plate_reads")
    with op.batch_alter_table("plate_readings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plate_readings_report_id"))

    op.drop_table("plate_readings")
