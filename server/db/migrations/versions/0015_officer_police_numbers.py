"""officers' police numbers (警号)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("police_no", sa.String(length=12), nullable=True, comment="警号, printed on the determinations")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("police_no")
