"""The determination's standard PDF signature (PAdES baseline B-B, pyHanko) under the issuing unit's
certificate, so that a PDF reader shows who signed it and that it is unaltered.

It is added as an incremental update after the Kuaichu signature block is filled in, and covers the
whole file. Validation never goes to the network: the only trust anchor is the Kuaichu root, no
OCSP or CRL is fetched, and with none embedded the revocation check is skipped (soft-fail): the
root publishes no revocation, a withdrawn determination is a superseded version on record instead.
"""

from __future__ import annotations

import io
from datetime import datetime

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from server.casework.pki import UnitSigner, unit_adcode

FIELD = "KuaichuSignature"


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign(pdf: bytes, signer: UnitSigner, unit_name: str) -> bytes:
    """``pdf`` with the unit's PAdES signature over all of it. Blocking: call it off the event loop."""
    key = signer.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # The root travels in the signature, so a reader that trusts it finds the whole path in the file.
    chain = SimpleCertificateStore.from_certs([_asn1(signer.root)])  # type: ignore[no-untyped-call]
    cms_signer = signers.SimpleSigner(
        signing_cert=_asn1(signer.cert), signing_key=asn1_keys.PrivateKeyInfo.load(key), cert_registry=chain
    )
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        name=unit_name,
        reason="道路交通事故认定书（简易程序）",
        location=unit_name,
    )
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=cms_signer)
    return bytes(out.getbuffer())


def validation_context(root: x509.Certificate, moment: datetime | None = None) -> ValidationContext:
    """Trust the Kuaichu root alone, offline: nothing fetched, missing revocation data no failure."""
    return ValidationContext(
        trust_roots=[_asn1(root)], moment=moment, allow_fetching=False, revocation_mode="soft-fail"
    )


def check(pdf: bytes, root: x509.Certificate, unit: str, moment: datetime) -> str | None:
    """Why the PDF signature does not stand (None when it does): it must be the only one, cover the
    whole file, be intact, chain to ``root`` as it was at ``moment`` and belong to ``unit``.
    Blocking (pyHanko runs its own event loop): call it off the event loop."""
    try:
        found = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        if len(found) != 1:
            return f"expected one PDF signature, found {len(found)}"
        status = validate_pdf_signature(found[0], validation_context(root, moment))
    except Exception:  # an uploaded file is anything: what pyHanko cannot parse is no genuine signature
        return "the PDF signature cannot be read: altered"
    if not status.intact or not status.valid:
        return "the PDF signature does not match the document: altered"
    if status.coverage is not SignatureCoverageLevel.ENTIRE_FILE:
        return "the document was changed after its PDF signature"
    if not status.trusted:
        return "the PDF signature is not by a certificate of this server's root"
    signed_by = unit_adcode(x509.load_der_x509_certificate(status.signing_cert.dump()))
    if signed_by != unit:
        return f"the PDF signature is by unit {signed_by}, not the issuing unit {unit}"
    return None
