"""Tables of the case database.

A case is keyed by the device's report id (unique), which is what makes a retried report land on
the same case. The report is also kept verbatim as JSON: it is evidence of what the device said.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from server.lifecycles.case import CaseStatus


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON}


user_units = Table(
    "user_units",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("unit_adcode", ForeignKey("units.adcode"), primary_key=True),
)


class Unit(Base):
    """A traffic-police unit that owns a geofence (a district's 大队) or the city command centre."""

    __tablename__ = "units"
    adcode: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(60))


class DeviceStatus(StrEnum):
    REGISTERED = "registered"  # provisioned, and its registration reached the server
    UNREGISTERED = "unregistered"  # heard from (it holds a fleet certificate) but never registered
    RETIRED = "retired"  # revoked: whatever it still sends is ignored


class Device(Base):
    """A reporting unit as the server knows it: from provisioning (registered), from its own traffic,
    or both.

    A device with a valid certificate that reports before its registration reached the server is
    still heard (``unregistered``): an accident report is never dropped over paperwork. A retired
    device is ignored, whatever it still manages to send.
    """

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(
        String(12), default=DeviceStatus.UNREGISTERED.value, server_default=DeviceStatus.UNREGISTERED.value
    )
    registered_at: Mapped[datetime | None]
    retired_at: Mapped[datetime | None]
    plate: Mapped[str | None] = mapped_column(String(16))
    vin: Mapped[str | None] = mapped_column(String(17))
    site: Mapped[dict[str, Any] | None]
    cert_fingerprint: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime | None]
    last_seen: Mapped[datetime | None]
    online: Mapped[bool] = mapped_column(default=False)
    state_since: Mapped[datetime | None] = mapped_column(comment="when the device last went online or offline")
    firmware: Mapped[str | None] = mapped_column(String(40))
    last_heartbeat: Mapped[dict[str, Any] | None]
    last_heartbeat_at: Mapped[datetime | None]
    last_selftest: Mapped[dict[str, Any] | None]
    last_selftest_at: Mapped[datetime | None]


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_no: Mapped[str] = mapped_column(String(32), unique=True)
    report_id: Mapped[str] = mapped_column(String(26), unique=True)
    # The reporting unit; null for a report from a phone (``reporter_phone``, server/phones/).
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"), index=True)
    reporter_phone: Mapped[str | None] = mapped_column(String(20), index=True, comment="a phone's report: its number")
    unit_adcode: Mapped[str] = mapped_column(ForeignKey("units.adcode"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.NEW)  # a CaseStatus (server.lifecycles)
    flag: Mapped[str | None] = mapped_column(String(120))
    trigger: Mapped[str] = mapped_column(String(8))
    triggered_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(index=True)
    # Where the case is, as routed: WGS-84 as reported, GCJ-02 for maps. Null when the report had no
    # usable position (the flag then says so).
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    lat_gcj02: Mapped[float | None] = mapped_column(Float)
    lon_gcj02: Mapped[float | None] = mapped_column(Float)
    position_source: Mapped[str] = mapped_column(String(8))  # gnss / site / none
    report: Mapped[dict[str, Any]]
    # The dispatcher's work (server/casework): the facts entered, the eligibility computed from them
    # and the parties' checks, and where the case went next.
    facts: Mapped[dict[str, Any] | None]
    eligibility: Mapped[str | None] = mapped_column(String(12))  # eligible / ineligible / incomplete
    eligibility_reason: Mapped[str | None] = mapped_column(String(300))
    escalated_at: Mapped[datetime | None]
    escalation_reason: Mapped[str | None] = mapped_column(String(300))
    handed_over_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None] = mapped_column(comment="every party of the current version reached")
    clear_sent_at: Mapped[datetime | None] = mapped_column(
        index=True, comment="the unit was first told to clear the road"
    )
    moved_off_at: Mapped[datetime | None] = mapped_column(comment="the in-car unit's GNSS showed it gone")
    clear_overdue_at: Mapped[datetime | None] = mapped_column(comment="flagged: not moved off in time")

    unit: Mapped[Unit] = relationship(lazy="joined")


