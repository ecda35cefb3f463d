"""the parties' side: links, codes, sessions, reviews

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 19:14:35
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "party_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False, comment="the number the link was sent to"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "revoked_at", sa.DateTime(timezone=True), nullable=True, comment="the dispatcher changed the party's phone"
        ),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    with op.batch_alter_table("party_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_party_links_party_id"), ["party_id"], unique=False)

    op.create_table(
        "portal_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=True, comment="null: a phone reporting"),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False, comment="the requester's IP address"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("portal_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_codes_address"), ["address"], unique=False)
        batch_op.create_index(batch_op.f("ix_portal_codes_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_portal_codes_phone"), ["phone"], unique=False)

    op.create_table(
        "portal_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_sessions_party_id"), ["party_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_portal_sessions_phone"), ["phone"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("determination_id", sa.Integer(), nullable=False, comment="the version contested"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request", sa.String(length=2000), nullable=False, comment="what the party asks for"),
        sa.Column("reasons", sa.String(length=4000), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "forward_due",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="the issuing unit forwards it within 2 days",
        ),
        sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forwarded_by", sa.Integer(), nullable=True),
        sa.Column(
            "decide_due",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="the superior unit accepts or not within 5 days",
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decision_reason", sa.String(length=1000), nullable=True),
        sa.Column(
            "conclude_due",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="an accepted review concludes within 30 days",
        ),
        sa.Column("concluded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("concluded_by", sa.Integer(), nullable=True),
        sa.Column("conclusion", sa.String(length=16), nullable=True, comment="upheld / redetermine"),
        sa.Column("conclusion_text", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["concluded_by"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["determination_id"],
            ["determinations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["forwarded_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_status"), ["status"], unique=False)

    op.create_table(
        "review_applicants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["reviews.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("review_id", "party_id"),
    )
    with op.batch_alter_table("review_applicants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_applicants_review_id"), ["review_id"], unique=False)

    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("party_id", sa.Integer(), nullable=True, comment="whose phone or upload it came from")
        )
        batch_op.add_column(
            sa.Column("meta", sa.JSON(), nullable=True, comment="as the party's file said: name, type, EXIF time/place")
        )
        batch_op.create_foreign_key("fk_evidence_party_id", "parties", ["party_id"], ["id"])

    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="determination"))
        batch_op.alter_column("case_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.alter_column("determination_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.alter_column("party_id", existing_type=sa.INTEGER(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.alter_column("party_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.alter_column("determination_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.alter_column("case_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("kind")

    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_constraint("fk_evidence_party_id", type_="foreignkey")
        batch_op.drop_column("meta")
        batch_op.drop_column("party_id")

    with op.batch_alter_table("review_applicants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_applicants_review_id"))

    op.drop_table("review_applicants")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_status"))

    op.drop_table("reviews")
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_sessions_phone"))
        batch_op.drop_index(batch_op.f("ix_portal_sessions_party_id"))

    op.drop_table("portal_sessions")
    with op.batch_alter_table("portal_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_codes_phone"))
        batch_op.drop_index(batch_op.f("ix_portal_codes_created_at"))
        batch_op.drop_index(batch_op.f("ix_portal_codes_address"))

    op.drop_table("portal_codes")
    with op.batch_alter_table("party_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_party_links_party_id"))

    op.drop_table("party_links")
