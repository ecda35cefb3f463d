"""How a party gets in: a personal link that names nobody, a one-time code sent to the phone the
dispatcher wrote down, and a session of the party's own.

Everything is counted in the database (codes per phone, per address, tries per code), so every
worker throttles alike and a restart forgets nothing. A code is kept only as a salted hash; a
session only as its token's SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cases import now_utc
from server.config import PortalSection
from server.db.models import Case, Party, SmsMessage
from server.db.portal import PartyLink, PortalCode, PortalSession
from server.errors import NotFound, Throttled, Unauthenticated

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Visitor:
    """Who is at the portal: a party of one case, or (``party_id`` None) a phone that may report."""

    phone: str
    party_id: int | None
    case_id: int | None
    expires_at: datetime


@dataclass(frozen=True)
class LinkView:
    """What a link shows before the code: the case number, and where the code will go (masked)."""

    token: str
    case_no: str
    phone_hint: str


def _code_hash(code: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    return salt + hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()[:32]


def _code_matches(code: str, stored: str) -> bool:
    return bool(stored) and hmac.compare_digest(_code_hash(code, stored[:32]), stored)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def code_text(code: str, minutes: int) -> str:
    return f"【快处】验证码{code}，{minutes}分钟内有效，仅用于查看您的事故案件。请勿告诉他人，警方不会向您索要验证码。"


def link_text(case_no: str, url: str) -> str:
    return (
        f"【快处】您已登记为事故案件{case_no}的当事人。查看进度、加入视频、领取认定书：{url} "
        "（打开后需输入发到本手机的验证码）。"
    )


def queue_sms(session: AsyncSession, kind: str, phone: str, text: str, now: datetime, **ids: int | None) -> None:
    """One message of any kind but a determination, in the caller's transaction; the outbox sends it."""
    session.add(
        SmsMessage(
            kind=kind, phone=phone, text=text, status="pending", attempts=0, next_attempt_at=now, created_at=now, **ids
        )
    )


async def current_links(session: AsyncSession, party_ids: list[int]) -> dict[int, str]:
    """Each party's link now in force, by party id (a party saved without a phone has none)."""
    rows = await session.execute(
        select(PartyLink.party_id, PartyLink.token).where(
            PartyLink.party_id.in_(party_ids), PartyLink.revoked_at.is_(None)
        )
    )
    return {party_id: token for party_id, token in rows}