class Party(Base):
    """A party to a case as the dispatcher entered it. ``plate_read`` is what the device read and
    ``plate`` what the dispatcher confirmed or corrected it to; both stay."""

    __tablename__ = "parties"
    __table_args__ = (UniqueConstraint("case_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, comment="1 = 甲, 2 = 乙, ...")
    role: Mapped[str] = mapped_column(String(16))  # driver / non_motor / pedestrian / property_owner
    name: Mapped[str] = mapped_column(String(40))
    id_number: Mapped[str] = mapped_column(String(18))
    phone: Mapped[str] = mapped_column(String(20))
    licence_no: Mapped[str | None] = mapped_column(String(18))
    plate: Mapped[str | None] = mapped_column(String(10))
    plate_read: Mapped[str | None] = mapped_column(String(10), comment="as the device's reader gave it")
    vehicle_type: Mapped[str | None] = mapped_column(String(3))
    insurer: Mapped[str | None] = mapped_column(String(40))
    policy_no: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime]
    updated_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), comment="null: the reporting phone's placeholder, not yet filled by a dispatcher"
    )


class Statement(Base):
    """A party's brief account: a marked span of the call recording and the dispatcher's summary."""

    __tablename__ = "statements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    span_start: Mapped[datetime] = mapped_column(comment="wall-clock time in the call recording")
    span_end: Mapped[datetime]
    summary: Mapped[str] = mapped_column(String(1000))
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime]


class PartyCheck(Base):
    """One automatic check of one party, with the registry record as it was seen at the time."""

    __tablename__ = "party_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # licence / vehicle / insurance
    result: Mapped[str] = mapped_column(String(8))  # pass / fail / unknown
    reason: Mapped[str] = mapped_column(String(300))
    record: Mapped[dict[str, Any] | None] = mapped_column(comment="the registry record as seen")
    checked_at: Mapped[datetime]
    checked_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class CaseEvent(Base):
    """One action on a case, chained to the one before by its hash (server/casework/events.py).
    Append-only: the database refuses UPDATE and DELETE on this table."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer, comment="1, 2, ... per case")
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(60), comment="username, device:ID or system")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(64), comment="the console's address, mqtt, or cli")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Determination(Base):
    """One issued version of a case's 道路交通事故认定书. Issued means immutable: a correction is a
    new version with its reason, and every version stays."""

    __tablename__ = "determinations"
    __table_args__ = (UniqueConstraint("case_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    situation: Mapped[str] = mapped_column(String(20))
    facts: Mapped[str] = mapped_column(String(2000))
    legal_basis: Mapped[str] = mapped_column(String(1000))
    liabilities: Mapped[dict[str, Any]] = mapped_column(comment="party id -> liability")
    correction_reason: Mapped[str | None] = mapped_column(String(300))
    issued_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime]
    token: Mapped[str] = mapped_column(String(32), unique=True, comment="in the QR code's verification link")
    path: Mapped[str] = mapped_column(String(260), comment="relative to the documents folder")
    sha256: Mapped[str] = mapped_column(String(64), comment="of the signed file as issued")
    manifest: Mapped[dict[str, Any]]
    signature: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[str] = mapped_column(ForeignKey("unit_keys.key_id"))


class SmsMessage(Base):
    """One SMS to one party, kept until the provider reports it delivered: the outbox survives
    restarts, and ``reached_at`` starts that party's three days to ask for a review."""

    __tablename__ = "sms_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id"), index=True, comment="null: a code to a phone reporting"
    )
    # determination / link (the party's personal link) / code (a one-time code) / review (its steps)
    kind: Mapped[str] = mapped_column(String(16), default="determination", server_default="determination")
    determination_id: Mapped[int | None] = mapped_column(ForeignKey("determinations.id"))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    phone: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(10), index=True)  # pending / sent / reached / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None] = mapped_column(comment="a worker is sending it until then")
    last_error: Mapped[str | None] = mapped_column(String(200))
    provider_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(comment="the provider took it")
    reached_at: Mapped[datetime | None] = mapped_column(comment="the provider reported it delivered")


class UnitKey(Base):
    """An issuing unit's public signing key (the private half stays on the server's disk)."""

    __tablename__ = "unit_keys"
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    unit_adcode: Mapped[str] = mapped_column(ForeignKey("units.adcode"))
    public_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class RegistryLicence(Base):
    """Driving licences, as the registry (``kuaichu registry import``) holds them."""

    __tablename__ = "registry_licences"
    licence_no: Mapped[str] = mapped_column(String(18), primary_key=True)
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(40))
    classes: Mapped[str] = mapped_column(String(20), comment="space-separated, e.g. 'C1' or 'A2 D'")
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12))  # valid / suspended / revoked


class RegistryVehicle(Base):
    __tablename__ = "registry_vehicles"
    plate: Mapped[str] = mapped_column(String(10), primary_key=True)
    vin: Mapped[str] = mapped_column(String(17))
    vehicle_type: Mapped[str] = mapped_column(String(3))
    automatic: Mapped[bool] = mapped_column(Boolean)
    owner_name: Mapped[str] = mapped_column(String(40))
    registered_on: Mapped[date] = mapped_column(Date)
    inspection_until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12))  # normal / stolen / scrapped / seized


