"""The determination's standard PDF signature: pyHanko's own validator, trusting only the root the
server publishes, finds it intact, trusted and by the issuing unit, and finds any changed byte; the
Kuaichu verification takes both signatures; the unit certificates are made when first needed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from protocol.messages import utc_iso
from server.casework import pades, pki, signing
from server.casework.document import DocumentData, PartyLine, render
from server.casework.font import DocumentFont
from server.casework.keys import key_id
from server.casework.pki import DocumentPki
from tests.cases import handed_over_case, logged_in
from tests.casework_data import decision
from tests.conftest import RunningServer
from tests.services import Mosquitto
from tests.wire import Console

UNIT = "昆明市公安局交通警察支队五华大队"
ADCODE = "530102"


def document_data() -> DocumentData:
    party = PartyLine("甲", "机动车驾驶人", "李建华", "11010519491231002X", "13888000001", "", "", "", "全部")
    return DocumentData(
        "公交认字〔2026〕第1号",
        "530102202611250001",
        1,
        None,
        "2026年11月25日",
        "翠湖南路",
        "晴",
        [party],
        "甲倒车时撞到路边护栏。",
        "倒车",
        "第五十条",
        UNIT,
        "民警",
        "2026年11月25日",
        "http://127.0.0.1/verify/x",
        [],
    )


@pytest.fixture(scope="module")
def unsigned(font_cache: Path) -> bytes:
    return render(document_data(), DocumentFont(font_cache))


def manifest(key: Ed25519PrivateKey) -> dict[str, Any]:
    return {"unit": ADCODE, "key_id": key_id(key.public_key()), "issued_at": utc_iso(datetime.now(UTC)), "token": "t"}


def issued(unsigned: bytes, folder: Path) -> tuple[bytes, dict[str, Ed25519PublicKey], x509.Certificate]:
    """Signed as the server signs it: the Kuaichu block, then the unit's PDF signature."""
    key = Ed25519PrivateKey.generate()
    signed, _, _ = signing.sign(unsigned, manifest(key), key)
    signer = asyncio.run(DocumentPki(folder).signer(ADCODE, UNIT))
    return pades.sign(signed, signer, UNIT), {key_id(key.public_key()): key.public_key()}, signer.root


def validate(pdf: bytes, root: x509.Certificate) -> PdfSignatureStatus:
    """pyHanko's validator, offline, trusting the given root alone. Blocking: it runs its own loop."""
    signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    assert len(signatures) == 1
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(root.public_bytes(Encoding.DER))],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    return validate_pdf_signature(signatures[0], context)


def rejected(pdf: bytes, root: x509.Certificate) -> bool:
    """pyHanko finds the signature broken, or the file too damaged to read one from."""
    try:
        status = validate(pdf, root)
    except Exception:
        return True
    return not (status.intact and status.valid)


def subject(status: PdfSignatureStatus, oid: x509.ObjectIdentifier) -> str:
    cert = x509.load_der_x509_certificate(status.signing_cert.dump())
    return str(cert.subject.get_attributes_for_oid(oid)[0].value)


def signed_ranges(pdf: bytes) -> list[tuple[int, int]]:
    """The /ByteRange of the one PDF signature: every byte of the file but its /Contents."""
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    a, b, c, d = (int(x) for x in signature.sig_object["/ByteRange"])
    return [(a, a + b), (c, c + d)]


def read_manifest(pdf: bytes) -> dict[str, Any]:
    return signing.read_block(pdf)[0]


def flipped(pdf: bytes, at: int) -> bytes:
    return pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :]


def test_the_pdf_signature_validates_against_the_root_and_any_changed_byte_shows(
    unsigned: bytes, tmp_path: Path
) -> None:
    pdf, keys, root = issued(unsigned, tmp_path)
    status = validate(pdf, root)
    assert status.intact and status.valid and status.trusted and status.bottom_line
    assert status.coverage is SignatureCoverageLevel.ENTIRE_FILE
    assert subject(status, NameOID.COMMON_NAME) == UNIT and subject(status, NameOID.SERIAL_NUMBER) == ADCODE
    assert signing.verify(pdf, keys, root) == signing.Verification(True, "genuine and unaltered", read_manifest(pdf))

    (start, end), (after, last) = signed_ranges(pdf)
    assert start == 0 and last == len(pdf)
    block = pdf.find(signing.MARK)
    # The Kuaichu revision's body, its signature block, its trailer, and the PDF signature's own update.
    for at in (100, block + len(signing.MARK) + 5, len(unsigned) - 3, end - 40, after + 10, len(pdf) - 2):
        tampered = flipped(pdf, at)
        assert rejected(tampered, root), at
        assert not signing.verify(tampered, keys, root).genuine, at

    # Another server's root is no trust anchor for it.
    other = asyncio.run(DocumentPki(tmp_path / "elsewhere").root())
    status = validate(pdf, other)
    assert status.intact and not status.trusted
    result = signing.verify(pdf, keys, other)
    assert not result.genuine and "root" in result.reason
    assert not signing.verify(pdf, keys, None).genuine


