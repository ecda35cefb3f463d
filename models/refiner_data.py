"""Build the corner refiner's training set (models/work/refiner-train.npz).

Each sample is what the device gives the refiner: a window straightened from a detector's guess of
a plate's corners (``device.ocr.geometry.refine_window``), and what it should answer: the true
corners in that window. The guesses are the true corners moved the ways the detector gets them
wrong (shifted, too wide or narrow, too high or low, turned, slanted, each corner a little off;
from far off to nearly right, since the device asks twice), and the shipped detector's own finds
in random views of the real training photographs (models/found.py; rebuild after retraining the
detector). Plates: many spoiled copies of each real training photograph's plate, and synthetic
close-ups of every kind (models/synth.py).
Run: ``.venv/bin/python -m models.refiner_data`` (it runs the shipped detector).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from device.ocr.detector import Detector
from device.ocr.geometry import REF_H, REF_W, Quad, perspective_coeffs, refine_window, to_window, window_pixels
from device.ocr.reader import DETECTOR_FILE, MODELS_DIR
from models.found import random_view, same_plate
from models.pool import worker_pool
from models.realdata import REPO, RealPlate, Split, real_plates
from models.recogniser_data import _spoiled_around
from models.synth import synth_photo

WORK = REPO / "models" / "work"

Samples = tuple[NDArray[np.uint8], NDArray[np.float32]]


def guess(rng: random.Random, corners: Quad) -> Quad:
    """``corners`` as a detector might find them: shifted, scaled, turned (to 12 degrees), slanted; little or much."""
    level = rng.choice((0.15, 0.4, 0.7, 1.0, 1.0, 1.4, 2.0))
    slant = rng.uniform(-0.1, 0.1) * level  # the top edge moved along the plate against the bottom one
    tl, tr, br, bl = corners
    aspect = (math.dist(tl, tr) + math.dist(bl, br)) / max(1e-6, math.dist(tl, bl) + math.dist(tr, br))
    dx, dy = rng.uniform(-0.07, 0.07) * level, rng.uniform(-0.22, 0.22) * level
    sx, sy = 1 + rng.uniform(-0.1, 0.1) * level, 1 + rng.uniform(-0.28, 0.28) * level
    turn = math.radians(rng.uniform(-6, 6) * level)
    c, s = math.cos(turn), math.sin(turn)
    unit = perspective_coeffs([(0, 0), (1, 0), (1, 1), (0, 1)], corners)
    a, b, cc, d, e, f, g, h = unit
    out = []
    for u, v in ((0, 0), (1, 0), (1, 1), (0, 1)):
        x, y = (u - 0.5) * sx * aspect, (v - 0.5) * sy  # in plate heights, from the centre
        x, y = x * c - y * s, x * s + y * c
        u2 = x / aspect + 0.5 + dx + slant * (v - 0.5) + rng.uniform(-0.035, 0.035) * level
        v2 = y + 0.5 + dy + rng.uniform(-0.09, 0.09) * level
        w = g * u2 + h * v2 + 1
        out.append(((a * u2 + b * v2 + cc) / w, (d * u2 + e * v2 + f) / w))
    return (out[0], out[1], out[2], out[3])


def sample(rng: random.Random, image: Image.Image, corners: Quad) -> tuple[NDArray[np.uint8], list[float]]:
    window = refine_window(guess(rng, corners))
    return window_pixels(image, window), [v for p in to_window(window, corners) for v in p]


def _real_chunk(args: tuple[int, list[RealPlate], int]) -> Samples:
    seed, plates, copies = args
    rng = random.Random(seed)
    xs, ys = (
        np.zeros((len(plates) * copies, REF_H, REF_W, 3), np.uint8),
        np.zeros((len(plates) * copies, 8), np.float32),
    )
    i = 0
    for plate in plates:
        assert plate.corners is not None
        image = Image.open(plate.path).convert("RGB")
        for _ in range(copies):
            xs[i], ys[i] = sample(rng, _spoiled_around(rng, image, plate.corners), plate.corners)
            i += 1
    return xs, ys


def _found_chunk(args: tuple[int, list[RealPlate], int]) -> Samples:
    """Windows from the shipped detector's own finds, in random views of the real photographs."""
    seed, plates, views = args
    rng = random.Random(seed)
    detector = Detector(MODELS_DIR / DETECTOR_FILE)
    xs, ys = [], []
    for plate in plates:
        assert plate.corners is not None
        photo = Image.open(plate.path).convert("RGB")
        for _ in range(views):
            view, truth = random_view(rng, photo, plate.corners)
            hit = [d.corners for d in detector.detect(view) if same_plate(d.corners, truth)]
            if hit:
                window = refine_window(hit[0])
                xs.append(window_pixels(_spoiled_around(rng, view, truth), window))
                ys.append([v for p in to_window(window, truth) for v in p])
    return np.array(xs, np.uint8).reshape(-1, REF_H, REF_W, 3), np.array(ys, np.float32).reshape(-1, 8)


def _synth_chunk(args: tuple[int, int]) -> Samples:
    seed, n = args
    rng = random.Random(seed)
    xs, ys = np.zeros((n, REF_H, REF_W, 3), np.uint8), np.zeros((n, 8), np.float32)
    for i in range(n):
        canvas, quad, _ = synth_photo(rng)
        xs[i], ys[i] = sample(rng, canvas, quad)
    return xs, ys


def build(synthetic: int, copies: int, views: int, workers: int) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    train_real = [p for p in real_plates(Split.TRAIN) if p.corners is not None]
    jobs_real = [(20_000 + i, train_real[i : i + 10], copies) for i in range(0, len(train_real), 10)]
    chunk = 1000
    jobs_synth = [(30_000 + i, min(chunk, synthetic - i)) for i in range(0, synthetic, chunk)]
    xs, ys = [], []
    with worker_pool(workers) as pool:
        for x, y in pool.map(_real_chunk, jobs_real):
            xs.append(x)
            ys.append(y)
        print(f"real: {sum(map(len, xs))} windows from {len(train_real)} photos, {time.monotonic() - started:.0f} s")
        jobs_found = [(40_000 + i, train_real[i : i + 10], views) for i in range(0, len(train_real), 10)]
        for x, y in pool.map(_found_chunk, jobs_found):
            xs.append(x)
            ys.append(y)
        print(f"real, detector's finds: {sum(map(len, xs))} windows so far, {time.monotonic() - started:.0f} s")
        for done, (x, y) in enumerate(pool.map(_synth_chunk, jobs_synth), 1):
            xs.append(x)
            ys.append(y)
            print(f"synthetic: {done * chunk}/{synthetic}, {time.monotonic() - started:.0f} s", flush=True)
    np.savez(WORK / "refiner-train.npz", x=np.concatenate(xs), y=np.concatenate(ys))
    print(f"saved {sum(map(len, xs))} windows in {time.monotonic() - started:.0f} s", flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--synthetic", type=int, default=16_000)
    parser.add_argument("--copies", type=int, default=64, help="windows per real training plate")
    parser.add_argument("--views", type=int, default=24, help="views of each real training photo for the detector")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    build(args.synthetic, args.copies, args.views, args.workers)


if __name__ == "__main__":
    main(sys.argv[1:])