class RegistryPolicy(Base):
    """Compulsory traffic-accident insurance (交强险) policies."""

    __tablename__ = "registry_policies"
    policy_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    insurer: Mapped[str] = mapped_column(String(40))
    plate: Mapped[str] = mapped_column(String(10), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]


class Call(Base):
    """One live call: offered by the device when its report was accepted; one record however often
    the connection had to be renegotiated."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(26), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(String(32), comment="null: a call from a reporting phone")
    state: Mapped[str] = mapped_column(String(12))  # a CallState: connecting / live / reconnecting / degraded / ended
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime]
    live_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(120))
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Evidence(Base):
    """A file kept as evidence of a case (a recording segment, a still), with its SHA-256 taken
    when the file was closed, so that any later change to it shows."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    call_id: Mapped[str | None] = mapped_column(String(26), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # recording / still
    path: Mapped[str] = mapped_column(String(260), unique=True, comment="relative to the evidence folder")
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    media_start: Mapped[datetime | None] = mapped_column(comment="wall-clock time of the first media in the file")
    media_end: Mapped[datetime | None]
    created_at: Mapped[datetime]
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), comment="who asked for it, if anyone")
    note: Mapped[str | None] = mapped_column(String(120))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), comment="whose phone or upload it came from")
    meta: Mapped[dict[str, Any] | None] = mapped_column(comment="as the party's file said: name, type, EXIF time/place")


class PlateReading(Base):
    """One look for plates by a device: sent after its report, or asked for by a dispatcher (then
    recorded when asked, and answered when the device's reading arrives). Tied to its case by the
    report id and the device, so a reading that overtakes its report is kept all the same."""

    __tablename__ = "plate_readings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reading_id: Mapped[str] = mapped_column(String(26), unique=True, comment="the device's ULID, or the request's")
    device_id: Mapped[str] = mapped_column(String(32))
    report_id: Mapped[str] = mapped_column(String(26), index=True)
    source: Mapped[str] = mapped_column(String(8))  # report / request
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime | None]
    captured_at: Mapped[datetime | None] = mapped_column(comment="when the device took the still")
    received_at: Mapped[datetime | None] = mapped_column(comment="null while a request waits for the device")
    error: Mapped[str | None] = mapped_column(String(120), comment="why the device read no plates")


class PlateRead(Base):
    """One plate as a device read it, with the straightened crop it read, and what the dispatcher
    confirmed or corrected it to: together, the reader's training data of tomorrow."""

    __tablename__ = "plate_reads"
    __table_args__ = (UniqueConstraint("reading_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reading_id: Mapped[int] = mapped_column(ForeignKey("plate_readings.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, comment="0 = the device's best read")
    text: Mapped[str] = mapped_column(String(10))
    confidence: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(8))
    box: Mapped[list[int]] = mapped_column(JSON, comment="x1, y1, x2, y2 in the still")
    crop: Mapped[bytes] = mapped_column(LargeBinary, comment="JPEG of the straightened plate")
    confirmed_text: Mapped[str | None] = mapped_column(String(10), comment="as the dispatcher confirmed or corrected")
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]


class CaseCounter(Base):
    """The last sequence number used per unit and local day, for human-readable case numbers."""

    __tablename__ = "case_counters"
    __table_args__ = (UniqueConstraint("unit_adcode", "day"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_adcode: Mapped[str] = mapped_column(ForeignKey("units.adcode"))
    day: Mapped[str] = mapped_column(String(8))
    last: Mapped[int] = mapped_column(Integer)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(12))  # dispatcher / officer / admin
    display_name: Mapped[str] = mapped_column(String(60))
    police_no: Mapped[str | None] = mapped_column(String(12), comment="警号, printed on the determinations")
    created_at: Mapped[datetime]
    units: Mapped[list[Unit]] = relationship(secondary=user_units, lazy="selectin")


class Session(Base):
    """A console login. Only the SHA-256 of the token is stored, so a database leak opens no session."""

    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    user: Mapped[User] = relationship(lazy="joined")


# The parties' and the insurers' tables share this Base; importing them here puts them in every metadata
# (migrations, the schema check) without each caller having to remember.
from server.db import insurers as _insurers  # noqa: E402, F401
from server.db import logins as _logins  # noqa: E402, F401
from server.db import masked as _masked  # noqa: E402, F401
from server.db import phones as _phones  # noqa: E402, F401
from server.db import portal as _portal  # noqa: E402, F401
from server.db import rollouts as _rollouts  # noqa: E402, F401
