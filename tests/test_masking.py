"""Masked copies of evidence (server/evidence): a still keeps the party's plate and blurs the other
and every face; a recording's copy plays as long as the original; the original's bytes and hash
never change, and each copy's record names its original and its masking."""

from __future__ import annotations

import fractions
import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from device.ocr.reader import PlateReader, load_image
from device.sim.scene import Role, Scene
from server.cases import now_utc
from server.db.engine import make_engine, make_sessionmaker, upgrade_schema
from server.db.masked import MaskedCopy
from server.db.models import Case, Evidence, Party, Unit
from server.errors import Conflict
from server.evidence.copies import MaskedCopies, shared_masker
from server.evidence.faces import FaceDetector

FACE = Path(__file__).parent / "data" / "faces" / "grace_hopper.jpg"
CASE_NO = "530102202612070001"


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'kc.db'}"
    await upgrade_schema(url)
    engine = make_engine(url)
    made = make_sessionmaker(engine)
    now = now_utc()
    async with made.begin() as session:
        await session.merge(Unit(adcode="530102", name="五华大队"))
        session.add(
            Case(
                id=1,
                case_no=CASE_NO,
                report_id="01JTESTREPORT0000000000001",
                unit_adcode="530102",
                trigger="button",
                triggered_at=now,
                received_at=now,
                position_source="none",
                report={},
            )
        )
    yield made
    await engine.dispose()


async def add_party(sessions: async_sessionmaker[AsyncSession], position: int, plate: str | None) -> None:
    async with sessions.begin() as session:
        session.add(
            Party(
                case_id=1,
                position=position,
                role="driver",
                name="李建华",
                id_number="530102199001011234",
                phone="13800000000",
                plate=plate,
                updated_at=now_utc(),
            )
        )


