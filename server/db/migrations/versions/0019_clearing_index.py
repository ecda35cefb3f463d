"""an index for the clearing watch: every worker looks up recent clear-the-road commands every round

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 01:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.create_index(batch.f("ix_cases_clear_sent_at"), ["clear_sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index(batch.f("ix_cases_clear_sent_at"))
