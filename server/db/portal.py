"""Tables of the parties' side: how a party gets in (a personal link, a one-time code sent to their
phone, a session of their own), and the review (复核) a party may ask for.

Kept apart from the case tables so that ``models.py`` stays the police's side; both share one
``Base`` and one chain of migrations (0011 made these).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base


class PartyLink(Base):
    """The personal link a party gets by SMS as soon as the dispatcher saves them with a phone
    number. It only names who to send a code to: a link alone never shows personal data."""

    __tablename__ = "party_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    phone: Mapped[str] = mapped_column(String(20), comment="the number the link was sent to")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(comment="the dispatcher changed the party's phone")


class PortalCode(Base):
    """A one-time code sent by SMS. Only its keyed hash is kept; the rows also count requests per
    phone and per address for throttling, so several workers throttle alike."""

    __tablename__ = "portal_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), comment="null: a phone reporting")
    code_hash: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64), index=True, comment="the requester's IP address")
    created_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None]


class PortalSession(Base):
    """A phone's session after a correct code: for one party of one case, or (party null) a phone
    that may report. Separate from the operators' sessions; only the token's SHA-256 is kept."""

    __tablename__ = "portal_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Review(Base):
    """A request for review (复核) of a case's determination: one per accident, whichever parties ask
    (those who ask together share it). Each stage's deadline is stored when the stage starts, so
    the staff who own it see it and an overdue one can be flagged."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    determination_id: Mapped[int] = mapped_column(ForeignKey("determinations.id"), comment="the version contested")
    status: Mapped[str] = mapped_column(String(16), index=True)
    request: Mapped[str] = mapped_column(String(2000), comment="what the party asks for")
    reasons: Mapped[str] = mapped_column(String(4000))
    requested_at: Mapped[datetime]
    forward_due: Mapped[datetime] = mapped_column(comment="the issuing unit forwards it within 2 days")
    forwarded_at: Mapped[datetime | None]
    forwarded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decide_due: Mapped[datetime | None] = mapped_column(comment="the superior unit accepts or not within 5 days")
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_reason: Mapped[str | None] = mapped_column(String(1000))
    conclude_due: Mapped[datetime | None] = mapped_column(comment="an accepted review concludes within 30 days")
    concluded_at: Mapped[datetime | None]
    concluded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    conclusion: Mapped[str | None] = mapped_column(String(16), comment="upheld / redetermine")
    conclusion_text: Mapped[str | None] = mapped_column(String(2000))


class ReviewApplicant(Base):
    __tablename__ = "review_applicants"
    __table_args__ = (UniqueConstraint("review_id", "party_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    joined_at: Mapped[datetime]