def test_the_kuaichu_block_alone_is_not_enough_and_the_first_format_still_verifies(
    unsigned: bytes, tmp_path: Path
) -> None:
    pdf, keys, root = issued(unsigned, tmp_path)
    stripped = signing.first_revision(pdf)  # the PDF signature's update cut off
    assert stripped != pdf and stripped.endswith(b"%%EOF\n")
    result = signing.verify(stripped, keys, root)
    assert not result.genuine and "one PDF signature, found 0" in result.reason

    # A determination issued before the PDF signature: its manifest covers the whole file.
    key = Ed25519PrivateKey.generate()
    start = unsigned.find(signing.MARK) + len(signing.MARK)
    old = {"format": signing.WHOLE_FILE_FORMAT, **manifest(key), "doc_sha256": hashlib.sha256(unsigned).hexdigest()}
    block = base64.b64encode(
        signing.canonical({"m": old, "s": base64.b64encode(key.sign(signing.canonical(old))).decode()})
    )
    first = (
        unsigned[:start]
        + block
        + signing.FILLER * (signing.BLOCK_LEN - len(block))
        + unsigned[start + signing.BLOCK_LEN :]
    )
    old_keys = {key_id(key.public_key()): key.public_key()}
    assert signing.verify(first, old_keys, None).genuine
    assert not signing.verify(first + b"% appended\n", old_keys, None).genuine
    assert not signing.verify(flipped(first, 100), old_keys, None).genuine


async def test_unit_certificates_are_made_when_first_needed_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    assert await DocumentPki(folder).trusted_root() is None and not folder.exists()  # a verifier makes none
    first = await DocumentPki(folder).signer(ADCODE, UNIT)
    assert (folder / pki.ROOT_KEY).stat().st_mode & 0o077 == 0
    assert (folder / f"unit-{ADCODE}-pdf.pem").stat().st_mode & 0o077 == 0
    assert first.cert.issuer == first.root.subject and pki.unit_adcode(first.cert) == ADCODE
    again = await DocumentPki(folder).signer(ADCODE, UNIT)  # another start of the server
    assert again.cert == first.cert and again.root == first.root
    assert await DocumentPki(folder).trusted_root() == first.root
    renamed = await DocumentPki(folder).signer(ADCODE, UNIT + "（更名）")
    assert renamed.cert != first.cert and renamed.key.private_numbers() == first.key.private_numbers()
    assert renamed.root == first.root and renamed.cert.subject.rfc4514_string().startswith(f"2.5.4.5={ADCODE}")


async def test_an_issued_determination_is_signed_under_the_published_root(
    case_server: RunningServer, broker: Mosquitto
) -> None:
    server = case_server
    public = Console(server.url)
    published = await public.http.get("/pki/root.crt")  # no login: anyone may trust it
    assert published.status_code == 200 and published.headers["content-type"] == "application/pkix-cert"
    root = x509.load_der_x509_certificate(published.content)

    cid, ids = await handed_over_case(server, broker)
    officer = await logged_in(server, "officer")
    v1 = (await officer.http.post(f"/api/cases/{cid}/determinations", json=decision(ids))).json()
    pdf = (await officer.http.get(f"/api/determinations/{v1['id']}/pdf")).content
    unit = (await public.http.get(f"/api/verify/{v1['token']}")).json()["unit"]
    status = await asyncio.to_thread(validate, pdf, root)
    assert status.bottom_line and status.coverage is SignatureCoverageLevel.ENTIRE_FILE
    assert subject(status, NameOID.COMMON_NAME) == unit and subject(status, NameOID.SERIAL_NUMBER) == "530102"
    check = (await public.http.post("/api/verify", content=pdf)).json()
    assert check["genuine"] is True and check["current"] is True

    (_, end), _ = signed_ranges(pdf)
    tampered = flipped(pdf, end - 40)  # in the PDF signature's own update, after the Kuaichu block
    assert await asyncio.to_thread(rejected, tampered, root)
    check = (await public.http.post("/api/verify", content=tampered)).json()
    assert check["genuine"] is False and "altered" in check["reason"]
    # The padding of the signature's value is signed by neither, but is not the file as issued.
    _, (after, _) = signed_ranges(pdf)
    padded = flipped(pdf, after - 2)
    assert (await asyncio.to_thread(validate, padded, root)).bottom_line
    check = (await public.http.post("/api/verify", content=padded)).json()
    assert check["genuine"] is False and "not the file as issued" in check["reason"]
    for console in (officer, public):
        await console.close()
