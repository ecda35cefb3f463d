"""the console login throttle's counts, shared by every worker

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 01:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False, comment="Unix seconds"),
        sa.Column("address_key", sa.String(length=32), nullable=False, comment="keyed hash of the client address"),
        sa.Column("account_key", sa.String(length=32), nullable=False, comment="keyed hash of the username tried"),
        sa.Column(
            "cleared",
            sa.Boolean(),
            nullable=False,
            comment="a later success of this address and account: no longer counted for the pair",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failures_at", "login_failures", ["at"])
    op.create_index("ix_login_failures_address", "login_failures", ["address_key", "at"])
    op.create_index("ix_login_failures_account", "login_failures", ["account_key", "at"])
    op.create_table(
        "login_trusted",
        sa.Column("account_key", sa.String(length=32), nullable=False),
        sa.Column("address_key", sa.String(length=32), nullable=False),
        sa.Column("at", sa.Float(), nullable=False, comment="the last success, Unix seconds"),
        sa.PrimaryKeyConstraint("account_key", "address_key"),
    )
    op.create_table(
        "login_slowed",
        sa.Column("account_key", sa.String(length=32), nullable=False),
        sa.Column("tried_at", sa.Float(), nullable=False, comment="Unix seconds"),
        sa.PrimaryKeyConstraint("account_key"),
    )


def downgrade() -> None:
    op.drop_table("login_slowed")
    op.drop_table("login_trusted")
    op.drop_index("ix_login_failures_account", table_name="login_failures")
    op.drop_index("ix_login_failures_address", table_name="login_failures")
    op.drop_index("ix_login_failures_at", table_name="login_failures")
    op.drop_table("login_failures")
