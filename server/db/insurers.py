"""Tables of the insurers' side (快速理赔, docs/insurers.md): the directory of insurers and their
signing secrets, the outbox of signed events pushed to them, the claims parties make and the
insurers' updates to them, and the log of every call an insurer makes to the API.

Kept apart from the case tables like ``portal.py``; one ``Base`` and one chain of migrations
(0013 made these).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base


class InsurerStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # no new events, no API calls; what was queued stays for the record


class InsurerAuth(StrEnum):
    API_KEY = "api_key"
    MTLS = "mtls"


class Insurer(Base):
    """A compulsory-insurance (交强险) insurer the server shares determinations with. Which policies
    are theirs is matched by policy-number prefix first and by the registry's insurer name second,
    because the registry's names vary by branch office while policy numbers do not."""

    __tablename__ = "insurers"
    code: Mapped[str] = mapped_column(String(16), primary_key=True, comment="PICC / PAIC / CPIC ...")
    name: Mapped[str] = mapped_column(String(60))
    endpoint: Mapped[str] = mapped_column(String(300), comment="events are POSTed here")
    contact: Mapped[str] = mapped_column(String(200), comment="the insurer's operator: name, phone, e-mail")
    status: Mapped[str] = mapped_column(String(10), default=InsurerStatus.ACTIVE)
    auth: Mapped[str] = mapped_column(String(8), comment="api_key / mtls")
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True, comment="SHA-256 of the key")
    cert_fingerprint: Mapped[str | None] = mapped_column(
        String(64), unique=True, comment="SHA-256 of the client certificate (DER)"
    )
    policy_prefixes: Mapped[list[str]] = mapped_column(JSON, comment="policy numbers starting so are theirs")
    registry_names: Mapped[list[str]] = mapped_column(JSON, comment="insurer names as the registry writes them")
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class InsurerSecret(Base):
    """A Standard Webhooks signing secret (``whsec_...``). Kept in the clear because signing needs
    it. After a rotation the old one's ``valid_until`` is set to the end of the overlap: events are
    signed with every secret valid at the time, so the insurer may switch at its own pace."""

    __tablename__ = "insurer_secrets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    insurer_code: Mapped[str] = mapped_column(ForeignKey("insurers.code"), index=True)
    secret: Mapped[str] = mapped_column(String(80))
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None] = mapped_column(comment="null: the current secret")


class WebhookStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"  # the insurer answered 2xx
    DEAD = "dead"  # retried past the limit; an operator may resend it


class WebhookMessage(Base):
    """One signed event to one insurer, written in the same transaction as the change that causes
    it and kept until the insurer answers 2xx. ``event_key`` makes the event once-only at the
    source (one per insurer per case version and type); ``webhook_id`` is what the insurer
    deduplicates by, the same on every retry and resend."""

    __tablename__ = "webhook_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_key: Mapped[str] = mapped_column(String(120), unique=True, comment="type:insurer:what it is about")
    insurer_code: Mapped[str] = mapped_column(ForeignKey("insurers.code"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    determination_id: Mapped[int | None] = mapped_column(ForeignKey("determinations.id"))
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(comment="the JSON body as sent, links without their query")
    status: Mapped[str] = mapped_column(String(10), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(comment="a worker is sending it until then")
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]


class Claim(Base):
    """A party's one-key claim (一键理赔) to the insurer of their policy, against the version of the
    determination they saw. One per party and insurer: pressing twice finds the same claim."""

    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("party_id", "insurer_code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    insurer_code: Mapped[str] = mapped_column(ForeignKey("insurers.code"), index=True)
    determination_id: Mapped[int] = mapped_column(ForeignKey("determinations.id"))
    status: Mapped[str] = mapped_column(String(20), index=True)
    preferred_contact: Mapped[str | None] = mapped_column(String(100), comment="when the party would like a call")
    adjuster_name: Mapped[str | None] = mapped_column(String(40))
    adjuster_phone: Mapped[str | None] = mapped_column(String(20))
    amount_cny: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), comment="assessed, then paid")
    closed_reason: Mapped[str | None] = mapped_column(String(500))
    requested_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class ClaimUpdate(Base):
    """Each status an insurer reported for a claim, in order: the party's progress shows them all."""

    __tablename__ = "claim_updates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    adjuster_name: Mapped[str | None] = mapped_column(String(40))
    adjuster_phone: Mapped[str | None] = mapped_column(String(20))
    amount_cny: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    reason: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime]


class InsurerApiCall(Base):
    """Every call to the insurers' API, refused ones too (insurer null when it could not be told)."""

    __tablename__ = "insurer_api_calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    insurer_code: Mapped[str | None] = mapped_column(ForeignKey("insurers.code"), index=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    status_code: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(index=True)
    address: Mapped[str] = mapped_column(String(64), comment="the caller's IP address")


class ServerSecret(Base):
    """Keys the server makes once and every worker shares, such as the one that signs the
    short-lived links in insurers' events: made by whichever worker needs it first."""

    __tablename__ = "server_secrets"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
