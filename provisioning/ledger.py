"""The station's ledger of the fleet (``DIR/registry.json``): every certificate ever issued, by whom
it is held and whether it is revoked, so that the CRL can always be rebuilt and a device's history
read back.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.messages import DeviceKind
from provisioning.ca import replace_file
from provisioning.errors import ProvisioningError

LEDGER_FILE = "registry.json"  # the file's name since the first stations; kept so they read on


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CertRecord(Record):
    serial: str = Field(description="hex; what the CRL lists")
    fingerprint: str = Field(description="SHA-256 of the DER certificate, hex")
    issued_at: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None = None


class Status(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


class Event(Record):
    at: dt.datetime
    action: str = Field(description="issued, rotated or revoked")
    serial: str


class DeviceRecord(Record):
    kind: DeviceKind
    status: Status = Status.ACTIVE
    certs: list[CertRecord] = Field(description="oldest first; the last one is current")
    history: list[Event] = []
    synced: bool = Field(default=False, description="the server has this record's current state")

    @property
    def current(self) -> CertRecord:
        return self.certs[-1]


class Ledger(Record):
    broker_host: str
    broker_port: int
    broker_others: list[str] = Field(
        default=[], description="further brokers' hosts, same port and files: the fleet sharded over them"
    )
    server_port: int | None = Field(
        default=None, description="the server workers' own listener (none: a fleet made before it had one)"
    )
    server_url: str | None = Field(default=None, description="the console's base URL, for registering devices")
    stun: list[str] = Field(default=[], description="STUN servers written into every new device.toml")
    created_at: dt.datetime
    servers: dict[str, list[CertRecord]] = Field(default={}, description="certificate CN -> certificates")
    devices: dict[str, DeviceRecord] = {}

    def revoked(self) -> dict[int, dt.datetime]:
        """Every revoked serial with its revocation time: the CRL's content."""
        everything = [c for d in self.devices.values() for c in d.certs]
        everything += [c for certs in self.servers.values() for c in certs]
        return {int(c.serial, 16): c.revoked_at for c in everything if c.revoked_at is not None}


def load_ledger(root: Path) -> Ledger:
    path = root / LEDGER_FILE
    try:
        return Ledger.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ProvisioningError(f"{root} is not a provisioning folder (no {LEDGER_FILE}); run `init` first") from None
    except ValidationError as exc:
        raise ProvisioningError(f"{path} is damaged: {exc}") from None


def save_ledger(root: Path, ledger: Ledger) -> None:
    replace_file(root / LEDGER_FILE, (ledger.model_dump_json(indent=2) + "\n").encode(), 0o600)
