"""The synthetic training data: valid plates of every kind, crops of the recogniser's size, frames with truth."""

from __future__ import annotations

import random
from collections import Counter

from device.ocr.geometry import REC_H, REC_W, is_double_row, straighten
from device.sim.plates import PlateKind, render_plate
from models.synth import SceneFrames, random_quad, random_training_plate, synth_crop
from protocol.plates import EMBASSY, PROVINCES, plate_kinds


def test_training_plates_cover_every_kind_and_province_and_are_valid() -> None:
    rng = random.Random(3)
    samples = [random_training_plate(rng) for _ in range(3000)]
    for text, kind, double in samples:
        assert kind in plate_kinds(text), text
        assert not double or (kind is PlateKind.YELLOW and len(text) == 7)
    kinds = Counter(kind for _, kind, _ in samples)
    assert set(kinds) == set(PlateKind)
    assert {text[0] for text, _, _ in samples} == set(PROVINCES + EMBASSY)
    assert {text[-1] for text, _, _ in samples} >= set("学警挂港澳使领")
    assert any(double for _, _, double in samples)


def test_synthetic_crops_have_the_recogniser_shape() -> None:
    rng = random.Random(5)
    for _ in range(20):
        crop, text, kind = synth_crop(rng)
        assert crop.shape == (REC_H, REC_W, 3) and crop.dtype.name == "uint8"
        assert kind in plate_kinds(text)


def test_straighten_recovers_a_plate_warped_into_a_frame() -> None:
    from PIL import Image

    from models.synth import paste_plate

    art = render_plate("云A5H821", px_per_mm=1.0)
    canvas = Image.new("RGB", (600, 400), (90, 90, 90))
    quad = random_quad(random.Random(1), 300, 300 * 140 / 440, 300, 200)
    paste_plate(canvas, art, quad)
    assert not is_double_row(quad)
    crop = straighten(canvas, quad)
    # the middle of the straightened crop is plate blue, not the grey canvas
    r, _, b = (int(v) for v in crop[REC_H // 2, REC_W // 2 - 20])
    assert b > 120 and b > r + 60


def test_scene_frames_know_where_every_plate_is() -> None:
    frames = SceneFrames(random.Random(2), width=640, height=360, scenes=2)
    image, plates = frames.frame()
    assert image.size == (640, 360)
    for text, quad in plates:
        assert plate_kinds(text)
        assert all(-1 <= x <= 641 and -1 <= y <= 361 for x, y in quad)


def test_a_random_view_of_a_photo_keeps_its_plate_where_the_corners_say() -> None:
    """The training views cut from real photographs (models/found.py): their corners must still be the plate's."""
    from PIL import Image, ImageDraw

    from models.found import random_view, same_plate

    photo = Image.new("RGB", (720, 1160), (90, 90, 90))
    corners = ((300.0, 600.0), (460.0, 610.0), (462.0, 660.0), (298.0, 650.0))
    ImageDraw.Draw(photo).polygon(corners, fill=(20, 40, 200))
    rng = random.Random(4)
    for _ in range(40):
        view, quad = random_view(rng, photo, corners)
        assert all(0 <= x <= view.width and 0 <= y <= view.height for x, y in quad)
        r, _, b = (int(v) for v in straighten(view, quad)[REC_H // 2, REC_W // 2])
        assert b > 150 and r < 60, (view.size, quad)
        assert same_plate(quad, quad)
        tl, tr, br, bl = ((x + view.width, y) for x, y in quad)  # the same plate, one view further right
        assert not same_plate(quad, (tl, tr, br, bl))
