"""What a technician can learn from the device's certificate without the broker: whose it is, whether
it is in date, and whether the fleet CA the device trusts signed it. Said next to the broker's
verdict, it turns "connection refused" into something to fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from runtime.mqtt import TlsSection


@dataclass(frozen=True)
class CertificateFacts:
    holder: str | None  # the CN, which the broker takes as the MQTT user name
    expires: datetime | None
    problems: list[str] = field(default_factory=list)


def read_certificate(tls: TlsSection, device_id: str, now: datetime) -> CertificateFacts:
    """Blocking (reads files): call it on a worker thread."""
    try:
        cert = x509.load_pem_x509_certificate(tls.cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        return CertificateFacts(None, None, [f"cannot read the certificate {tls.cert_file}: {exc}"])
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    holder = str(names[0].value) if names else None
    expires = cert.not_valid_after_utc
    problems = []
    if holder != device_id:
        problems.append(f"the certificate is for {holder or 'nobody (no CN)'}, not {device_id}")
    if now > expires:
        problems.append(f"the certificate expired on {expires:%Y-%m-%d}")
    if now < cert.not_valid_before_utc:
        problems.append(f"the certificate is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (clock?)")
    try:
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(tls.ca_file.read_bytes()))
    except (OSError, ValueError, TypeError, InvalidSignature):
        problems.append(f"the certificate is not signed by the fleet CA in {tls.ca_file}")
    return CertificateFacts(holder, expires, problems)
