"""Files the unit keeps for evidence, written so that a power cut leaves each whole or absent."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """The rename is atomic; the fsync before it makes sure that what is renamed is on the card."""
    partial = path.with_name(path.name + ".part")
    with partial.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    partial.replace(path)
