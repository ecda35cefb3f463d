"""The directory of insurers (``kuaichu insurer add/list/rotate-secret/disable``) and which of them
holds a party's compulsory insurance.

Secrets are made here and shown once: the webhook signing secret (kept, since signing needs it)
and, for ``api_key`` insurers, the API key (only its SHA-256 is kept). A rotation keeps the old
secret valid for an overlap, so an insurer that has not switched yet still verifies every event.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from runtime.mqtt import LOOPBACK
from server.db.insurers import Insurer, InsurerAuth, InsurerSecret, InsurerStatus
from server.db.models import Party, RegistryPolicy
from server.errors import Conflict, Invalid, NotFound


@dataclass(frozen=True)
class InsurerSpec:
    code: str
    name: str
    endpoint: str
    contact: str
    auth: InsurerAuth
    policy_prefixes: tuple[str, ...]
    registry_names: tuple[str, ...]
    cert_pem: bytes | None = None  # mtls: the client certificate the insurer will present


@dataclass(frozen=True)
class Credentials:
    """What the insurer's IT is told once, at ``add`` (or ``rotate-secret``): never shown again."""

    secret: str
    api_key: str | None


def endpoint_error(url: str) -> str | None:
    """Events carry personal data: HTTPS only, except to this machine (tests, the demo)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return None
    return "endpoint must be https:// (plain http only to 127.0.0.1 / localhost)"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def cert_fingerprint(pem_or_der: bytes) -> str:
    """SHA-256 of the certificate's DER, as the TLS layer will see it."""
    try:
        cert = x509.load_pem_x509_certificate(pem_or_der)
    except ValueError:
        try:
            cert = x509.load_der_x509_certificate(pem_or_der)
        except ValueError:
            raise Invalid("证书无法读取 (not a PEM or DER certificate)") from None
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


async def add_insurer(sessions: async_sessionmaker[AsyncSession], spec: InsurerSpec, now: datetime) -> Credentials:
    if error := endpoint_error(spec.endpoint):
        raise Invalid(f"推送地址须为 HTTPS ({error})")
    if not spec.policy_prefixes and not spec.registry_names:
        raise Invalid("至少给出一个保单号前缀或登记名称 (give a policy prefix or a registry name)")
    api_key = None
    fingerprint = None
    if spec.auth is InsurerAuth.API_KEY:
        api_key = "kcik_" + secrets.token_urlsafe(32)
    elif spec.cert_pem is None:
        raise Invalid("双向 TLS 须提供客户端证书 (mtls needs --cert)")
    else:
        fingerprint = cert_fingerprint(spec.cert_pem)
    secret = new_secret()
    async with sessions.begin() as session:
        if await session.get(Insurer, spec.code) is not None:
            raise Conflict(f"保险公司代码 {spec.code} 已存在 (insurer {spec.code} exists)")
        session.add(
            Insurer(
                code=spec.code,
                name=spec.name,
                endpoint=spec.endpoint,
                contact=spec.contact,
                status=InsurerStatus.ACTIVE,
                auth=spec.auth,
                api_key_hash=None if api_key is None else key_hash(api_key),
                cert_fingerprint=fingerprint,
                policy_prefixes=list(spec.policy_prefixes),
                registry_names=list(spec.registry_names),
                created_at=now,
            )
        )
        await session.flush()
        session.add(InsurerSecret(insurer_code=spec.code, secret=secret, valid_from=now))
    return Credentials(secret, api_key)


async def rotate_secret(
    sessions: async_sessionmaker[AsyncSession], code: str, overlap: timedelta, now: datetime
) -> str:
    """A new current secret; every secret still valid now stays valid until ``now + overlap`` at
    the latest (a secret already due to expire sooner keeps its own end)."""
    secret = new_secret()
    async with sessions.begin() as session:
        insurer = await session.get(Insurer, code, with_for_update=True)
        if insurer is None:
            raise no_insurer(code)
        for old in await session.scalars(select(InsurerSecret).where(*_valid(code, now))):
            old.valid_until = min(old.valid_until or now + overlap, now + overlap)
        session.add(InsurerSecret(insurer_code=code, secret=secret, valid_from=now))
    return secret


