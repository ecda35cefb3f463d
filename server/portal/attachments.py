"""A party's files with a review request (the main evidence): recognised by their first bytes, not
by the name or type the phone claims, size-limited, hashed, and written once under the evidence
folder like every other evidence file.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from server.errors import Invalid

# First bytes -> (media type, extension, what the party is told it is).
SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png", "PNG"),
    (b"%PDF-", "application/pdf", "pdf", "PDF"),
)
KINDS = [kind for *_, kind in SIGNATURES]
NAME_CHARS = 100  # of the file's own name, kept in ``evidence.meta``
# A phone camera's photo is at most 50 MP (8160 x 6120). Past this, opening a file would cost the
# worker hundreds of MB: what a few kilobytes of PNG can declare, the picture's zip bomb.
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class Attachment:
    name: str
    media_type: str
    extension: str
    data: bytes
    sha256: str

    def relative(self, case_no: str, party_id: int) -> str:
        """Where it is kept under the evidence folder: the same file from the same party is one file."""
        return f"{case_no}/review-p{party_id}-{self.sha256[:24]}.{self.extension}"

    def meta(self, review_id: int) -> dict[str, object]:
        return {"name": self.name, "type": self.media_type, "size": len(self.data), "review": review_id}


def recognise(name: str, data: bytes, max_bytes: int) -> Attachment:
    """The file as evidence, or ``Invalid`` saying what the party should send instead."""
    shown = os.path.basename(name.replace("\\", "/"))[:NAME_CHARS] or "未命名"
    if not data:
        raise Invalid(f"文件“{shown}”是空的，请重新选择 (empty file)")
    if len(data) > max_bytes:
        mb = max_bytes / 1_000_000
        raise Invalid(f"文件“{shown}”超过{mb:g}MB，请压缩或分开上传 (file over {mb:g} MB)")
    for magic, media_type, extension, _ in SIGNATURES:
        if data.startswith(magic):
            if media_type == "application/pdf" and b"%%EOF" not in data[-2048:]:
                raise Invalid(f"文件“{shown}”不是完整的PDF（可能没有传完），请重新选择 (truncated PDF)")
            if media_type != "application/pdf" and (problem := image_problem(data)):
                raise Invalid(f"文件“{shown}”{problem}")
            return Attachment(shown, media_type, extension, data, hashlib.sha256(data).hexdigest())
    raise Invalid(
        f"文件“{shown}”不是照片（JPEG、PNG）或PDF，请换成这几种格式再上传 (only JPEG, PNG or PDF files are taken)"
    )


def image_problem(source: bytes | Path) -> str | None:
    """What is wrong with a file that starts like a JPEG or PNG, for the party to read after the
    file's name ("照片…", "文件“x.jpg”…"): cut short, corrupt, only its first bytes a picture's, or
    too many pixels. None when it opens. Blocking: the picture is decoded (a JPEG at an eighth of
    its size, which still reads all of it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS is lower
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
                if image.width * image.height > MAX_PIXELS:
                    return (
                        f"像素太多（{image.width}×{image.height}），请用相机的默认设置拍摄或压缩后再上传 "
                        f"(over {MAX_PIXELS // 1_000_000} megapixels)"
                    )
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except Image.DecompressionBombError:
        return f"像素太多，请压缩后再上传 (over {MAX_PIXELS // 1_000_000} megapixels)"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "不完整或已损坏，无法打开，请重新拍摄或选择 (cut short, corrupt, or no picture)"
    return None


def write_once(path: Path, data: bytes) -> None:
    """Blocking (run it in a thread). A file already there under this name has this content, since
    the name carries its hash; it is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
