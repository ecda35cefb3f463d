"""insurers: directory, signing secrets, webhook outbox, claims, API call log, server secrets

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 19:43:13
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "insurers",
        sa.Column("code", sa.String(length=16), nullable=False, comment="PICC / PAIC / CPIC ..."),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("endpoint", sa.String(length=300), nullable=False, comment="events are POSTed here"),
        sa.Column(
            "contact", sa.String(length=200), nullable=False, comment="the insurer's operator: name, phone, e-mail"
        ),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("auth", sa.String(length=8), nullable=False, comment="api_key / mtls"),
        sa.Column("api_key_hash", sa.String(length=64), nullable=True, comment="SHA-256 of the key"),
        sa.Column(
            "cert_fingerprint", sa.String(length=64), nullable=True, comment="SHA-256 of the client certificate (DER)"
        ),
        sa.Column("policy_prefixes", sa.JSON(), nullable=False, comment="policy numbers starting so are theirs"),
        sa.Column("registry_names", sa.JSON(), nullable=False, comment="insurer names as the registry writes them"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code"),
        sa.UniqueConstraint("api_key_hash"),
        sa.UniqueConstraint("cert_fingerprint"),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "insurer_api_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("insurer_code", sa.String(length=16), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False, comment="the caller's IP address"),
        sa.ForeignKeyConstraint(
            ["insurer_code"],
            ["insurers.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("insurer_api_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_insurer_api_calls_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_insurer_api_calls_insurer_code"), ["insurer_code"], unique=False)

    op.create_table(
        "insurer_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("insurer_code", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.String(length=80), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True, comment="null: the current secret"),
        sa.ForeignKeyConstraint(
            ["insurer_code"],
            ["insurers.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("insurer_secrets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_insurer_secrets_insurer_code"), ["insurer_code"], unique=False)

    op.create_table(
        "claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("insurer_code", sa.String(length=16), nullable=False),
        sa.Column("determination_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "preferred_contact", sa.String(length=100), nullable=True, comment="when the party would like a call"
        ),
        sa.Column("adjuster_name", sa.String(length=40), nullable=True),
        sa.Column("adjuster_phone", sa.String(length=20), nullable=True),
        sa.Column("amount_cny", sa.Numeric(precision=12, scale=2), nullable=True, comment="assessed, then paid"),
        sa.Column("closed_reason", sa.String(length=500), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["determination_id"],
            ["determinations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["insurer_code"],
            ["insurers.code"],
        ),
        sa.ForeignKeyConstraint(
            ["party_id"],
            ["parties.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("party_id", "insurer_code"),
    )
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claims_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_claims_insurer_code"), ["insurer_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_claims_status"), ["status"], unique=False)

    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.String(length=40), nullable=False),
        sa.Column("event_key", sa.String(length=120), nullable=False, comment="type:insurer:what it is about"),
        sa.Column("insurer_code", sa.String(length=16), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("determination_id", sa.Integer(), nullable=True),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False, comment="the JSON body as sent, links without their query"),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "claimed_until", sa.DateTime(timezone=True), nullable=True, comment="a worker is sending it until then"
        ),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["determination_id"],
            ["determinations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["insurer_code"],
            ["insurers.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_key"),
        sa.UniqueConstraint("webhook_id"),
    )
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_outbox_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_outbox_insurer_code"), ["insurer_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_outbox_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_outbox_status"), ["status"], unique=False)

    op.create_table(
        "claim_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("claim_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("adjuster_name", sa.String(length=40), nullable=True),
        sa.Column("adjuster_phone", sa.String(length=20), nullable=True),
        sa.Column("amount_cny", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["claim_id"],
            ["claims.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("claim_updates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claim_updates_claim_id"), ["claim_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("claim_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claim_updates_claim_id"))

    op.drop_table("claim_updates")
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_status"))
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_insurer_code"))
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_case_id"))

    op.drop_table("webhook_outbox")
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claims_status"))
        batch_op.drop_index(batch_op.f("ix_claims_insurer_code"))
        batch_op.drop_index(batch_op.f("ix_claims_case_id"))

    op.drop_table("claims")
    with op.batch_alter_table("insurer_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_insurer_secrets_insurer_code"))

    op.drop_table("insurer_secrets")
    with op.batch_alter_table("insurer_api_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_insurer_api_calls_insurer_code"))
        batch_op.drop_index(batch_op.f("ix_insurer_api_calls_at"))

    op.drop_table("insurer_api_calls")
    op.drop_table("server_secrets")
    op.drop_table("insurers")
