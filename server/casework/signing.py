"""The issuing unit's signature on a determination PDF, over the document and the evidence hashes.

The PDF is rendered with a fixed-length placeholder in its metadata (the Keywords entry). The
manifest (the document's SHA-256 with the placeholder blank, the case, the version, the hashes of
the evidence it rests on) is signed with the unit's Ed25519 key, and manifest plus signature are
written into the placeholder in place: no byte moves, so the file stays a valid PDF, and changing
any byte outside the placeholder changes the document hash the signature covers.

That file is then signed once more as a standard PDF (``pades``), an incremental update after it:
the document hash covers the file up to the end of its first revision, the PDF signature all of it,
and a determination is genuine only when both stand. A manifest of the first format (issued before
the PDF signature) still covers the whole file, as it did.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509 import Certificate

from server.casework import pades

MARK = b"/Keywords (KCSIG:"
BLOCK_LEN = 2048
FILLER = b"."
PLACEHOLDER = "KCSIG:" + FILLER.decode() * BLOCK_LEN
FORMAT = "kuaichu-determination/2"
WHOLE_FILE_FORMAT = "kuaichu-determination/1"
EOF_MARK = b"%%EOF"


class SignatureError(Exception):
    """The file is not a signed determination, or its signature block is unreadable."""


def canonical(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def evidence_root(evidence: list[tuple[int, str, str]]) -> str:
    """One hash over the (id, kind, sha256) of every evidence file, in id order."""
    return hashlib.sha256(canonical(sorted(evidence))).hexdigest()


def _revision_end(pdf: bytes, start: int) -> int:
    """The end of the revision that holds the block at ``start`` (its %%EOF and line end)."""
    eof = pdf.find(EOF_MARK, start)
    if eof < 0:
        return len(pdf)
    end = eof + len(EOF_MARK)
    for eol in (b"\r\n", b"\n", b"\r"):
        if pdf.startswith(eol, end):
            return end + len(eol)
    return end


def first_revision(pdf: bytes) -> bytes:
    """The file as the Kuaichu signature left it, before the PDF signature's update."""
    start = pdf.find(MARK)
    return pdf if start < 0 else pdf[: _revision_end(pdf, start)]


def _block_span(pdf: bytes) -> tuple[int, int]:
    """The block in the first revision (the PDF signature's update may repeat the metadata)."""
    start = pdf.find(MARK)
    if start < 0 or pdf.find(MARK, start + 1, _revision_end(pdf, start)) >= 0:
        raise SignatureError("not a Kuaichu determination: no signature block")
    start += len(MARK)
    end = start + BLOCK_LEN
    if pdf[end : end + 1] != b")":
        raise SignatureError("the signature block is damaged")
    return start, end


def blank(pdf: bytes) -> bytes:
    start, end = _block_span(pdf)
    return pdf[:start] + FILLER * BLOCK_LEN + pdf[end:]


def document_hash(pdf: bytes) -> str:
    """SHA-256 of the first revision with its signature block blank: what the manifest names."""
    return hashlib.sha256(blank(first_revision(pdf))).hexdigest()


def sign(pdf: bytes, manifest: dict[str, Any], key: Ed25519PrivateKey) -> tuple[bytes, dict[str, Any], str]:
    """The signed file, the full manifest and the signature (base64)."""
    start, end = _block_span(pdf)
    if pdf[start:end] != FILLER * BLOCK_LEN:
        raise SignatureError("already signed")
    manifest = {"format": FORMAT, **manifest, "doc_sha256": hashlib.sha256(pdf).hexdigest()}
    signature = base64.b64encode(key.sign(canonical(manifest))).decode()
    block = base64.b64encode(canonical({"m": manifest, "s": signature}))
    if len(block) > BLOCK_LEN:
        raise SignatureError(f"manifest too large for the signature block ({len(block)} > {BLOCK_LEN})")
    return pdf[:start] + block + FILLER * (BLOCK_LEN - len(block)) + pdf[end:], manifest, signature


@dataclass(frozen=True)
class Verification:
    genuine: bool
    reason: str
    manifest: dict[str, Any] | None = None


def read_block(pdf: bytes) -> tuple[dict[str, Any], str]:
    start, end = _block_span(pdf)
    raw = pdf[start:end].rstrip(FILLER)
    try:
        block = json.loads(base64.b64decode(raw, validate=True))
        manifest, signature = block["m"], block["s"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise SignatureError("the signature block is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in (FORMAT, WHOLE_FILE_FORMAT):
        raise SignatureError("unknown signature format")
    return manifest, str(signature)


def verify(pdf: bytes, public_keys: dict[str, Ed25519PublicKey], root: Certificate | None) -> Verification:
    """Genuine when a known unit key signed this manifest, the document hashes to it and the
    issuing unit's PDF signature under ``root`` covers the whole file. Blocking: run it in a thread."""
    try:
        manifest, signature = read_block(pdf)
    except SignatureError as exc:
        return Verification(False, str(exc))
    key = public_keys.get(str(manifest.get("key_id")))
    if key is None:
        return Verification(False, f"signed with an unknown key {manifest.get('key_id')!r}", manifest)
    try:
        key.verify(base64.b64decode(signature), canonical(manifest))
    except (InvalidSignature, binascii.Error, ValueError):
        return Verification(False, "the signature does not match the manifest: altered", manifest)
    whole_file = manifest["format"] == WHOLE_FILE_FORMAT
    if (hashlib.sha256(blank(pdf)).hexdigest() if whole_file else document_hash(pdf)) != manifest.get("doc_sha256"):
        return Verification(False, "the document was altered after it was signed", manifest)
    if not whole_file:
        if root is None:
            return Verification(False, "this server has no document root to check the PDF signature with", manifest)
        issued = datetime.fromisoformat(str(manifest.get("issued_at")))
        if problem := pades.check(pdf, root, str(manifest.get("unit")), issued):
            return Verification(False, problem, manifest)
    return Verification(True, "genuine and unaltered", manifest)
