"""Masked copies of evidence files: what an insurer or a party is given instead of the original.

A table of its own rather than more ``evidence`` rows: the case's evidence list, its audit and the
determination's manifest count the originals, and a copy is not evidence of anything; it is made
from one original by one masking, and says which (``server/evidence/copies.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.models import Base


class MaskedCopy(Base):
    """One copy of one evidence file, made once per masking (its method, models and the plates
    left visible); the original's SHA-256 as checked when the copy was made."""

    __tablename__ = "masked_copies"
    __table_args__ = (UniqueConstraint("evidence_id", "masking"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"), index=True)
    original_sha256: Mapped[str] = mapped_column(String(64))
    masking: Mapped[str] = mapped_column(
        String(40), comment="MASKING_VERSION and a hash of the method, models and kept plates"
    )
    path: Mapped[str] = mapped_column(String(260), unique=True, comment="relative to the evidence folder")
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(40))
    method: Mapped[dict[str, Any]] = mapped_column(comment="how: blur, rules, models' SHA-256, parameters, kept plates")
    found: Mapped[dict[str, Any]] = mapped_column(comment="what was found and blurred")
    created_at: Mapped[datetime]