async def add_evidence(
    sessions: async_sessionmaker[AsyncSession], evidence_dir: Path, name: str, data: bytes, kind: str = "still"
) -> int:
    path = evidence_dir / CASE_NO / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    evidence = Evidence(
        case_id=1,
        kind=kind,
        path=f"{CASE_NO}/{name}",
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        created_at=now_utc(),
    )
    async with sessions.begin() as session:
        session.add(evidence)
    return evidence.id


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def changed(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Mean absolute difference of the two images inside ``box``, 0-255."""
    pa, pb = (np.asarray(i.crop(box).convert("L"), np.float32) for i in (a, b))
    return float(np.abs(pa - pb).mean())


def detail(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Mean absolute difference between neighbouring pixels inside ``box``: eyes, mouth and
    edges make it high, a smear low."""
    pixels = np.asarray(image.crop(box).convert("L"), np.float32)
    return float(np.abs(np.diff(pixels, axis=0)).mean() + np.abs(np.diff(pixels, axis=1)).mean())


async def test_a_still_keeps_the_partys_plate_and_blurs_the_other_and_the_face(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    frame = Scene(2028, 1520, seed=2).render(0, counter=False)
    party = next(p for p in frame.plates if p.role is Role.STRUCK)
    other = next(p for p in frame.plates if p.role is Role.STRIKING)
    scene = Image.fromarray(frame.image)
    scene.paste(Image.open(FACE).convert("RGB"), (200, 200))  # a bystander, 256 x 300 px
    original = jpeg(scene)
    await add_party(sessions, 1, party.text)
    await add_party(sessions, 2, None)  # a pedestrian: no plate
    evidence_id = await add_evidence(sessions, tmp_path, "still-1.jpg", original)
    copies = MaskedCopies(sessions, tmp_path)

    path, media_type = await copies.masked_copy(evidence_id)

    assert media_type == "image/jpeg" and path.parent == tmp_path / "masked" / CASE_NO
    masked, before = load_image(path), load_image(original)
    texts = {r.text for r in PlateReader().read_frame(masked)}
    assert party.text in texts and other.text not in texts
    assert changed(before, masked, other.box) > 15  # the stranger's plate is a smear
    assert changed(before, masked, party.box) < 4  # the party's is as it was, but for the JPEG
    face = next(f.box for f in FaceDetector().detect(before) if f.box[0] < 456 and f.box[1] < 500)
    face_box = (round(face[0]), round(face[1]), round(face[2]), round(face[3]))
    assert changed(before, masked, face_box) > 15 and detail(masked, face_box) < detail(before, face_box) / 4
    # The original untouched, and the copy's record names it and how it was made.
    assert (tmp_path / CASE_NO / "still-1.jpg").read_bytes() == original
    async with sessions() as session:
        row = await session.get(Evidence, evidence_id)
        copy = (await session.scalars(select(MaskedCopy))).one()
        evidences = await session.scalar(select(func.count()).select_from(Evidence))
    assert row is not None and row.sha256 == hashlib.sha256(original).hexdigest() and evidences == 1
    assert copy.evidence_id == evidence_id and copy.original_sha256 == row.sha256
    assert copy.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and copy.path == str(path.relative_to(tmp_path))
    assert copy.method["kept_plates"] == [party.text] and "detector.tflite" in copy.method["plates"]["models"]
    plates = [f for f in copy.found["found"] if f["kind"] == "plate"]
    assert [(f["read"], f["text"]) for f in plates if f["kept"]] == [(True, party.text)]
    assert all(f["text"] is None for f in plates if not f["kept"])  # a stranger's plate is not written down either
    assert any(f["kind"] == "face" for f in copy.found["found"])

    # Asked again: the same copy. The party's plate corrected away: a new copy, which blurs it too.
    assert await copies.masked_copy(evidence_id) == (path, media_type)
    async with sessions.begin() as session:
        await session.execute(update(Party).where(Party.position == 1).values(plate=None))
    again, _ = await copies.masked_copy(evidence_id)
    assert again != path and changed(before, load_image(again), party.box) > 15
    assert len(await copies.copies_of(evidence_id)) == 2


def recording(path: Path, scene: Scene, frames: int) -> None:
    """A segment as the recorder writes one: VP8 at 15 fps, two tracks of 16 kHz PCM, in Matroska."""
    ms = fractions.Fraction(1, 1000)
    with av.open(str(path), "w", format="matroska") as out:
        video: VideoStream = out.add_stream("libvpx", rate=15)
        video.width, video.height, video.pix_fmt = scene.width, scene.height, "yuv420p"
        video.codec_context.time_base = ms
        voices: list[AudioStream] = [out.add_stream("pcm_s16le", rate=16000, layout="mono") for _ in range(2)]
        for i in range(frames):
            picture = av.VideoFrame.from_ndarray(scene.render(i).image, format="rgb24")
            picture.pts, picture.time_base = round(i * 1000 / 15), ms
            out.mux(video.encode(picture))
        tone = (np.sin(np.arange(320) / 5) * 3000).astype(np.int16)[None]
        for voice in voices:
            for k in range(frames * 1000 // 15 // 20):
                sound = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
                sound.sample_rate, sound.pts, sound.time_base = 16000, k * 320, fractions.Fraction(1, 16000)
                out.mux(voice.encode(sound))
        out.mux(video.encode(None))
        for voice in voices:
            out.mux(voice.encode(None))


def pictures(path: Path) -> list[Image.Image]:
    with av.open(str(path)) as media:
        return [Image.fromarray(f.to_ndarray(format="rgb24")) for f in media.decode(video=0)]


async def test_a_recordings_masked_copy_plays_as_long_as_the_original(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    scene = Scene(640, 480, seed=2)
    source = tmp_path / "segment.mkv"
    recording(source, scene, 30)
    party = next(p for p in scene.render(0).plates if p.role is Role.STRUCK)
    await add_party(sessions, 1, party.text)
    evidence_id = await add_evidence(sessions, tmp_path, "call-1-0001.mkv", source.read_bytes(), "recording")

    path, media_type = await MaskedCopies(sessions, tmp_path).masked_copy(evidence_id)

    assert media_type in {"video/mp4", "video/webm"}
    with av.open(str(source)) as a, av.open(str(path)) as b:
        assert b.duration == pytest.approx(a.duration, abs=1_000_000 / 15)
        assert len(b.streams.audio) == 2
    before, after = pictures(source), pictures(path)
    assert len(after) == len(before) == 30
    for i, (was, now) in enumerate(zip(before, after, strict=True)):
        truth = {p.role: p for p in scene.render(i).plates}
        assert changed(was, now, truth[Role.STRIKING].box) > 10, f"frame {i}: the stranger's plate shows"
    assert (tmp_path / CASE_NO / "call-1-0001.mkv").read_bytes() == source.read_bytes()


async def test_what_cannot_be_masked_is_not_given_out(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    copies = MaskedCopies(sessions, tmp_path)
    sound = await add_evidence(sessions, tmp_path, "scene-1.ogg", b"OggS sound", "scene")
    assert await copies.masked_copy(sound) == (tmp_path / CASE_NO / "scene-1.ogg", "audio/ogg")  # nobody in it
    document = await add_evidence(sessions, tmp_path, "review-1.pdf", b"%PDF-1.7", "review")
    with pytest.raises(Conflict):
        await copies.masked_copy(document)
    broken = await add_evidence(sessions, tmp_path, "still-2.jpg", b"\xff\xd8 not a picture")
    with pytest.raises(Conflict):
        await copies.masked_copy(broken)
    still = await add_evidence(sessions, tmp_path, "still-3.jpg", jpeg(Image.new("RGB", (64, 48))))
    (tmp_path / CASE_NO / "still-3.jpg").write_bytes(jpeg(Image.new("RGB", (64, 48), "white")))  # changed since
    with pytest.raises(Conflict, match="hash"):
        await copies.masked_copy(still)
    assert await copies.copies_of(still) == [] and not list((tmp_path / "masked").rglob("*.*"))
    assert shared_masker() is shared_masker()
