"""Who is calling the insurers' API, how often they may, which cases they may see, and the log.

An insurer proves who it is the way the operator chose for it (``insurers.auth``): an API key (only
its SHA-256 on record) or a client certificate from the Kuaichu CA (its SHA-256 on record; the
worker's own TLS listener checks the chain, ``server.insurers.tls``). The other way is refused even
when it would name a known insurer, so a leaked key cannot stand in for a certificate.

The rate is a token bucket per insurer and per worker: a burst is answered at once, a steady stream
at ``rate_per_s``; n workers allow n times as much in all, which is what one worker can serve.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import now_utc
from server.config import InsurerApiSection
from server.db.insurers import Insurer, InsurerApiCall, InsurerAuth, InsurerStatus
from server.db.models import Case, Party
from server.errors import Forbidden, NoSuchCase, NotFound, Unauthenticated
from server.insurers.claim_events import case_data
from server.insurers.directory import insurers_of, key_hash
from server.insurers.links import InsurerLinks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """An insurer, authenticated for this request."""

    code: str
    name: str


class TokenBucket:
    """``burst`` tokens, refilled at ``rate_per_s``; each call takes one."""

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> float:
        """0 when the call may go ahead (a token taken), else the seconds until one will be there."""
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


class InsurerApi:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cfg: InsurerApiSection,
        links: InsurerLinks,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._cfg = cfg
        self._links = links
        self._monotonic = monotonic
        self._buckets: dict[str, TokenBucket] = {}

    async def authenticate(self, bearer: str | None, cert_sha256: str | None) -> Caller:
        """The insurer the key or the certificate belongs to, if that is how it was told to call."""
        async with self._sessions() as session:
            if bearer:
                insurer = await session.scalar(select(Insurer).where(Insurer.api_key_hash == key_hash(bearer)))
                way = InsurerAuth.API_KEY
            elif cert_sha256:
                insurer = await session.scalar(select(Insurer).where(Insurer.cert_fingerprint == cert_sha256))
                way = InsurerAuth.MTLS
            else:
                raise Unauthenticated(
                    "请使用分配给贵公司的 API 密钥或客户端证书访问 (an API key or a client certificate is needed)"
                )
        if insurer is None or insurer.auth != way:
            raise Unauthenticated("API 密钥或客户端证书无效 (unknown API key or certificate)")
        if insurer.status != InsurerStatus.ACTIVE:
            raise Forbidden("该保险公司的接入已停用，请联系快处运维人员 (this insurer is disabled)")
        return Caller(insurer.code, insurer.name)

    def wait_s(self, code: str) -> float:
        """0 when ``code`` may make a call now (and it is counted), else how long it must wait."""
        now = self._monotonic()
        bucket = self._buckets.get(code)
        if bucket is None:
            bucket = self._buckets[code] = TokenBucket(self._cfg.rate_per_s, self._cfg.burst, now)
        return bucket.take(now)

    async def visible_case(self, session: AsyncSession, caller: Caller, case_no: str) -> tuple[Case, list[Party]]:
        """The case and its parties insured by the caller; another insurer's case is reported as
        absent (404), so a case number does not tell whether the case exists."""
        case = await session.scalar(select(Case).where(Case.case_no == case_no))
        if case is None:
            raise NoSuchCase()
        parties = list((await session.scalars(select(Party).where(Party.case_id == case.id))).all())
        insured = await insurers_of(session, parties)
        mine = [p for p in parties if insured.get(p.id) == caller.code]
        if not mine:
            raise NoSuchCase()
        return case, mine

    async def case_view(self, caller: Caller, case_no: str) -> dict[str, Any]:
        """The case as the events' ``data`` has it for this insurer, its links signed now."""
        async with self._sessions() as session:
            case, _ = await self.visible_case(session, caller, case_no)
            data = await case_data(session, case, caller.code)
        if data is None:
            raise NotFound("该案件尚未作出事故认定 (no determination yet)")
        signed = await self._links.signed_body({"data": data}, now_utc())
        return dict(signed["data"])

    async def log_call(self, code: str | None, method: str, path: str, status_code: int, address: str) -> None:
        """One row per call, refused ones too; a failure to write it is logged, never the insurer's problem."""
        try:
            async with self._sessions.begin() as session:
                session.add(
                    InsurerApiCall(
                        insurer_code=code,
                        method=method[:8],
                        path=path[:300],
                        status_code=status_code,
                        at=now_utc(),
                        address=address[:64],
                    )
                )
        except Exception:
            logger.exception("insurers' API: call %s %s by %s not logged", method, path, code)
