"""Three insurers for the tests, each a real local HTTP server (the demo's simulated insurer, which
verifies every signature), registered in the server's directory: PICC and CPIC with API keys,
PAIC with a client certificate from the test fleet's CA. And what the tests read back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from kuaichu.demo_insurer import DemoInsurer, InsurerLogin
from provisioning import ca
from server.cases import now_utc
from server.db.engine import make_engine, make_sessionmaker
from server.db.insurers import InsurerApiCall, InsurerAuth, WebhookMessage
from server.db.models import SmsMessage
from server.insurers.directory import add_insurer, demo_insurers
from tests.conftest import RunningServer
from tests.pki import PASSPHRASE, FleetPki
from tests.services import free_port

API = "/api/insurers/v1"


@dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path
    ca: Path

    def ssl(self) -> Any:
        """An httpx ``verify`` context that trusts the CA and presents this certificate."""
        import ssl

        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def issue_cert(pki: FleetPki, folder: Path, name: str, server: bool = False) -> ClientCert:
    """A certificate from the fleet's CA: a client's for an insurer, or the TLS listener's own."""
    layout = pki.layout
    authority = ca.load_authority(layout.ca_cert, layout.ca_key, PASSPHRASE)
    usage = ca.Usage.SERVER if server else ca.Usage.CLIENT
    cert, key = ca.issue(authority, name, usage, hosts=["127.0.0.1"] if server else None)
    folder.mkdir(parents=True, exist_ok=True)
    paths = ClientCert(folder / f"{name}.crt", folder / f"{name}.key", layout.ca_cert)
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@dataclass
class Insurers:
    sims: dict[str, DemoInsurer]
    ports: dict[str, int]
    paic_cert: ClientCert

    def client(self, server: RunningServer, code: str, **kwargs: Any) -> httpx.AsyncClient:
        """An insurer's API client with its own API key (PICC, CPIC)."""
        headers = {"Authorization": f"Bearer {self.sims[code].login.api_key}"}
        return httpx.AsyncClient(base_url=server.url + API, headers=headers, timeout=10, **kwargs)


@contextlib.asynccontextmanager
async def three_insurers(server: RunningServer, pki: FleetPki, folder: Path) -> AsyncIterator[Insurers]:
    """PICC, PAIC and CPIC listening and in the directory."""
    ports = {code: free_port() for code in ("PICC", "PAIC", "CPIC")}
    specs = demo_insurers({code: f"http://127.0.0.1:{port}/webhooks" for code, port in ports.items()})
    paic_cert = issue_cert(pki, folder, "PAIC-claims")
    engine = make_engine(server.cfg.database_url)
    sims: dict[str, DemoInsurer] = {}
    try:
        sessions = make_sessionmaker(engine)
        for spec in specs:
            if spec.code == "PAIC":
                spec = type(spec)(**{**vars(spec), "auth": InsurerAuth.MTLS, "cert_pem": paic_cert.cert.read_bytes()})
            made = await add_insurer(sessions, spec, now_utc())
            login = InsurerLogin(spec.code, spec.name, made.secret, made.api_key or "")
            sims[spec.code] = DemoInsurer(login, server.url)
    finally:
        await engine.dispose()
    tasks = [asyncio.create_task(sims[code].serve(port)) for code, port in ports.items()]
    try:
        yield Insurers(sims, ports, paic_cert)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def rows(server: RunningServer, query: Any) -> list[Any]:
    engine = make_engine(server.cfg.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.execute(query)).all())
    finally:
        await engine.dispose()


async def claim_sms(server: RunningServer, phone: str) -> list[str]:
    found = await rows(
        server,
        select(SmsMessage.text).where(SmsMessage.phone == phone, SmsMessage.kind == "claim").order_by(SmsMessage.id),
    )
    return [text for (text,) in found]


async def webhooks(server: RunningServer, event_type: str) -> list[WebhookMessage]:
    found = await rows(server, select(WebhookMessage).where(WebhookMessage.event_type == event_type))
    return [row for (row,) in found]


async def calls_logged(server: RunningServer) -> list[tuple[str | None, str, str, int]]:
    found = await rows(
        server,
        select(InsurerApiCall.insurer_code, InsurerApiCall.method, InsurerApiCall.path, InsurerApiCall.status_code),
    )
    return [tuple(row) for row in found]
