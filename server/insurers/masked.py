"""The one place an insurer's evidence link asks for the file to serve.

An insurer is to see evidence with other people's faces and non-party plates blurred; that copy
is made by the evidence-masking work. Until it fills this hook, the file served is the evidence as
stored (docs/insurers.md says so), which is why this is a hook and not a copy made here.
"""

from __future__ import annotations

from pathlib import Path

from server.db.models import Evidence


async def masked_copy(evidence: Evidence, evidence_dir: Path) -> Path:
    """The file an insurer gets for ``evidence``: for now the stored evidence itself."""
    return evidence_dir / evidence.path
