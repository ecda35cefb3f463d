"""Uploads on the server's disk: what was asked for, the bytes received so far, the finished file.

Each request is ``{upload_id}.json`` in ``data_dir/uploads`` from the moment a dispatcher asks,
so that a server restart forgets nothing; the bytes go to ``{upload_id}.part`` beside it, and its
length is the offset the device resumes from. A finished file is hashed, flushed to disk and
linked into the case's evidence folder under its final name: a link fails if the name is taken,
so an evidence file is never overwritten. Everything here blocks: callers use worker threads.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from server.calls.recorder import sha256_of

EXTENSIONS = {"still": "jpg", "clip": "mkv"}


@dataclass
class UploadRequest:
    upload_id: str
    kind: str  # still / clip
    device_id: str
    call_id: str
    case_id: int
    case_no: str
    unit: str
    operator_id: int
    requested_at: str
    # From the first chunk on: content_type, size, sha256, captured_at, captured_until, as the
    # device declared them; every later chunk must declare the same.
    declared: dict[str, Any] | None = field(default=None)

    def file_name(self) -> str:
        return f"{self.kind}-{self.upload_id}.{EXTENSIONS[self.kind]}"


class IncomingFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _part(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.part"

    def save(self, request: UploadRequest) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{request.upload_id}.json"
        partial = path.with_suffix(".json.new")
        partial.write_text(json.dumps(asdict(request)))
        partial.replace(path)

    def load(self, upload_id: str) -> UploadRequest | None:
        try:
            raw = (self.folder / f"{upload_id}.json").read_text()
        except FileNotFoundError:
            return None
        return UploadRequest(**json.loads(raw))

    def received(self, upload_id: str) -> int:
        try:
            return self._part(upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, upload_id: str, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset``, which must be the end of what is there; returns the new end."""
        with self._part(upload_id).open("ab") as f:
            if f.tell() != offset:
                raise ValueError(f"offset {offset} is not the end of the upload ({f.tell()})")
            f.write(data)
            return f.tell()

    def received_file(self, upload_id: str) -> Path:
        """What has arrived so far, to be read where it lies (a photo opened to check it)."""
        return self._part(upload_id)

    def digest(self, upload_id: str) -> str:
        """The SHA-256 of everything received, once it is safely on disk."""
        part = self._part(upload_id)
        with part.open("rb+") as f:
            os.fsync(f.fileno())
        return sha256_of(part)

    def place(self, upload_id: str, target: Path) -> None:
        """Link the finished upload in as ``target``; FileExistsError if that name is taken."""
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(self._part(upload_id), target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def discard(self, upload_id: str) -> None:
        self._part(upload_id).unlink(missing_ok=True)
        (self.folder / f"{upload_id}.json").unlink(missing_ok=True)
