"""case work: parties, checks, registry

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:34:36
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_licences",
        sa.Column("licence_no", sa.String(length=18), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("classes", sa.String(length=20), nullable=False, comment="space-separated, e.g. 'C1' or 'A2 D'"),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.PrimaryKeyConstraint("licence_no"),
    )
    with op.batch_alter_table("registry_licences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_licences_id_number"), ["id_number"], unique=False)

    op.create_table(
        "registry_policies",
        sa.Column("policy_no", sa.String(length=40), nullable=False),
        sa.Column("insurer", sa.String(length=40), nullable=False),
        sa.Column("plate", sa.String(length=10), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("policy_no"),
    )
    with op.batch_alter_table("registry_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_policies_plate"), ["plate"], unique=False)

    op.create_table(
        "registry_vehicles",
        sa.Column("plate", sa.String(length=10), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("vehicle_type", sa.String(length=3), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("owner_name", sa.String(length=40), nullable=False),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("inspection_until", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.PrimaryKeyConstraint("plate"),
    )
    op.create_table(
        "parties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, comment="1 = 甲, 2 = 乙, ..."),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("licence_no", sa.String(length=18), nullable=True),
        sa.Column("plate", sa.String(length=10), nullable=True),
        sa.Column("plate_read", sa.String(length=10), nullable=True, comment="as the device's reader gave it"),
        sa.Column("vehicle_type", sa.String(length=3), nullable=True),
        sa.Column("insurer", sa.String(length=40), nullable=True),
        sa.Column("policy_no", sa.String(length=40), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "position"),
    )
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_parties_case_id"), ["case_id"], unique=False)

    op.create_table(
        "party_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("result", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("record", sa.JSON(), nullable=True, comment="the registry record as seen"),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["checked_by"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("party_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_party_checks_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_party_checks_party_id"), ["party_id"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("facts", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("eligibility", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("eligibility_reason", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalation_reason", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("handed_over_at")
        batch_op.drop_column("escalation_reason")
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("eligibility_reason")
        batch_op.drop_column("eligibility")
        batch_op.drop_column("facts")

    with op.batch_alter_table("party_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_party_checks_party_id"))
        batch_op.drop_index(batch_op.f("ix_party_checks_case_id"))

    op.drop_table("party_checks")
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parties_case_id"))

    op.drop_table("parties")
    op.drop_table("registry_vehicles")
    with op.batch_alter_table("registry_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_policies_plate"))

    op.drop_table("registry_policies")
    with op.batch_alter_table("registry_licences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_licences_id_number"))

    op.drop_table("registry_licences")
