"""Files people send, checked by what they are, not what they claim: a photo or a review's evidence
that is cut short, only starts like a picture, is a picture's zip bomb, or is a PDF without its end,
is refused with a reason in Chinese, and nothing of it is kept.

No route takes an archive (a ZIP sent as a photo is refused as not a photo); the picture's own
bomb is a PNG of a few kilobytes that declares billions of pixels.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image

from server.errors import Invalid
from server.portal.attachments import MAX_PIXELS, recognise
from tests.cases import logged_in
from tests.conftest import RunningServer
from tests.parties import stack
from tests.phones import CUIHU, phone_login, position
from tests.review_data import PDF
from tests.services import Mosquitto
from tests.sms_provider import Provider

__all__ = ["stack"]  # the fixture


def photo(fmt: str = "JPEG", size: tuple[int, int] = (640, 480)) -> bytes:
    pixels = np.random.default_rng(3).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt)
    return out.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A 1-bit PNG declaring ``width`` x ``height`` pixels, with a few rows of zeros as its data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * (width // 8 + 1) * 100, 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


JPEG_PHOTO = photo()
HOSTILE = {
    "cut short": JPEG_PHOTO[: len(JPEG_PHOTO) // 2],
    "only its first bytes a JPEG": b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>",
    "a PNG cut short": photo("PNG")[:3000],
    "a PNG of ten billion pixels": png_bomb(100_000, 100_000),
    "a PNG just past the limit": png_bomb(8_001, MAX_PIXELS // 8_000),
}


def test_whole_pictures_and_pdfs_are_taken_as_what_they_are() -> None:
    for name, data, kind in (("a.jpg", JPEG_PHOTO, "image/jpeg"), ("b.png", photo("PNG"), "image/png")):
        assert recognise(name, data, 10_000_000).media_type == kind
    # Named as a photo, a PDF is kept as the PDF it is.
    assert recognise("scan.jpg", PDF, 1000).media_type == "application/pdf"


@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_a_review_file_that_is_no_whole_picture_is_refused_with_a_reason(what: str) -> None:
    with pytest.raises(Invalid) as refused:
        recognise("现场.jpg", HOSTILE[what], 10_000_000)
    assert "文件“现场.jpg”" in str(refused.value)
    assert ("像素太多" if "pixels" in what or "limit" in what else "不完整或已损坏") in str(refused.value)


def test_a_pdf_cut_short_or_an_archive_is_refused_with_a_reason() -> None:
    with pytest.raises(Invalid, match="不是完整的PDF"):
        recognise("认定书.pdf", PDF[:-8], 1000)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "0" * 1_000_000)
    with pytest.raises(Invalid, match="不是照片"):
        recognise("evidence.jpg", archive.getvalue(), 10_000_000)


async def test_a_partys_photo_that_is_no_whole_picture_is_refused_and_nothing_kept(
    stack: tuple[RunningServer, Provider, Mosquitto],
) -> None:
    server, provider, _broker = stack
    phone = await phone_login(server, provider, "13700005551")
    assert (await phone.post("/api/portal/report", json=position(CUIHU))).status_code == 201

    async def upload(data: bytes, declared: int | None = None) -> tuple[str, int, dict[str, Any]]:
        started = await phone.post(
            "/api/portal/photos",
            json={"name": "现场.jpg", "kind": "scene", "size": declared or len(data), "sha256": None},
        )
        assert started.status_code == 201, started.text
        upload_id = started.json()["upload_id"]
        sent = await phone.put(f"/api/portal/photos/{upload_id}", params={"offset": 0}, content=data)
        return upload_id, sent.status_code, sent.json()

    for what, data in HOSTILE.items():
        upload_id, status, answer = await upload(data)
        assert status == 422, (what, answer)
        assert answer["detail"].startswith("照片") and ("不完整" in answer["detail"] or "像素太多" in answer["detail"])
        assert (await phone.get(f"/api/portal/photos/{upload_id}")).status_code == 404, what  # given up
    # Cut short on the way (the phone sent less than it declared): it waits to be resumed, unkept.
    upload_id, status, answer = await upload(JPEG_PHOTO[:1000], declared=len(JPEG_PHOTO))
    assert status == 200 and answer == {"upload_id": upload_id, "offset": 1000}

    wuhua = await logged_in(server, "wuhua")
    (case,) = [c for c in (await wuhua.http.get("/api/cases")).json() if c.get("reporter_phone") == "13700005551"]
    evidence = (await wuhua.http.get(f"/api/cases/{case['id']}/evidence")).json()
    assert [e for e in evidence if e["kind"] == "photo"] == []
    # And a whole photo after all that is kept, as sent.
    upload_id, status, answer = await upload(JPEG_PHOTO)
    assert status == 200 and answer["done"] is True
    assert answer["evidence"]["sha256"] == hashlib.sha256(JPEG_PHOTO).hexdigest()
    await wuhua.close()
    await phone.aclose()
