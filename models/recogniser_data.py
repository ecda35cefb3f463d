"""Build the recogniser's training and validation sets (models/work/recogniser-*.npz).

Training: synthetic crops of every kind (models/synth.py), many re-cut, re-spoiled copies of each
real training photograph's plate, and crops of them cut where the shipped detector and corner
refiner put the plate (models/found.py), so the recogniser learns the crops the device gives it;
rebuild after retraining either. Validation: the held-out real plates, cut once from their
labelled corners. Run: ``.venv/bin/python -m models.recogniser_data`` (it runs the shipped models).

``--plate-reads DIR`` (repeatable) adds the reads dispatchers confirmed or corrected, as ``kuaichu
server plate-reads DIR`` exported them: their training part as re-cut, re-spoiled copies like the
photographs', their held-out part to the validation set (``models.realdata.reviewed_plates``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from device.ocr.detector import Detector
from device.ocr.geometry import REC_H, REC_W, Quad, drawn_in, straighten
from device.ocr.reader import DETECTOR_FILE, MODELS_DIR, REFINER_FILE
from device.ocr.refiner import Refiner
from models.found import random_view, same_plate
from models.pool import worker_pool
from models.realdata import REPO, RealPlate, Split, real_plates, reviewed_plates
from models.synth import CORNER_ERROR, degrade, jitter, synth_crop
from protocol.plates import ALPHABET, PlateKind, plate_kind

WORK = REPO / "models" / "work"
MAX_LEN = 8
KINDS = list(PlateKind)
# How far a found plate's corners are drawn in towards its centre (across, up) before it is cut:
# the reader's five looks before device.ocr.reader.LOOKS were cut to two (picked with a recogniser
# trained on these; the shipped one was trained on them too).
FOUND_DRAWN_IN = ((1.0, 1.0), (0.94, 0.9), (1.0, 0.9), (0.94, 1.0), (0.97, 0.9))


def encode(text: str) -> list[int]:
    return [ALPHABET.index(c) for c in text] + [-1] * (MAX_LEN - len(text))


def crop_quad(plate: RealPlate, image: Image.Image) -> Quad:
    if plate.corners is not None:
        return plate.corners
    w, h = image.size
    return ((0, 0), (w, 0), (w, h), (0, h))


def _synth_chunk(args: tuple[int, int]) -> tuple[NDArray[np.uint8], list[str], list[int]]:
    seed, n = args
    rng = random.Random(seed)
    xs, texts, kinds = np.zeros((n, REC_H, REC_W, 3), np.uint8), [], []
    for i in range(n):
        xs[i], text, kind = synth_crop(rng)
        texts.append(text)
        kinds.append(KINDS.index(kind))
    return xs, texts, kinds


def _real_chunk(args: tuple[int, list[RealPlate], int]) -> tuple[NDArray[np.uint8], list[str], list[int]]:
    seed, plates, copies = args
    rng = random.Random(seed)
    xs, texts, kinds = np.zeros((len(plates) * copies, REC_H, REC_W, 3), np.uint8), [], []
    i = 0
    for plate in plates:
        image = Image.open(plate.path).convert("RGB")
        quad = crop_quad(plate, image)
        kind = plate.colour or plate_kind(plate.text) or PlateKind.BLUE
        for _ in range(copies):
            # Spoil a region around the plate only: cheaper than the whole photograph.
            xs[i] = straighten(_spoiled_around(rng, image, quad), jitter(rng, quad, CORNER_ERROR))
            texts.append(plate.text)
            kinds.append(KINDS.index(kind))
            i += 1
    return xs, texts, kinds


def _found_chunk(args: tuple[int, list[RealPlate], int]) -> tuple[NDArray[np.uint8], list[str], list[int]]:
    """Crops as the device cuts them: the shipped detector's and refiner's corners in random views of
    the real photographs, drawn in as the reader draws them in (FOUND_DRAWN_IN)."""
    seed, plates, views = args
    rng = random.Random(seed)
    detector, refiner = Detector(MODELS_DIR / DETECTOR_FILE), Refiner(MODELS_DIR / REFINER_FILE)
    xs, texts, kinds = [], [], []
    for plate in plates:
        assert plate.corners is not None
        photo = Image.open(plate.path).convert("RGB")
        kind = plate_kind(plate.text) or PlateKind.BLUE
        for _ in range(views):
            view, truth = random_view(rng, photo, plate.corners)
            hit = [d.corners for d in detector.detect(view) if same_plate(d.corners, truth)]
            if not hit:
                continue
            corners = drawn_in(refiner.refine(view, hit[0]), *rng.choice(FOUND_DRAWN_IN))
            xs.append(straighten(_spoiled_around(rng, view, truth), corners, double_row=False))
            texts.append(plate.text)
            kinds.append(KINDS.index(kind))
    return np.array(xs, np.uint8).reshape(-1, REC_H, REC_W, 3), texts, kinds


def _spoiled_around(rng: random.Random, image: Image.Image, quad: Quad) -> Image.Image:
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    w, h = max(xs) - min(xs), max(ys) - min(ys)
    x0, y0 = max(0, int(min(xs) - w * 0.3)), max(0, int(min(ys) - h * 0.6))
    region = image.crop((x0, y0, min(image.width, int(max(xs) + w * 0.3)), min(image.height, int(max(ys) + h * 0.6))))
    scale = rng.uniform(0.25, 1.0) if rng.random() < 0.5 else 1.0  # the plate seen from further away
    if scale < 1.0:
        small = region.resize((max(8, round(region.width * scale)), max(4, round(region.height * scale))))
        region = small.resize(region.size, Image.Resampling.BILINEAR)
    spoiled = degrade(rng, region) if rng.random() < 0.7 else region
    canvas = image.copy()
    canvas.paste(spoiled, (x0, y0))
    return canvas


def build(
    synthetic: int, copies: int, views: int, workers: int, work: Path = WORK, plate_reads: Sequence[Path] = ()
) -> None:
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    chunk = 1000
    xs: list[NDArray[np.uint8]] = []
    texts: list[str] = []
    kinds: list[int] = []
    reviewed = [p for folder in plate_reads for p in reviewed_plates(folder)]
    train_real = real_plates(Split.TRAIN) + [p for p in reviewed if p.split is Split.TRAIN]
    if reviewed:
        held = sum(p.split is Split.VALIDATION for p in reviewed)
        print(f"reads dispatchers reviewed: {len(reviewed) - held} to train on, {held} held out", flush=True)
    jobs_real = [(10_000 + i, train_real[i : i + 10], copies) for i in range(0, len(train_real), 10)]
    jobs_synth = [(i, min(chunk, synthetic - i)) for i in range(0, synthetic, chunk)]
    with worker_pool(workers) as pool:
        for x, t, k in pool.map(_real_chunk, jobs_real):
            xs.append(x)
            texts.extend(t)
            kinds.extend(k)
        print(f"real: {len(texts)} crops from {len(train_real)} photos, {time.monotonic() - started:.0f} s", flush=True)
        scenes = [p for p in train_real if p.corners is not None]
        jobs_found = [(50_000 + i, scenes[i : i + 10], views) for i in range(0, len(scenes), 10)]
        for x, t, k in pool.map(_found_chunk, jobs_found):
            xs.append(x)
            texts.extend(t)
            kinds.extend(k)
        print(f"real, as found on a unit: {len(texts)} crops in all, {time.monotonic() - started:.0f} s", flush=True)
        for done, (x, t, k) in enumerate(pool.map(_synth_chunk, jobs_synth), 1):
            xs.append(x)
            texts.extend(t)
            kinds.extend(k)
            print(f"synthetic: {done * chunk}/{synthetic}, {time.monotonic() - started:.0f} s", flush=True)
    np.savez(
        work / "recogniser-train.npz",
        x=np.concatenate(xs),
        y=np.array([encode(t) for t in texts], np.int32),
        kind=np.array(kinds, np.int32),
    )
    val = real_plates(Split.VALIDATION) + [p for p in reviewed if p.split is Split.VALIDATION]
    vx = np.zeros((len(val), REC_H, REC_W, 3), np.uint8)
    for i, plate in enumerate(val):
        image = Image.open(plate.path).convert("RGB")
        vx[i] = straighten(image, crop_quad(plate, image))
    np.savez(
        work / "recogniser-validation.npz",
        x=vx,
        y=np.array([encode(p.text) for p in val], np.int32),
        kind=np.array([KINDS.index(p.colour or plate_kind(p.text) or PlateKind.BLUE) for p in val], np.int32),
    )
    print(f"saved {len(texts)} training and {len(val)} validation crops in {time.monotonic() - started:.0f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--synthetic", type=int, default=40_000)
    parser.add_argument("--copies", type=int, default=40, help="re-cut copies of each real training plate")
    parser.add_argument("--views", type=int, default=24, help="views of each real training photo, cut as found")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=WORK, help=f"where the sets go (default {WORK})")
    parser.add_argument(
        "--plate-reads",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a kuaichu server plate-reads folder",
    )
    args = parser.parse_args(argv)
    build(args.synthetic, args.copies, args.views, args.workers, args.work, args.plate_reads)


if __name__ == "__main__":
    main(sys.argv[1:])
