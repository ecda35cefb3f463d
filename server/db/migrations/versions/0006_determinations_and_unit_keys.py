"""determinations and unit keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 20:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unit_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("unit_adcode", sa.String(length=6), nullable=False),
        sa.Column("public_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_adcode"],
            ["units.adcode"],
        ),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_table(
        "determinations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("situation", sa.String(length=20), nullable=False),
        sa.Column("facts", sa.String(length=2000), nullable=False),
        sa.Column("legal_basis", sa.String(length=1000), nullable=False),
        sa.Column("liabilities", sa.JSON(), nullable=False, comment="party id -> liability"),
        sa.Column("correction_reason", sa.String(length=300), nullable=True),
        sa.Column("issued_by", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False, comment="in the QR code's verification link"),
        sa.Column("path", sa.String(length=260), nullable=False, comment="relative to the documents folder"),
        sa.Column("sha256", sa.String(length=64), nullable=False, comment="of the signed file as issued"),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["issued_by"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["unit_keys.key_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "version"),
        sa.UniqueConstraint("token"),
    )
    with op.batch_alter_table("determinations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_determinations_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("determinations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_determinations_case_id"))

    op.drop_table("determinations")
    op.drop_table("unit_keys")
