"""The folder a field technician carries to one device: its certificate, key, the fleet CA,
``device.toml``, a QR code to label the unit with, and one archive of all of it.

``device.toml`` is built through ``device.config.DeviceConfig``, the model the firmware loads, and
read back through the firmware's own loader before anything else is written, so a bundle that
this module produced is one the device accepts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import qrcode  # type: ignore[import-untyped]

from device.config import DeviceConfig, load_device_config
from protocol.messages import DeviceKind
from provisioning.ca import replace_file
from provisioning.errors import ProvisioningError
from runtime.configfile import validate_config

# Where the install script unpacks the bundle on the device.
ON_DEVICE_DIR = PurePosixPath("/etc/kuaichu")
ON_DEVICE_DATA = PurePosixPath("/var/lib/kuaichu")
CA_NAME = "ca.crt"
CERT_NAME = "device.crt"
KEY_NAME = "device.key"
CONFIG_NAME = "device.toml"
QR_NAME = "qr.png"
IN_CAR_HAZARD_PIN = 27


@dataclass(frozen=True)
class Placement:
    """Where the unit lives: the vehicle it is fitted to, or the kiosk's surveyed site (WGS-84)."""

    kind: DeviceKind
    plate: str | None = None
    vin: str | None = None
    site_name: str | None = None
    lon: float | None = None
    lat: float | None = None


def broker_order(device_id: str, hosts: Sequence[str]) -> list[str]:
    """``hosts`` in the order this unit tries them: the fleet's list turned round by a hash of its id,
    so that each broker is the first choice of an even share of the units (the shards), and each
    unit always gets the same order, also when its bundle is made again."""
    start = int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:4], "big") % len(hosts)
    return [*hosts[start:], *hosts[:start]]


def device_config(
    device_id: str,
    placement: Placement,
    broker_host: str,
    broker_port: int,
    stun: Sequence[str] = (),
    other_hosts: Sequence[str] = (),
) -> DeviceConfig:
    """The device's configuration; a bad plate, VIN or site is a ``ConfigError`` naming the key.

    ``stun`` are the fleet's STUN servers for the live video. TURN servers need credentials, which
    are not the station's to hand out; a technician can add them to ``[[webrtc.ice_servers]]``.
    ``other_hosts`` are the fleet's further brokers, on the same port (``broker_order``)."""
    first, *others = broker_order(device_id, [broker_host, *other_hosts])
    data: dict[str, Any] = {
        "device": {"id": device_id, "kind": placement.kind.value, "data_dir": str(ON_DEVICE_DATA)},
        "broker": {
            "host": first,
            "port": broker_port,
            "others": [{"host": host, "port": broker_port} for host in others],
            "tls": {
                "ca_file": str(ON_DEVICE_DIR / CA_NAME),
                "cert_file": str(ON_DEVICE_DIR / CERT_NAME),
                "key_file": str(ON_DEVICE_DIR / KEY_NAME),
            },
        },
        "gpio": {"hazard_pin": IN_CAR_HAZARD_PIN if placement.kind is DeviceKind.IN_CAR else None},
        "webrtc": {"ice_servers": [{"urls": [url]} for url in stun]},
    }
    if placement.kind is DeviceKind.IN_CAR:
        data["vehicle"] = {"plate": placement.plate, "vin": placement.vin}
    else:
        data["site"] = {"name": placement.site_name or device_id, "lat": placement.lat, "lon": placement.lon}
        data["screen"] = {"backend": "browser"}  # its touch screen: the local page Chromium shows in kiosk mode
    return validate_config(DeviceConfig, data, Path(CONFIG_NAME))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. one of [webrtc] ice_servers
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    raise TypeError(f"no TOML form for {value!r}")


def to_toml(cfg: DeviceConfig) -> str:
    """Every setting, defaults included, so that a technician sees what can be changed."""
    lines: list[str] = [f"# Kuaichu device {cfg.device.id}, written by `kuaichu provision device`."]

    def table(path: list[str], data: dict[str, Any]) -> None:
        scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and v is not None}
        if path:
            lines.extend(["", f"[{'.'.join(path)}]"])
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
        for key, sub in data.items():
            if isinstance(sub, dict):
                table([*path, key], sub)

    table([], cfg.model_dump(mode="json", exclude_none=True))
    return "\n".join(lines) + "\n"


def write_config(folder: Path, cfg: DeviceConfig) -> None:
    path = folder / CONFIG_NAME
    replace_file(path, to_toml(cfg).encode(), 0o644)
    if load_device_config(path) != cfg:
        raise ProvisioningError(f"{path} does not read back as written")


def qr_payload(device_id: str, cert_fingerprint: str) -> str:
    """What the label's QR code says: enough to match a unit in the field to its certificate."""
    return f"kuaichu:v1:device={device_id}:sha256={cert_fingerprint}"


def write_qr(folder: Path, payload: str) -> None:
    image = qrcode.make(payload, border=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    replace_file(folder / QR_NAME, buffer.getvalue(), 0o644)


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def write_archive(folder: Path, archive: Path) -> None:
    """One owner-only ``ID.tar.gz`` of the folder (it holds the device key), members owned by root."""
    archive.unlink(missing_ok=True)
    fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name, filter=_as_root)