class PortalAccess:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cfg: PortalSection,
        public_url: str,
        wake_sms: Callable[[], None],
        clock: Clock = now_utc,
    ) -> None:
        self._sessions = sessions
        self._cfg = cfg
        self._public_url = public_url
        self._wake_sms = wake_sms
        self._clock = clock

    # --- the personal link -------------------------------------------------------------------

    async def issue_link(self, session: AsyncSession, case: Case, party: Party) -> str | None:
        """In the caller's transaction (the party's save): a link and its SMS for a party whose phone
        has none yet; an older link to another number is revoked. None when nothing was sent."""
        now = self._clock()
        current = (
            await session.scalars(
                select(PartyLink).where(PartyLink.party_id == party.id, PartyLink.revoked_at.is_(None))
            )
        ).all()
        if any(link.phone == party.phone for link in current):
            return None
        for link in current:
            link.revoked_at = now
        token = secrets.token_urlsafe(16)
        session.add(PartyLink(party_id=party.id, token=token, phone=party.phone, created_at=now))
        queue_sms(
            session,
            "link",
            party.phone,
            link_text(case.case_no, f"{self._public_url}/p/{token}"),
            now,
            case_id=case.id,
            party_id=party.id,
        )
        return token

    def wake_sms(self) -> None:
        """After the transaction that queued a link commits: the outbox sends it now, not at its next poll."""
        self._wake_sms()

    async def link(self, token: str) -> LinkView:
        async with self._sessions() as session:
            row = await session.execute(
                select(PartyLink.phone, Case.case_no)
                .join(Party, Party.id == PartyLink.party_id)
                .join(Case, Case.id == Party.case_id)
                .where(PartyLink.token == token, PartyLink.revoked_at.is_(None))
            )
            found = row.first()
        if found is None:
            raise NotFound("这个链接已失效，请使用最新短信中的链接，或在案件页面输入手机号 (link not valid)")
        phone, case_no = found
        return LinkView(token, case_no, phone[:3] + "****" + phone[-4:])

    # --- one-time codes ----------------------------------------------------------------------

    async def _target(
        self, session: AsyncSession, token: str | None, case_no: str | None, phone: str | None
    ) -> tuple[str, int | None, int | None, bool]:
        """(phone, party, case, send?) for a code request; ``send`` is False when a case number and
        phone do not match a party, so that the answer does not tell whether they do."""
        if token is not None:
            found = (
                await session.execute(
                    select(PartyLink.phone, Party.id, Party.case_id, Party.phone)
                    .join(Party, Party.id == PartyLink.party_id)
                    .where(PartyLink.token == token, PartyLink.revoked_at.is_(None))
                )
            ).first()
            if found is None or found[0] != found[3]:
                raise NotFound("这个链接已失效，请使用最新短信中的链接 (link not valid)")
            return found[0], found[1], found[2], True
        if phone is None:
            raise NotFound("请输入手机号 (phone needed)")
        if case_no is None:
            return phone, None, None, True
        party = (
            await session.execute(
                select(Party.id, Party.case_id)
                .join(Case, Case.id == Party.case_id)
                .where(Case.case_no == case_no, Party.phone == phone)
            )
        ).first()
        if party is None:
            return phone, None, None, False
        return phone, party[0], party[1], True

    async def request_code(
        self, address: str, *, token: str | None = None, case_no: str | None = None, phone: str | None = None
    ) -> None:
        now = self._clock()
        hour = now - timedelta(hours=1)
        async with self._sessions.begin() as session:
            to, party_id, case_id, send = await self._target(session, token, case_no, phone)
            by_address = await session.scalar(
                select(func.count()).where(PortalCode.address == address, PortalCode.created_at > hour)
            )
            if (by_address or 0) >= self._cfg.codes_per_address_hour:
                raise Throttled(
                    "这台设备请求验证码次数过多，请一小时后再试，或拨打122 (too many codes from this address)"
                )
            last = await session.scalar(
                select(func.max(PortalCode.created_at)).where(PortalCode.phone == to, PortalCode.created_at > hour)
            )
            by_phone = await session.scalar(
                select(func.count()).where(PortalCode.phone == to, PortalCode.created_at > hour)
            )
            if (by_phone or 0) >= self._cfg.codes_per_phone_hour:
                raise Throttled("这个手机号请求验证码次数过多，请一小时后再试 (too many codes to this phone)")
            if last is not None and (now - last).total_seconds() < self._cfg.code_interval_s:
                wait = int(self._cfg.code_interval_s - (now - last).total_seconds()) + 1
                raise Throttled(f"验证码已发送，请查看短信；{wait}秒后可重新获取 (wait {wait} s)")
            code = f"{secrets.randbelow(1_000_000):06d}"
            session.add(
                PortalCode(
                    phone=to,
                    party_id=party_id,
                    code_hash=_code_hash(code) if send else "",
                    address=address,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self._cfg.code_ttl_s),
                    attempts=0,
                )
            )
            if send:
                minutes = max(1, round(self._cfg.code_ttl_s / 60))
                queue_sms(session, "code", to, code_text(code, minutes), now, case_id=case_id, party_id=party_id)
        if send:
            self._wake_sms()
            logger.info("portal: code sent for party %s", party_id)

    async def login(
        self,
        code: str,
        *,
        token: str | None = None,
        case_no: str | None = None,
        phone: str | None = None,
    ) -> tuple[str, Visitor]:
        """A session token for a right code; the code is then spent. Every wrong try counts, and
        after ``code_tries`` the code is dead even if the next try is right."""
        now = self._clock()
        async with self._sessions.begin() as session:
            to, party_id, case_id, send = await self._target(session, token, case_no, phone)
            wrong = Unauthenticated("验证码不正确或已过期，请重新获取 (wrong or expired code)")
            if not send:
                raise wrong
            row = await session.scalar(
                select(PortalCode)
                .where(
                    PortalCode.phone == to,
                    PortalCode.party_id.is_(None) if party_id is None else PortalCode.party_id == party_id,
                    PortalCode.used_at.is_(None),
                    PortalCode.expires_at > now,
                    PortalCode.code_hash != "",
                )
                .order_by(PortalCode.id.desc())
                .limit(1)
                .with_for_update()
            )
            if row is None or row.attempts >= self._cfg.code_tries:
                raise wrong
            # Counted in its own statement so a refused try is kept even though this one raises.
            await session.execute(
                update(PortalCode).where(PortalCode.id == row.id).values(attempts=PortalCode.attempts + 1)
            )
            if not _code_matches(code.strip(), row.code_hash):
                await session.commit()
                raise wrong
            row.used_at = now
            token_out = secrets.token_urlsafe(32)
            expires = now + timedelta(hours=self._cfg.session_ttl_h)
            session.add(
                PortalSession(
                    token_hash=_token_hash(token_out), phone=to, party_id=party_id, created_at=now, expires_at=expires
                )
            )
        logger.info("portal: party %s logged in", party_id)
        return token_out, Visitor(to, party_id, case_id, expires)

    # --- sessions ----------------------------------------------------------------------------

    async def visitor(self, token: str | None) -> Visitor:
        if not token:
            raise Unauthenticated("请先用短信验证码登录 (log in with the code sent to your phone)")
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(PortalSession, Party.case_id)
                    .outerjoin(Party, Party.id == PortalSession.party_id)
                    .where(PortalSession.token_hash == _token_hash(token))
                )
            ).first()
        if found is None or found[0].expires_at <= self._clock():
            raise Unauthenticated("登录已过期，请重新获取验证码 (session expired)")
        row, case_id = found
        return Visitor(row.phone, row.party_id, case_id, row.expires_at)

    async def logout(self, token: str) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(PortalSession, _token_hash(token))
            if row is not None:
                await session.delete(row)
