"""reports from phones

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 19:33:39
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _foreign_keys_wait() -> None:
    """SQLite changes a column's NOT NULL by copying the table, dropping it and renaming the copy;
    the rows of other tables that refer to a case would fail the drop. Outside a transaction the
    checks are off for this connection (the worker's connections turn them on); inside one they
    wait for the commit, when the copy carries the same ids again."""
    op.execute("PRAGMA foreign_keys = OFF")
    op.execute("PRAGMA defer_foreign_keys = ON")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _foreign_keys_wait()
    op.create_table(
        "phone_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False, comment="the phone's IP address"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=True, comment="as the browser gave it"),
        sa.Column("outcome", sa.String(length=12), nullable=False, comment="case / coarse / outside / open_case"),
        sa.Column("case_id", sa.Integer(), nullable=True, comment="the case it opened, or holds open"),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("phone_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phone_reports_address"), ["address"], unique=False)
        batch_op.create_index(batch_op.f("ix_phone_reports_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_phone_reports_phone"), ["phone"], unique=False)

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.alter_column(
            "device_id",
            existing_type=sa.VARCHAR(length=32),
            nullable=True,
            comment="null: a call from a reporting phone",
        )

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reporter_phone", sa.String(length=20), nullable=True, comment="a phone's report: its number")
        )
        batch_op.alter_column("device_id", existing_type=sa.VARCHAR(length=32), nullable=True)
        batch_op.create_index(batch_op.f("ix_cases_reporter_phone"), ["reporter_phone"], unique=False)

    if op.get_bind().dialect.name != "sqlite":  # SQLite keeps no comments
        # The comment the model has had since 0011, which 0011 left out.
        op.alter_column(
            "sms_outbox", "case_id", existing_type=sa.INTEGER(), comment="null: a code to a phone reporting"
        )

    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.alter_column(
            "updated_by",
            existing_type=sa.INTEGER(),
            nullable=True,
            comment="null: the reporting phone's placeholder, not yet filled by a dispatcher",
        )


def downgrade() -> None:
    """Only while no phone has reported: a case with no unit cannot go back."""
    if op.get_bind().dialect.name == "sqlite":
        _foreign_keys_wait()
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.alter_column("updated_by", existing_type=sa.INTEGER(), nullable=False, comment=None)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_reporter_phone"))
        batch_op.alter_column("device_id", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.drop_column("reporter_phone")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.alter_column("device_id", existing_type=sa.VARCHAR(length=32), nullable=False, comment=None)

    with op.batch_alter_table("phone_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phone_reports_phone"))
        batch_op.drop_index(batch_op.f("ix_phone_reports_at"))
        batch_op.drop_index(batch_op.f("ix_phone_reports_address"))

    op.drop_table("phone_reports")
