"""The certificates behind the determination's PDF signature: one Kuaichu document root, and a
certificate per issuing unit issued by it, so that any PDF reader that trusts the root (the server
publishes it at ``/pki/root.crt``) shows which unit signed a determination.

The root and every unit's key and certificate live beside the units' Ed25519 keys in
``data_dir/keys``. The unit's Ed25519 key stays what the Kuaichu manifest is signed with; PDF
readers do not take Ed25519, so the PDF signature has an EC P-256 key of its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT_KEY = "document-root.pem"
ROOT_CERT = "document-root.crt"
ROOT_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "快处 Kuaichu"),
        x509.NameAttribute(NameOID.COMMON_NAME, "快处电子文书根证书 Kuaichu Document Root CA"),
    ]
)
ROOT_DAYS = 30 * 366
UNIT_DAYS = 10 * 366
RENEW_BEFORE = dt.timedelta(days=366)  # a unit certificate this close to its end is replaced
BACKDATE = dt.timedelta(hours=1)  # a reader whose clock is a little behind still accepts a new one


@dataclass(frozen=True)
class UnitSigner:
    """What the PDF signature is made with: the unit's P-256 key, its certificate and the root."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    root: x509.Certificate


def unit_adcode(cert: x509.Certificate) -> str | None:
    """The adcode a unit certificate was issued for (its subject's serialNumber)."""
    found = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    return str(found[0].value) if found else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _replace(path: Path, data: bytes) -> None:
    """A renewed certificate takes the old one's place in one step: a reader never sees half a file."""
    scratch = path.with_suffix(".tmp")
    scratch.unlink(missing_ok=True)
    _write_new(scratch, data, 0o644)
    os.replace(scratch, path)


def _load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"{path}: not an EC P-256 key")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_new(path, pem, 0o600)
    return key


def _usage(*, sign_documents: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign_documents,
        content_commitment=sign_documents,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not sign_documents,
        crl_sign=not sign_documents,
        encipher_only=False,
        decipher_only=False,
    )


def _create_root(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _load_or_create_key(folder / ROOT_KEY)
    start = _now() - BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(ROOT_NAME)
        .issuer_name(ROOT_NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=ROOT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(sign_documents=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_new(folder / ROOT_CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return key, cert


def read_root(folder: Path) -> x509.Certificate | None:
    """The root a verifier trusts; none before the server first needed one (nothing is signed yet)."""
    try:
        return x509.load_pem_x509_certificate((folder / ROOT_CERT).read_bytes())
    except FileNotFoundError:
        return None


def _load_or_create_root(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    cert = read_root(folder)
    if cert is None:
        return _create_root(folder)
    key = _load_or_create_key(folder / ROOT_KEY)
    if key.public_key() != cert.public_key():
        raise ValueError(f"{folder / ROOT_CERT} is not the certificate of {folder / ROOT_KEY}")
    return key, cert


def _issue(
    root: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], key: ec.EllipticCurvePrivateKey, adcode: str, name: str
) -> x509.Certificate:
    start = _now() - BACKDATE
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, adcode),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + dt.timedelta(days=UNIT_DAYS), root[1].not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(sign_documents=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root[0].public_key()), critical=False)
        .sign(root[0], hashes.SHA256())
    )


def _current(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, root: x509.Certificate, name: str) -> bool:
    """Still the unit's: its key, its present name, from this root, and not near its end."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return (
        cert.public_key() == key.public_key()
        and cert.issuer == root.subject
        and bool(names)
        and names[0].value == name
        and cert.not_valid_after_utc - RENEW_BEFORE > _now()
    )


def _unit_signer(folder: Path, adcode: str, name: str) -> UnitSigner:
    root = _load_or_create_root(folder)
    key = _load_or_create_key(folder / f"unit-{adcode}-pdf.pem")
    path = folder / f"unit-{adcode}.crt"
    cert = x509.load_pem_x509_certificate(path.read_bytes()) if path.exists() else None
    if cert is None or not _current(cert, key, root[1], name):
        cert = _issue(root, key, adcode, name)
        _replace(path, cert.public_bytes(serialization.Encoding.PEM))
    return UnitSigner(key, cert, root[1])


class DocumentPki:
    """The root and the units' certificates of one server, made when first needed."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._lock = asyncio.Lock()
        self._signers: dict[str, UnitSigner] = {}

    async def root(self) -> x509.Certificate:
        """The root as published: created here if no unit has signed yet, so the URL always answers."""
        async with self._lock:
            _, cert = await asyncio.to_thread(_load_or_create_root, self._folder)
        return cert

    async def trusted_root(self) -> x509.Certificate | None:
        """For verifying: read only, so ``kuaichu verify`` never makes a root of its own."""
        return await asyncio.to_thread(read_root, self._folder)

    async def signer(self, adcode: str, name: str) -> UnitSigner:
        async with self._lock:
            known = self._signers.get(adcode)
            if known is None or not _current(known.cert, known.key, known.root, name):
                known = await asyncio.to_thread(_unit_signer, self._folder, adcode, name)
                self._signers[adcode] = known
        return known