async def disable(sessions: async_sessionmaker[AsyncSession], code: str, now: datetime) -> None:
    async with sessions.begin() as session:
        insurer = await session.get(Insurer, code)
        if insurer is None:
            raise no_insurer(code)
        insurer.status, insurer.disabled_at = InsurerStatus.DISABLED, now


async def listing(sessions: async_sessionmaker[AsyncSession], now: datetime) -> list[dict[str, Any]]:
    async with sessions() as session:
        insurers = (await session.scalars(select(Insurer).order_by(Insurer.code))).all()
        valid = (await session.scalars(select(InsurerSecret).where(*_valid(None, now)))).all()
    return [
        {
            "code": i.code,
            "name": i.name,
            "endpoint": i.endpoint,
            "contact": i.contact,
            "status": i.status,
            "auth": i.auth,
            "policy_prefixes": i.policy_prefixes,
            "registry_names": i.registry_names,
            "secrets_valid_until": [
                None if s.valid_until is None else s.valid_until.isoformat() for s in valid if s.insurer_code == i.code
            ],
        }
        for i in insurers
    ]


async def valid_secrets(session: AsyncSession, code: str, now: datetime) -> list[str]:
    """Every secret an event sent now is signed with: the current one, and during an overlap the old."""
    rows = await session.scalars(select(InsurerSecret).where(*_valid(code, now)).order_by(InsurerSecret.id.desc()))
    return [r.secret for r in rows]


def _valid(code: str | None, now: datetime) -> list[Any]:
    where = [
        InsurerSecret.valid_from <= now,
        or_(InsurerSecret.valid_until.is_(None), InsurerSecret.valid_until > now),
    ]
    return where if code is None else [InsurerSecret.insurer_code == code, *where]


def no_insurer(code: str) -> NotFound:
    return NotFound(f"没有代码为 {code} 的保险公司 (no insurer {code})")


async def insurers_of(session: AsyncSession, parties: list[Party]) -> dict[int, str]:
    """Party id -> the code of the active insurer holding their compulsory insurance, for the
    parties whose insurer is in the directory. The policy number's prefix decides first (the
    longest prefix wins); then the insurer's name as the registry has it for that policy, or as the
    dispatcher entered it, matched whole or by its start (a head office's name covers branches)."""
    insurers = (await session.scalars(select(Insurer).where(Insurer.status == InsurerStatus.ACTIVE))).all()
    policies = [p.policy_no for p in parties if p.policy_no]
    rows = await session.execute(
        select(RegistryPolicy.policy_no, RegistryPolicy.insurer).where(RegistryPolicy.policy_no.in_(policies))
    )
    registry = {policy_no: name for policy_no, name in rows}
    found: dict[int, str] = {}
    for party in parties:
        code = _by_prefix(party.policy_no, insurers)
        for name in (registry.get(party.policy_no or ""), party.insurer):
            code = code or _by_name(name, insurers)
        if code is not None:
            found[party.id] = code
    return found


def _by_prefix(policy_no: str | None, insurers: Any) -> str | None:
    if not policy_no:
        return None
    hits = [(len(p), i.code) for i in insurers for p in i.policy_prefixes if policy_no.startswith(p)]
    return max(hits)[1] if hits else None


def _by_name(name: str | None, insurers: Any) -> str | None:
    if not name:
        return None
    hits = [(len(n), i.code) for i in insurers for n in i.registry_names if name.startswith(n)]
    return max(hits)[1] if hits else None


def demo_insurers(endpoint_of: dict[str, str]) -> list[InsurerSpec]:
    """The pilot's three insurers (the seed names them) with the demo's policy prefixes, each
    pushed to ``endpoint_of[code]``: what ``kuaichu demo`` registers for its simulated insurers."""
    known = {
        "PICC": ("中国人民财产保险股份有限公司", "人保财险 理赔对接 95518"),
        "PAIC": ("中国平安财产保险股份有限公司", "平安产险 理赔对接 95511"),
        "CPIC": ("中国太平洋财产保险股份有限公司", "太保产险 理赔对接 95500"),
    }
    return [
        InsurerSpec(
            code=code,
            name=name,
            endpoint=endpoint_of[code],
            contact=contact,
            auth=InsurerAuth.API_KEY,
            policy_prefixes=(code,),
            registry_names=(name,),
        )
        for code, (name, contact) in known.items()
        if code in endpoint_of
    ]
