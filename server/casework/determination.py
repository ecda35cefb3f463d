"""The officer's determination: liability per party, facts and legal basis, issued as a signed
PDF; each issue is a new immutable version (a correction names its reason), and any PDF can be
checked against the units' keys and the versions on record."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol.messages import Command, utc_iso
from server.cases import now_utc
from server.casework.document import DocumentData, PartyLine, lines_of, render
from server.casework.events import Actor, append
from server.casework.font import DocumentFont
from server.casework.keys import UnitKeys, public_keys
from server.casework.liability import SITUATIONS, liability_error
from server.casework.licence_classes import vehicle_type_name
from server.casework.pades import sign as sign_pdf
from server.casework.parties import POSITIONS
from server.casework.pki import UnitSigner
from server.casework.signing import canonical, evidence_root, sign, verify
from server.casework.store import operator_id
from server.db.models import Case, CaseEvent, Determination, Evidence, Party, PartyCheck
from server.delivery.outbox import SmsOutbox, queue_messages
from server.errors import Conflict, Invalid, NoSuchCase
from server.lifecycles.case import CASE, CaseAction
from server.outbound import Outward
from server.portal.access import current_links
from server.portal.masking import mask_name

logger = logging.getLogger(__name__)
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
SYSTEM_DEVICE = Actor(None, "system", "mqtt")
ROLE_NAMES = {
    "driver": "机动车驾驶人",
    "non_motor": "非机动车驾驶人",
    "pedestrian": "行人",
    "property_owner": "财产所有人",
}


class PartyLiability(BaseModel):
    model_config = ConfigDict(extra="forbid")

    party_id: int
    liability: Literal["全部", "主要", "同等", "次要", "无"]


class DeterminationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    situation: Literal[tuple(SITUATIONS)]  # type: ignore[valid-type]
    liabilities: list[PartyLiability] = Field(min_length=1, max_length=len(POSITIONS))
    facts: str = Field(min_length=10, max_length=2000)
    legal_basis: str = Field(min_length=5, max_length=1000)
    correction_reason: str | None = Field(default=None, max_length=300)


@dataclass(frozen=True)
class Issued:
    determination: Determination
    render_ms: float  # rendering and signing the PDF, off the event loop


@dataclass(frozen=True)
class Officer:
    actor: Actor
    display_name: str
    police_no: str | None = None

    @property
    def signed(self) -> str:
        """As the document names the officer: 王警官（警号012345）."""
        return f"{self.display_name}（警号{self.police_no}）" if self.police_no else self.display_name


def determination_json(d: Determination, case_no: str, latest: int) -> dict[str, Any]:
    return {
        "id": d.id,
        "case_no": case_no,
        "version": d.version,
        "current": d.version == latest,
        "situation": d.situation,
        "liabilities": d.liabilities,
        "facts": d.facts,
        "legal_basis": d.legal_basis,
        "correction_reason": d.correction_reason,
        "issued_at": utc_iso(d.issued_at),
        "token": d.token,
        "sha256": d.sha256,
        "key_id": d.key_id,
    }


class Determinations:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keys: UnitKeys,
        folder: Path,
        public_url: str,
        fonts: DocumentFont,
        sms: SmsOutbox | None,
        outbound: Outward,
    ) -> None:
        self._sessions = sessions
        self.fonts = fonts
        self._sms = sms
        self._outbound = outbound  # the reporting unit hears where its document is
        self._keys = keys
        self.folder = folder
        self._public_url = public_url

    async def issue(self, case_id: int, body: DeterminationIn, officer: Officer) -> Issued:
        async with self._sessions.begin() as session:
            case = await session.scalar(select(Case).where(Case.id == case_id).with_for_update(of=Case))
            if case is None:
                raise NoSuchCase()
            if not CASE.allows(case.status, CaseAction.DETERMINE):
                raise Conflict(
                    f"只有已移交民警的案件才能认定 (the case is {case.status.replace('_', ' ')}; "
                    "only a handed-over case is decided)"
                )
            last = await session.scalar(select(func.max(Determination.version)).where(Determination.case_id == case_id))
            version = (last or 0) + 1
            if last and not body.correction_reason:
                raise Invalid(
                    "已出具认定书，更正须填写理由 (a determination was issued already: a correction needs its reason)"
                )
            if not last and body.correction_reason:
                raise Invalid("尚未出具认定书，无需填写更正理由 (nothing to correct yet)")
            parties = list(
                (await session.scalars(select(Party).where(Party.case_id == case_id).order_by(Party.position))).all()
            )
            given = {p.party_id: p.liability for p in body.liabilities}
            if set(given) != {p.id for p in parties} or len(body.liabilities) != len(parties):
                raise Invalid(
                    "请为本案每名当事人各定一项责任 (give one liability for each party of the case, and only those)"
                )
            shares: list[str] = [given[p.id] for p in parties]
            if error := liability_error(shares):
                raise Invalid(f"责任划分有误，请重新选择 ({error})")
            evidence = list(
                (await session.scalars(select(Evidence).where(Evidence.case_id == case_id).order_by(Evidence.id))).all()
            )
            head = await session.scalar(
                select(CaseEvent.hash).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq.desc()).limit(1)
            )
            classes = await self._licence_classes(session, parties)
            kid, key = await self._keys.signing_key(case.unit_adcode)
            pdf_signer = await self._keys.pki.signer(case.unit_adcode, case.unit.name)
            now = now_utc()
            token = secrets.token_urlsafe(16)
            data = self._document(case, parties, shares, classes, body, officer, version, now, token, evidence)
            manifest = {
                "case_no": case.case_no,
                "version": version,
                "unit": case.unit_adcode,
                "key_id": kid,
                "issued_at": utc_iso(now),
                "token": token,
                "evidence_count": len(evidence),
                "evidence_root": evidence_root([(e.id, e.kind, e.sha256) for e in evidence]),
                "events_head": head,
            }
            started = time.perf_counter()
            signed, manifest, signature = await asyncio.to_thread(
                _render_and_sign, data, manifest, key, pdf_signer, self.fonts
            )
            render_ms = (time.perf_counter() - started) * 1000
            relative = f"{case.case_no}/v{version}.pdf"
            sha256 = manifest_file_hash(signed)
            await asyncio.to_thread(_write_new, self.folder / relative, signed)
            sheet = {"lines": lines_of(data), "verify_url": data.verify_url}
            await asyncio.to_thread(_write_new, self.folder / sheet_path(relative), canonical(sheet))
            row = Determination(
                case_id=case_id,
                version=version,
                situation=body.situation,
                facts=body.facts,
                legal_basis=body.legal_basis,
                liabilities={str(p.id): share for p, share in zip(parties, shares, strict=True)},
                correction_reason=body.correction_reason,
                issued_by=operator_id(officer.actor),
                issued_at=now,
                token=token,
                path=relative,
                sha256=sha256,
                manifest=manifest,
                signature=signature,
                key_id=kid,
            )
            session.add(row)
            await session.flush()
            # Each party's own link: the determination in their portal, behind their code. A party
            # without one (saved before links existed) gets the verification page's.
            links = await current_links(session, [p.id for p in parties])
            verify_url = f"{self._public_url}/verify/{token}"
            urls = {p.id: f"{self._public_url}/p/{links[p.id]}" if p.id in links else verify_url for p in parties}
            queue_messages(session, case, row, parties, urls, now)
            case.status, case.delivered_at = CASE.after(case.status, CaseAction.DETERMINE), None
            detail = {
                "version": version,
                "sha256": sha256,
                "liabilities": row.liabilities,
                "reason": body.correction_reason,
            }
            await append(session, case_id, officer.actor, "determination.issued", detail, now)
        logger.info("case %d: determination v%d issued", case_id, version)
        if self._sms is not None:
            self._sms.wake()
        await self._tell_device(case, token, now)
        return Issued(row, render_ms)

    async def _tell_device(self, case: Case, token: str, now: datetime) -> None:
        """The reporting unit learns where the document is: a kiosk shows the parties' page for the
        case as a QR code (a party logs in there with their phone; a kiosk stands in public)."""
        url = f"{self._public_url}/p?case={case.case_no}"
        command = Command(type="document.ready", case_no=case.case_no, url=url)
        sent = await self._outbound.command(case.device_id, command)
        async with self._sessions.begin() as session:
            await session.scalar(select(Case.id).where(Case.id == case.id).with_for_update(of=Case))
            await append(session, case.id, SYSTEM_DEVICE, "delivery.device", {"sent": sent, "url": url}, now_utc())

    async def of_case(self, case_id: int) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            case = await session.get(Case, case_id)
            rows = list(
                (
                    await session.scalars(
                        select(Determination).where(Determination.case_id == case_id).order_by(Determination.version)
                    )
                ).all()
            )
        if case is None or not rows:
            return []
        return [determination_json(d, case.case_no, rows[-1].version) for d in rows]

    async def get(self, determination_id: int) -> tuple[Determination, Case] | None:
        async with self._sessions() as session:
            row = await session.get(Determination, determination_id)
            case = await session.get(Case, row.case_id) if row is not None else None
        return (row, case) if row is not None and case is not None else None

    async def by_token(self, token: str) -> dict[str, Any] | None:
        """What the public verification page shows: no personal data."""
        async with self._sessions() as session:
            row = await session.scalar(select(Determination).where(Determination.token == token))
            if row is None:
                return None
            case = await session.get(Case, row.case_id)
            latest = await session.scalar(
                select(func.max(Determination.version)).where(Determination.case_id == row.case_id)
            )
            parties = (
                await session.scalars(select(Party).where(Party.case_id == row.case_id).order_by(Party.position))
            ).all()
        assert case is not None
        return {
            "case_no": case.case_no,
            # Enough for an insurer or a party to match the document to the accident; never more.
            "parties": [
                {
                    "position": POSITIONS[p.position - 1],
                    "name": mask_name(p.name),
                    "plate": p.plate,
                    "liability": row.liabilities.get(str(p.id)),
                }
                for p in parties
            ],
            "version": row.version,
            "current": row.version == latest,
            "latest_version": latest,
            "issued_at": utc_iso(row.issued_at),
            "unit": case.unit.name,
            "sha256": row.sha256,
        }

    async def sheet(self, row: Determination) -> dict[str, Any]:
        """The print view's lines, as issued with the PDF."""
        raw = await asyncio.to_thread((self.folder / sheet_path(row.path)).read_bytes)
        sheet: dict[str, Any] = json.loads(raw)
        return sheet

    async def file_by_token(self, token: str) -> tuple[Path, str, int, str] | None:
        """The file, its download name, and the case and unit whose people may have it."""
        async with self._sessions() as session:
            row = await session.scalar(select(Determination).where(Determination.token == token))
            case = await session.get(Case, row.case_id) if row is not None else None
        if row is None or case is None:
            return None
        return self.folder / row.path, f"{case.case_no}-v{row.version}.pdf", case.id, case.unit_adcode

    async def root_certificate(self) -> bytes:
        """The root every determination's PDF signature chains to (DER), for readers to trust."""
        return (await self._keys.pki.root()).public_bytes(Encoding.DER)

    async def check(self, pdf: bytes) -> dict[str, Any]:
        """Whether ``pdf`` is a genuine, unaltered determination, and whether it is the current version."""
        keys = await public_keys(self._sessions)
        result = await asyncio.to_thread(verify, pdf, keys, await self._keys.pki.trusted_root())
        out: dict[str, Any] = {"genuine": result.genuine, "reason": result.reason}
        if result.genuine and result.manifest is not None:
            registered = await self.by_token(str(result.manifest.get("token")))
            out["case_no"] = result.manifest["case_no"]
            out["version"] = result.manifest["version"]
            out["current"] = bool(registered and registered["current"])
            if registered is None:
                out["genuine"], out["reason"] = False, "signed, but no such determination is on record"
            elif hashlib.sha256(pdf).hexdigest() != registered["sha256"]:
                # Neither signature covers the PDF signature's own value (its padding, the certificates
                # it carries): the file on record does.
                out["genuine"], out["reason"] = False, "signed, but not the file as issued: altered"
        return out

    @staticmethod
    async def _licence_classes(session: AsyncSession, parties: list[Party]) -> dict[int, str]:
        rows = await session.scalars(
            select(PartyCheck)
            .where(PartyCheck.party_id.in_([p.id for p in parties]), PartyCheck.kind == "licence")
            .order_by(PartyCheck.id)
        )
        return {r.party_id: str(r.record.get("classes", "")) for r in rows if r.record}

    def _document(
        self,
        case: Case,
        parties: list[Party],
        shares: list[str],
        classes: dict[int, str],
        body: DeterminationIn,
        officer: Officer,
        version: int,
        now: Any,
        token: str,
        evidence: list[Evidence],
    ) -> DocumentData:
        facts = case.facts or {}
        local = case.triggered_at.astimezone(LOCAL_TZ)
        place = facts.get("place", "")
        if case.lat_gcj02 is not None:
            place += f"（{case.lat_gcj02:.5f}, {case.lon_gcj02:.5f}）"
        lines = [
            PartyLine(
                label=POSITIONS[p.position - 1],
                role=ROLE_NAMES.get(p.role, p.role),
                name=p.name,
                id_number=p.id_number,
                phone=p.phone,
                licence=f"驾驶证号：{p.licence_no}  准驾车型：{classes.get(p.id, '—')}" if p.licence_no else "",
                vehicle=f"号牌号码：{p.plate}  车辆类型：{vehicle_type_name(p.vehicle_type or '')}" if p.plate else "",
                insurance=f"交强险：{p.insurer or '—'}  保单号：{p.policy_no or '—'}" if p.plate else "",
                liability=share,
            )
            for p, share in zip(parties, shares, strict=True)
        ]
        return DocumentData(
            doc_no=f"公交认字〔{local.year}〕第{case.case_no}号",
            case_no=case.case_no,
            version=version,
            correction_reason=body.correction_reason,
            time=f"{local:%Y年%m月%d日 %H时%M分}",
            place=place,
            weather=facts.get("weather", ""),
            parties=lines,
            facts=body.facts,
            situation=SITUATIONS[body.situation].name,
            legal_basis=body.legal_basis,
            unit_name=case.unit.name,
            officer=officer.signed,
            issued_on=f"{now.astimezone(LOCAL_TZ):%Y年%m月%d日}",
            verify_url=f"{self._public_url}/verify/{token}",
            evidence=[
                f"{e.id} {e.kind} {e.media_start.astimezone(LOCAL_TZ):%H:%M:%S} {e.sha256}"
                if e.media_start
                else f"{e.id} {e.kind} {e.sha256}"
                for e in evidence
            ],
        )


def _render_and_sign(
    data: DocumentData, manifest: dict[str, Any], key: Any, pdf_signer: UnitSigner, fonts: DocumentFont
) -> tuple[bytes, dict[str, Any], str]:
    """The Kuaichu signature first (it fills a placeholder in place), then the PDF signature over that."""
    signed, manifest, signature = sign(render(data, fonts), manifest, key)
    return sign_pdf(signed, pdf_signer, data.unit_name), manifest, signature


def manifest_file_hash(signed: bytes) -> str:
    return hashlib.sha256(signed).hexdigest()


def sheet_path(relative: str) -> str:
    """Beside each PDF, its lines as issued, for the print view (自助打印) to lay out the same text."""
    return relative.removesuffix(".pdf") + ".lines.json"


def _write_new(path: Path, data: bytes) -> None:
    """Never over an existing document: an issued version is immutable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
