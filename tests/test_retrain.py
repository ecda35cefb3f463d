"""Retraining from the console's reviewed reads: ``kuaichu server plate-reads`` writes them, the
recogniser's data step takes them, a fixed share held out by read id. The training itself needs
the training environment (models/setup_train_env.sh) and is not run here."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from device.ocr.geometry import REC_H, REC_W, straighten
from device.sim.plates import random_plate, render_plate
from models.realdata import Split, real_plates, reviewed_plates
from models.recogniser_data import build, encode
from protocol.plates import PlateKind
from server.db.models import PlateRead, PlateReading
from server.plates import write_training_set


def exported(folder: Path, n: int) -> list[tuple[str, str]]:
    """``n`` reviewed reads written as ``kuaichu server plate-reads`` writes them; (confirmed, colour) each."""
    rng = random.Random(6)
    reading = PlateReading(
        id=1,
        reading_id="01J0000000000000000000000A",
        device_id="unit-7",
        report_id="01J0000000000000000000000B",
        source="report",
        captured_at=datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
    )
    rows, truths = [], []
    for i in range(n):
        kind = (PlateKind.BLUE, PlateKind.YELLOW, PlateKind.GREEN)[i % 3]
        text = random_plate(rng, kind)
        art = render_plate(text, px_per_mm=0.4, kind=kind).convert("RGB")
        w, h = art.size
        crop = Image.fromarray(straighten(art, ((0, 0), (w, 0), (w, h), (0, h))))
        jpeg = io.BytesIO()
        crop.save(jpeg, "JPEG", quality=85)
        unit_read = text[:-1] + ("1" if text[-1] != "1" else "2")  # the unit got the last character wrong
        read = PlateRead(
            id=100 + i,
            reading_id=1,
            position=0,
            text=unit_read,
            confidence=0.6,
            kind=kind.value,
            box=[0, 0, 9, 9],
            crop=jpeg.getvalue(),
            confirmed_text=text,
            reviewed_by=3,
            reviewed_at=datetime(2026, 12, 7, 9, 31, tzinfo=UTC),
        )
        rows.append((read, reading))
        truths.append((text, kind.value))
    write_training_set(rows, folder)
    return truths


def test_reviewed_reads_are_labelled_as_confirmed_and_split_by_id(tmp_path: Path) -> None:
    truths = exported(tmp_path, 24)
    plates = reviewed_plates(tmp_path)
    assert [(p.text, p.colour) for p in plates] == truths  # the dispatcher's text, the unit's colour
    assert all(p.corners is None and p.path.is_file() for p in plates)
    held = [p for p in plates if p.split is Split.VALIDATION]
    assert 0 < len(held) < len(plates) // 2  # one in four, by the read's id
    again = tmp_path / "again"
    exported(again, 24)  # the same reads exported again elsewhere: the same split
    assert [p.split for p in reviewed_plates(again)] == [p.split for p in plates]
    assert reviewed_plates(tmp_path, Split.VALIDATION) == held


def test_the_recogniser_data_takes_the_reviewed_reads(tmp_path: Path) -> None:
    exported(tmp_path / "reads", 24)
    plates = reviewed_plates(tmp_path / "reads")
    build(synthetic=2, copies=1, views=0, workers=1, work=tmp_path / "work", plate_reads=[tmp_path / "reads"])
    train = np.load(tmp_path / "work" / "recogniser-train.npz")
    val = np.load(tmp_path / "work" / "recogniser-validation.npz")
    assert train["x"].shape[1:] == (REC_H, REC_W, 3)
    train_labels = {tuple(row) for row in train["y"].tolist()}
    val_labels = {tuple(row) for row in val["y"].tolist()}
    for plate in plates:
        label = tuple(encode(plate.text))
        assert (label in train_labels) is (plate.split is Split.TRAIN), plate.text
        assert (label in val_labels) is (plate.split is Split.VALIDATION), plate.text
    photos = real_plates(Split.TRAIN)
    assert len(train["x"]) == len(photos) + sum(p.split is Split.TRAIN for p in plates) + 2
