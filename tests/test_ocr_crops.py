"""``kuaichu ocr --crops``: any cut-out plate gives its best read, with its type, or nothing if no
plate is in it. Crops are cut by geometry alone (the box around the labelled corners, resized to
94 x 24 as public plate datasets ship them), never chosen by how they read."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from device.ocr.reader import PlateReader, load_image
from device.sim.plates import render_plate
from models.realdata import DATASET_CROP, Split, dataset_crop, real_plates
from models.synth import FORMS, paste_plate, random_quad, random_training_plate
from protocol.plates import PlateKind, PlateType, plate_type


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader()


def test_tight_crops_of_the_held_out_real_photographs_all_read(reader: PlateReader) -> None:
    plates = [p for p in real_plates(Split.VALIDATION) if p.corners is not None]
    unread = exact = 0
    for plate in plates:
        assert plate.corners is not None
        crop = dataset_crop(load_image(plate.path), plate.corners)
        assert crop.size == DATASET_CROP
        reads = reader.read_crop(crop)
        unread += not reads
        exact += bool(reads) and reads[0].text == plate.text
    # As shipped: 64 of 67 exact, none unread. The whole-crop look alone (the reader before the
    # padded detector pass) read 62 and left 3 unread.
    assert unread == 0, f"{unread} of {len(plates)} tight crops gave no read"
    assert exact >= 0.9 * len(plates), f"read {exact} of {len(plates)} tight crops exactly"


def _scene(rng: random.Random, text: str, kind: PlateKind, double: bool) -> tuple[Image.Image, Image.Image]:
    """A plate turned and sheared on a plain ground: the photo, and its 94 x 24 dataset crop."""
    art = render_plate(text, px_per_mm=0.5, kind=kind, double_row=double)
    photo = Image.new("RGB", (art.width * 2, art.height * 3), (70, 80, 90))
    quad = random_quad(rng, art.width, art.height, photo.width / 2, photo.height / 2)
    paste_plate(photo, art, quad)
    return photo, dataset_crop(photo, quad, double)


def test_synthetic_crops_of_every_form_read_with_their_type(reader: PlateReader) -> None:
    rng = random.Random(3)
    exact = total = 0
    for form in FORMS:
        for _ in range(3):
            text, kind, double = random_training_plate(rng, form)
            photo, tight = _scene(rng, text, kind, double)
            for crop in (tight, photo, ImageEnhance.Brightness(tight).enhance(0.35)):
                total += 1
                reads = reader.read_crop(crop)
                if reads and reads[0].text == text:
                    exact += 1
                    assert reads[0].plate_type is plate_type(text, kind, double_row=double), text
    # As shipped: 53 of 90 (tight, loose with the ground around, and dark); the per-form
    # figures are bench/ocr.py's.
    assert exact >= 0.5 * total, f"read {exact} of {total} synthetic crops exactly"


def test_a_plate_found_inside_a_loose_crop_is_placed_in_the_crops_pixels(reader: PlateReader) -> None:
    art = render_plate("云A5H821", px_per_mm=0.5).convert("RGB")
    photo = Image.new("RGB", (art.width * 3, art.height * 5), (200, 200, 190))
    photo.paste(art, (art.width, art.height * 2))
    reads = reader.read_crop(photo)
    assert [(r.text, r.plate_type) for r in reads] == [("云A5H821", PlateType.SMALL)]
    x0, y0, x1, y1 = reads[0].box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    assert art.width < cx < 2 * art.width and 2 * art.height < cy < 3 * art.height, reads[0].box


@pytest.mark.parametrize("size", [DATASET_CROP, (200, 60), (64, 48)])
def test_a_crop_without_a_plate_gives_no_read(reader: PlateReader, size: tuple[int, int]) -> None:
    noise = np.random.default_rng(4).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    assert reader.read_crop(Image.fromarray(noise)) == []
    assert reader.read_crop(Image.new("RGB", size, (120, 120, 120))) == []


def test_ocr_command_says_the_type(tmp_path: Path) -> None:
    crop = tmp_path / "plate.png"
    render_plate("云A1234学", px_per_mm=0.6).convert("RGB").save(crop)
    result = subprocess.run(
        [sys.executable, "-m", "kuaichu.cli", "ocr", "--crops", "--json", str(crop)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    plate = json.loads(result.stdout)["plates"][0]
    assert (plate["text"], plate["kind"], plate["type"], plate["type_name"]) == (
        "云A1234学",
        "yellow",
        "learner",
        "教练汽车号牌",
    )
