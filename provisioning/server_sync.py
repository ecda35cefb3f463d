"""Telling the server what the station decided: which devices exist, and which are retired.

The station may be a laptop in a depot with no route to the server. Every change is first written
to the ledger as not yet synced; ``sync`` then sends every unsynced device (its registration, or
its retirement) and marks it synced only once the server has said yes, so a lost connection means
a retry later, never a device the server silently does not know about.

The station logs in as a console admin; the credentials come from the environment, never from the
command line (where ``ps`` and the shell history would keep them).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from device.config import load_device_config
from device.reports import site_of, vehicle_of
from provisioning import bundle
from provisioning.errors import ProvisioningError
from provisioning.fleet import Layout
from provisioning.ledger import DeviceRecord, Ledger, Status, load_ledger, save_ledger

logger = logging.getLogger(__name__)

USER_ENV = "KUAICHU_SERVER_USER"
PASSWORD_ENV = "KUAICHU_SERVER_PASSWORD"
SESSION_COOKIE = "kc_session"
TIMEOUT_S = 10.0


@dataclass
class SyncResult:
    synced: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # device id -> the server's reason
    problem: str | None = None  # why nothing could be sent (no server, no credentials, unreachable)


def sync(root: Path, server_url: str | None = None) -> SyncResult:
    """Send every unsynced device to the server; ``server_url`` replaces the stored one."""
    ledger = load_ledger(root)
    if server_url is not None:
        ledger.server_url = server_url.rstrip("/")
        save_ledger(root, ledger)
    result = SyncResult(pending=unsynced(ledger))
    if not result.pending:
        return result
    if ledger.server_url is None:
        result.problem = "no server URL: give --server-url once (it is kept in the ledger)"
        return result
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if not user or not password:
        result.problem = f"no server credentials: set {USER_ENV} and {PASSWORD_ENV} (a console admin)"
        return result
    try:
        with httpx.Client(base_url=ledger.server_url, timeout=TIMEOUT_S) as client:
            _login(client, user, password)
            for device_id in list(result.pending):
                reason = _send(client, root, device_id, ledger.devices[device_id])
                if reason is None:
                    ledger.devices[device_id].synced = True
                    result.pending.remove(device_id)
                    result.synced.append(device_id)
                else:
                    result.refused[device_id] = reason
                save_ledger(root, ledger)
    except httpx.HTTPError as exc:
        result.problem = f"server {ledger.server_url} not reachable ({exc.__class__.__name__}: {exc})"
    except ProvisioningError as exc:
        result.problem = str(exc)
    return result


def _login(client: httpx.Client, user: str, password: str) -> None:
    response = client.post("/api/login", json={"username": user, "password": password})
    if response.status_code != httpx.codes.OK:
        raise ProvisioningError(f"server login as {user!r} failed: {response.status_code} {_detail(response)}")
    token = response.cookies.get(SESSION_COOKIE)
    if not token:
        raise ProvisioningError("server login gave no session cookie")
    # Sent by hand: the cookie is marked Secure, and the jar would withhold it from a plain-HTTP
    # loopback URL (a station on the server's own machine).
    client.headers["Cookie"] = f"{SESSION_COOKIE}={token}"
    me = client.get("/api/me").json()
    if me.get("role") != "admin":
        raise ProvisioningError(f"{user!r} is not a console admin; registering devices needs one")


def _send(client: httpx.Client, root: Path, device_id: str, record: DeviceRecord) -> str | None:
    """None when the server took it; else its reason."""
    if record.status is Status.RETIRED:
        response = client.post(f"/api/devices/{device_id}/retire", json={"kind": record.kind.value})
    else:
        response = client.put(f"/api/devices/{device_id}", json=_registration(root, device_id, record))
    if response.status_code == httpx.codes.OK:
        logger.info("device %s %s on the server", device_id, record.status.value)
        return None
    if response.status_code in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        raise ProvisioningError(f"the server refused the station's session: {_detail(response)}")
    return f"{response.status_code} {_detail(response)}"


def _registration(root: Path, device_id: str, record: DeviceRecord) -> dict[str, Any]:
    cfg = load_device_config(Layout(root).device(device_id) / bundle.CONFIG_NAME)
    vehicle, site = vehicle_of(cfg), site_of(cfg)
    return {
        "kind": record.kind.value,
        "cert_fingerprint": record.current.fingerprint,
        "vehicle": vehicle.model_dump(mode="json", exclude_none=True) if vehicle else None,
        "site": site.model_dump(mode="json", exclude_none=True) if site else None,
    }


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:200]
    except ValueError:
        return response.text[:200]


def unsynced(ledger: Ledger) -> list[str]:
    return sorted(d for d, r in ledger.devices.items() if not r.synced)
