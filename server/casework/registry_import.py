"""Loading the registry tables from CSV (``kuaichu registry import FILE.csv``).

The header says which table a file fills: ``licence_no`` licences, ``vin`` vehicles, ``policy_no``
policies. Every row is validated before anything is written, and the file goes in as one
transaction (rows whose key exists replace it), so a bad line leaves the registry as it was.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.casework.idcard import id_number_error
from server.casework.licence_classes import VEHICLE_TYPES, classes_error
from server.casework.plates import plate_error
from server.db.models import RegistryLicence, RegistryPolicy, RegistryVehicle

MAX_ROWS = 1_000_000
# Synthetic Kunming drivers, vehicles and policies for the demo (server/casework/demo/README.md).
DEMO_FILES = [Path(__file__).parent / "demo" / f"{name}.csv" for name in ("licences", "vehicles", "policies")]


class ImportError_(Exception):
    """A file that cannot be imported; the message names the file, line and column."""


def _plate(value: str) -> str:
    if error := plate_error(value):
        raise ValueError(error)
    return value


PlateText = Annotated[str, AfterValidator(_plate)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LicenceRow(_Row):
    licence_no: str = Field(pattern=r"^[0-9A-Z]{12,18}$")
    id_number: str
    name: str = Field(min_length=1, max_length=40)
    classes: str
    valid_from: date
    valid_until: date
    status: Literal["valid", "suspended", "revoked"]

    @field_validator("id_number")
    @classmethod
    def _id(cls, v: str) -> str:
        if error := id_number_error(v):
            raise ValueError(error)
        return v

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: str) -> str:
        if error := classes_error(v):
            raise ValueError(error)
        return v


class VehicleRow(_Row):
    plate: PlateText
    vin: str = Field(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")
    vehicle_type: str
    automatic: bool
    owner_name: str = Field(min_length=1, max_length=40)
    registered_on: date
    inspection_until: date
    status: Literal["normal", "stolen", "scrapped", "seized"]

    @field_validator("vehicle_type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in VEHICLE_TYPES:
            raise ValueError(f"unknown vehicle type {v!r}")
        return v


class PolicyRow(_Row):
    policy_no: str = Field(pattern=r"^[0-9A-Z-]{6,40}$")
    insurer: str = Field(min_length=1, max_length=40)
    plate: PlateText
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _order(self) -> PolicyRow:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


KINDS: dict[str, tuple[type[_Row], Any]] = {
    "licence_no": (LicenceRow, RegistryLicence),
    "vin": (VehicleRow, RegistryVehicle),
    "policy_no": (PolicyRow, RegistryPolicy),
}


def parse(path: Path, text: str) -> tuple[Any, list[dict[str, Any]]]:
    """The table and its validated rows, or ImportError_ naming the first bad line."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    kind = next((k for k in KINDS if k in header), None)
    if kind is None:
        raise ImportError_(f"{path}: header names none of {', '.join(KINDS)}: cannot tell which table")
    model, table = KINDS[kind]
    expected = set(model.model_fields)
    if set(header) != expected:
        missing, extra = sorted(expected - set(header)), sorted(set(header) - expected)
        raise ImportError_(f"{path}: header mismatch; missing {missing or '-'}, unexpected {extra or '-'}")
    rows: dict[str, dict[str, Any]] = {}
    for row in reader:
        line = reader.line_num
        if len(rows) >= MAX_ROWS:
            raise ImportError_(f"{path}: more than {MAX_ROWS} rows")
        try:
            parsed = model.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            column = ".".join(str(p) for p in first["loc"]) or "row"
            raise ImportError_(f"{path} line {line}: {column}: {first['msg']}") from None
        values = parsed.model_dump()
        if values[kind] in rows:
            raise ImportError_(f"{path} line {line}: {kind} {values[kind]} appears twice")
        rows[values[kind]] = values
    return table, list(rows.values())


def read(path: Path) -> tuple[Any, list[dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportError_(f"{path}: cannot read: {exc}") from None
    return parse(path, text)


async def import_file(sessions: async_sessionmaker[AsyncSession], path: Path) -> tuple[str, int]:
    """Returns the table filled and the number of rows."""
    table, rows = await asyncio.to_thread(read, path)
    async with sessions.begin() as session:
        for values in rows:
            await session.merge(table(**values))
    return table.__tablename__, len(rows)
