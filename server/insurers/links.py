"""Short-lived signed links in insurers' events: ``…?exp=UNIX&sig=HMAC`` over the path and the
expiry, with a key every worker shares (made once, kept in ``server_secrets``), so a link signed by
one worker opens on any other and a server restart keeps yesterday's links working until they
expire.

The insurer's code is part of the path: a link opens only what was sent to that insurer, and the
routes refuse it once the insurer is disabled. Events are stored with the bare paths and signed
when sent, so a retry a day later still carries a link that opens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.shared_keys import shared_key

KEY_NAME = "insurer_links"
PREFIX = "/api/insurers/v1/links"


def document_path(code: str, determination_id: int) -> str:
    return f"{PREFIX}/{code}/determinations/{determination_id}.pdf"


def evidence_path(code: str, evidence_id: int) -> str:
    return f"{PREFIX}/{code}/evidence/{evidence_id}"


class InsurerLinks:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], public_url: str, ttl_s: float) -> None:
        self._sessions = sessions
        self._base = public_url
        self._ttl_s = ttl_s
        self._key: bytes | None = None

    async def key(self) -> bytes:
        if self._key is None:
            self._key = await shared_key(self._sessions, KEY_NAME)
        return self._key

    async def sign(self, path: str, now: datetime) -> str:
        exp = int(now.timestamp() + self._ttl_s)
        return f"{self._base}{path}?exp={exp}&sig={_mac(await self.key(), path, exp)}"

    async def valid(self, path: str, exp: int, sig: str, now: datetime) -> bool:
        if exp < now.timestamp():
            return False
        # As bytes: compare_digest refuses a str with non-ASCII in it (a 500 for any such ``sig``).
        return hmac.compare_digest(_mac(await self.key(), path, exp).encode(), sig.encode())

    async def signed_body(self, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
        """The event as sent: its stored paths (the document, each evidence file) as signed URLs."""
        data = dict(payload["data"])
        determination = dict(data["determination"])
        determination["pdf_url"] = await self.sign(determination["pdf_url"], now)
        data["determination"] = determination
        data["evidence"] = [{**e, "url": await self.sign(e["url"], now)} for e in data["evidence"]]
        return {**payload, "data": data}


def _mac(key: bytes, path: str, exp: int) -> str:
    digest = hmac.new(key, f"{path}\n{exp}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
