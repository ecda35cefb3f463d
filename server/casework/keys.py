"""Each issuing unit's signing key: Ed25519, the private half in the worker's data folder (0600),
the public half in the database, where every verifier (the verification page, ``kuaichu verify``)
looks it up by its id."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import now_utc
from server.casework.pki import DocumentPki
from server.db.models import UnitKey


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _load_or_create(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


class UnitKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], folder: Path) -> None:
        self._sessions = sessions
        self._folder = folder
        self._keys: dict[str, tuple[str, Ed25519PrivateKey]] = {}
        self.pki = DocumentPki(folder)  # the PDF signature's root and unit certificates, same folder

    async def signing_key(self, adcode: str) -> tuple[str, Ed25519PrivateKey]:
        """The unit's key and its id, created and registered on first use."""
        if adcode not in self._keys:
            key = await asyncio.to_thread(_load_or_create, self._folder / f"unit-{adcode}.pem")
            kid = key_id(key.public_key())
            async with self._sessions.begin() as session:
                if await session.get(UnitKey, kid) is None:
                    pem = key.public_key().public_bytes(
                        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                    )
                    session.add(UnitKey(key_id=kid, unit_adcode=adcode, public_key=pem.decode(), created_at=now_utc()))
            self._keys[adcode] = (kid, key)
        return self._keys[adcode]


async def public_keys(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Ed25519PublicKey]:
    async with sessions() as session:
        rows = (await session.scalars(select(UnitKey))).all()
    keys: dict[str, Ed25519PublicKey] = {}
    for row in rows:
        public = serialization.load_pem_public_key(row.public_key.encode())
        if isinstance(public, Ed25519PublicKey):
            keys[row.key_id] = public
    return keys
