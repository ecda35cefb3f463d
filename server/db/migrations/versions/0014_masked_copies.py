"""masked copies of evidence files

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "masked_copies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evidence_id", sa.Integer(), nullable=False),
        sa.Column("original_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "masking",
            sa.String(length=40),
            nullable=False,
            comment="MASKING_VERSION and a hash of the method, models and kept plates",
        ),
        sa.Column("path", sa.String(length=260), nullable=False, comment="relative to the evidence folder"),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column(
            "method", sa.JSON(), nullable=False, comment="how: blur, rules, models' SHA-256, parameters, kept plates"
        ),
        sa.Column("found", sa.JSON(), nullable=False, comment="what was found and blurred"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("evidence_id", "masking"),
        sa.UniqueConstraint("path"),
    )
    with op.batch_alter_table("masked_copies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_masked_copies_evidence_id"), ["evidence_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("masked_copies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_masked_copies_evidence_id"))
    op.drop_table("masked_copies")
