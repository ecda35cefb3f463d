"""A party's photos from the web app over a real worker: uploaded in chunks, resumed after a cut
(a chunk the server took whose answer never came, then asked where to go on), kept with the
photo's EXIF time and position, hashed, listed for the dispatcher and the party; a file that is no
photo, or too large, refused with what to do."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from tests.cases import logged_in
from tests.conftest import RunningServer
from tests.parties import stack
from tests.phones import CUIHU, phone_login, position
from tests.services import Mosquitto
from tests.sms_provider import Provider

__all__ = ["stack"]  # the fixture

CHUNK = 64 * 1024


def photo_with_exif() -> bytes:
    """A 1024x768 JPEG of noise (so it spans many chunks), taken 2026-12-07 10:00:00 at 翠湖."""
    pixels = np.random.default_rng(7).integers(0, 255, (768, 1024, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[271], exif[272] = "Kuaichu", "TestPhone"
    exif.get_ifd(0x8769)[36867] = "2026:12:07 10:00:00"
    exif.get_ifd(0x8825).update({1: "N", 2: (25.0, 2.0, 43.08), 3: "E", 4: (102.0, 42.0, 14.4)})
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


async def test_a_photo_upload_resumes_after_a_cut_and_keeps_its_exif(
    stack: tuple[RunningServer, Provider, Mosquitto], tmp_path: Path
) -> None:
    server, provider, _broker = stack
    phone = await phone_login(server, provider, "13700003331")
    assert (await phone.post("/api/portal/report", json=position(CUIHU))).status_code == 201
    data = photo_with_exif()
    assert len(data) > 4 * CHUNK
    digest = hashlib.sha256(data).hexdigest()
    started = await phone.post(
        "/api/portal/photos", json={"name": "车损.jpg", "kind": "damage", "size": len(data), "sha256": digest}
    )
    assert started.status_code == 201, started.text
    upload_id = started.json()["upload_id"]
    url = f"/api/portal/photos/{upload_id}"

    async def put(offset: int) -> dict[str, object]:
        response = await phone.put(url, params={"offset": offset}, content=data[offset : offset + CHUNK])
        assert response.status_code == 200, response.text
        return dict(response.json())

    assert (await put(0))["offset"] == CHUNK
    assert (await put(CHUNK))["offset"] == 2 * CHUNK  # the answer "lost": the phone does not know
    # The connection comes back: resending the same chunk is answered with where to go on ...
    again = await put(CHUNK)
    assert again == {"upload_id": upload_id, "offset": 2 * CHUNK, "resend": True}
    # ... and so is asking; a chunk past the end of what arrived is not taken.
    assert (await phone.get(url)).json()["offset"] == 2 * CHUNK
    assert (await put(3 * CHUNK))["offset"] == 2 * CHUNK
    offset = 2 * CHUNK
    answer: dict[str, object] = {}
    while offset < len(data):
        answer = await put(offset)
        offset = int(str(answer["offset"]))
    assert answer["done"] is True
    evidence = answer["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["sha256"] == digest and evidence["kind"] == "车辆损失"
    assert evidence["exif"]["taken_at_local"] == "2026:12:07 10:00:00"
    assert evidence["exif"]["taken_at"] == "2026-12-07T02:00:00Z"  # Beijing time, as UTC
    assert abs(evidence["exif"]["gps"]["lat"] - 25.0453) < 1e-4 and abs(evidence["exif"]["gps"]["lon"] - 102.704) < 1e-4

    # The dispatcher's case evidence: the photo, the party's, the same bytes.
    wuhua = await logged_in(server, "wuhua")
    (case,) = [c for c in (await wuhua.http.get("/api/cases")).json() if c.get("reporter_phone") == "13700003331"]
    (photo,) = [e for e in (await wuhua.http.get(f"/api/cases/{case['id']}/evidence")).json() if e["kind"] == "photo"]
    assert photo["party_id"] is not None and photo["meta"]["exif"]["camera"] == "Kuaichu TestPhone"
    assert photo["media_start"] == "2026-12-07T02:00:00.000Z"
    stored = await wuhua.http.get(photo["url"])
    assert stored.content == data and stored.headers["x-evidence-sha256"] == digest
    # The party's own list has it as theirs.
    view = (await phone.get("/api/portal/case")).json()
    assert [e["mine"] for e in view["evidence"] if e["kind"] == "当事人上传照片"] == [True]
    await wuhua.close()

    # Not a photo (whatever its name says), or too large: refused, saying what to do.
    pdf = b"%PDF-1.7\n" + bytes(1000)
    other = (await phone.post("/api/portal/photos", json={"name": "x.jpg", "kind": "scene", "size": len(pdf)})).json()
    refused = await phone.put(f"/api/portal/photos/{other['upload_id']}", params={"offset": 0}, content=pdf)
    assert refused.status_code == 422 and "JPEG、PNG或HEIC" in refused.json()["detail"]
    assert (await phone.get(f"/api/portal/photos/{other['upload_id']}")).status_code == 404  # given up
    huge = await phone.post("/api/portal/photos", json={"name": "big.jpg", "kind": "scene", "size": 16 * 1024 * 1024})
    assert huge.status_code == 422 and "15MB" in huge.json()["detail"]
    heic = bytes(4) + b"ftypheic" + bytes(500)
    started_heic = (
        await phone.post("/api/portal/photos", json={"name": "a.heic", "kind": "licence", "size": 512})
    ).json()
    kept = await phone.put(f"/api/portal/photos/{started_heic['upload_id']}", params={"offset": 0}, content=heic)
    assert kept.status_code == 200 and kept.json()["done"] is True
    assert kept.json()["evidence"]["exif"] is None  # kept as it is; Pillow reads no HEIC here
    await phone.aclose()
