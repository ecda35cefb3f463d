"""Plate OCR as shipped: accuracy on held-out real photographs and synthetic plates, and its speed.

Runs the committed int8 models (``models/detector.tflite``, ``models/recogniser.tflite``) through
the device's own reader (``device.ocr.reader.PlateReader``) on one thread, as a unit runs them:

- held-out real photographs (``models.realdata``, the validation part: never trained on): whole
  scenes through detector + recogniser (a plate counts as read when a read's box overlaps the
  labelled box, IoU >= 0.5, with exactly the labelled text; detection recall is the share of
  labelled plates with such a find, its corners refined, whatever its text), and the recogniser alone on the
  labelled corners and on the HyperLPR crops;
- a fixed synthetic test set per plate form (seeded, so every run sees the same plates): the
  recogniser on straightened crops, and detector + recogniser on simulated 1280 x 720 crash
  scenes with pasted plates;
- speed: reading one plate (straightening and recognising it from each of the reader's looks,
  ``device.ocr.reader.LOOKS``), and a whole 1280 x 720 frame (detection, refining, straightening
  and reading every plate in it), median of repeated runs.

    .venv/bin/python -m bench.ocr [--synthetic-per-form 100] [--frames 40]

Last line: ``real_exact=… real_char=… real_recall=… real_rec_exact=… synth_exact=… synth_frame_exact=…
rec_ms=… frame_ms=… models_kb=…``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from device.ocr.reader import PlateReader, load_image
from device.sim.scene import Scene
from models.realdata import Split, real_plates
from models.synth import FORMS, SceneFrames, random_training_plate, synth_crop

SYNTHETIC_SEED = 1000  # bench/ocr_choice.py draws its second set from other seeds


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def char_accuracy(read: str, truth: str) -> float:
    """1 - edit distance / length: a dropped or extra character costs one, not the rest of the plate."""
    prev = list(range(len(truth) + 1))
    for i, a in enumerate(read, 1):
        cur = [i]
        for j, b in enumerate(truth, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return max(0.0, 1 - prev[-1] / len(truth))


def box_of(corners: tuple[tuple[float, float], ...]) -> tuple[int, int, int, int]:
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    return (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))


class Tally:
    def __init__(self) -> None:
        self.n = self.exact = self.found = 0
        self.chars = 0.0

    def add(self, truth: str, read: str | None, found: bool = True) -> None:
        self.n += 1
        self.found += found
        self.exact += read == truth
        self.chars += char_accuracy(read or "", truth)

    def pct(self, value: float) -> float:
        return 100 * value / max(1, self.n)


def frame_reads(
    reader: PlateReader, image: Image.Image, truths: list[tuple[str, tuple[tuple[float, float], ...]]], tally: Tally
) -> None:
    located = [box_of(reader.refiner.refine(image, d.corners)) for d in reader.detector.detect(image)]
    reads = reader.read_frame(image)
    for text, corners in truths:
        box = box_of(corners)
        found = any(iou(b, box) >= 0.5 for b in located)
        matching = [r for r in reads if iou(r.box, box) >= 0.5]
        tally.add(text, matching[0].text if matching else None, found)


def synthetic_reads(
    reader: PlateReader, seed: int, per_form: int
) -> tuple[dict[str, Tally], Tally, list[NDArray[np.uint8]]]:
    """The recogniser alone on ``per_form`` synthetic crops of each form (form ``f`` drawn with seed
    ``seed + f``, so each form's plates stay the same when forms are added): per form, overall, and
    the crops."""
    forms: dict[str, Tally] = defaultdict(Tally)
    overall, crops = Tally(), []
    for f, form in enumerate(FORMS):
        rng = random.Random(seed + f)
        for _ in range(per_form):
            crop, text, _ = synth_crop(rng, random_training_plate(rng, form))
            crops.append(crop)
            read = reader.recogniser.read(crop)
            forms[form].add(text, read.text if read else None)
            overall.add(text, read.text if read else None)
    return forms, overall, crops


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--synthetic-per-form", type=int, default=100)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--speed-rounds", type=int, default=30)
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    reader = PlateReader(threads=1)

    real_frames, real_rec, misses = Tally(), Tally(), []
    for plate in real_plates(Split.VALIDATION):
        image = load_image(plate.path)
        if plate.corners is None:
            reads = reader.read_crop(image)
            real_rec.add(plate.text, reads[0].text if reads else None)
            continue
        frame_reads(reader, image, [(plate.text, plate.corners)], real_frames)
        got = reader.read_at(image, plate.corners)
        real_rec.add(plate.text, got.text if got else None)
        if got is None or got.text != plate.text:
            misses.append(f"{plate.path.name}: {got.text if got else None}")
    print(
        f"held-out real scenes: {real_frames.n} plates, read exactly {real_frames.pct(real_frames.exact):.1f} %, "
        f"characters {real_frames.pct(real_frames.chars):.1f} %, detected {real_frames.pct(real_frames.found):.1f} %"
    )
    print(
        f"held-out real, recogniser on labelled corners and crops: {real_rec.n} plates, "
        f"exact {real_rec.pct(real_rec.exact):.1f} %, characters {real_rec.pct(real_rec.chars):.1f} %"
    )
    for miss in misses:
        print(f"  recogniser missed {miss}")

    per_form, synth_all, crops = synthetic_reads(reader, SYNTHETIC_SEED, args.synthetic_per_form)
    for form in FORMS:
        t = per_form[form]
        print(f"synthetic {form:24s}: {t.n} plates, exact {t.pct(t.exact):5.1f} %, characters {t.pct(t.chars):5.1f} %")

    frames, synth_frames = SceneFrames(random.Random(77), scenes=8), Tally()
    for _ in range(args.frames):
        image, plates = frames.frame()
        frame_reads(reader, image, [(text, quad) for text, quad in plates], synth_frames)
    print(
        f"synthetic 1280x720 scenes: {synth_frames.n} plates, "
        f"read exactly {synth_frames.pct(synth_frames.exact):.1f} %, "
        f"detected {synth_frames.pct(synth_frames.found):.1f} %"
    )

    rec_times = []
    for crop in crops[: args.speed_rounds * 5]:
        one = Image.fromarray(crop)
        t0 = time.perf_counter()
        reader.read_crop(one)  # every look the reader takes at a plate, each straightened and read
        rec_times.append(time.perf_counter() - t0)
    still = Image.fromarray(Scene(1280, 720, seed=3).render(0, counter=False).image)
    frame_times = []
    for _ in range(args.speed_rounds):
        t0 = time.perf_counter()
        n = len(reader.read_frame(still))
        frame_times.append(time.perf_counter() - t0)
    rec_ms, frame_ms = 1000 * statistics.median(rec_times), 1000 * statistics.median(frame_times)
    kb = reader.model_bytes / 1024
    print(f"recogniser {rec_ms:.2f} ms per plate (all looks); 1280x720 frame ({n} plates read) {frame_ms:.1f} ms")
    print(
        f"models: detector {reader.detector.model.size_bytes / 1024:.0f} KiB, "
        f"refiner {reader.refiner.model.size_bytes / 1024:.0f} KiB, "
        f"recogniser {reader.recogniser.model.size_bytes / 1024:.0f} KiB"
    )
    print(
        f"real_exact={real_frames.pct(real_frames.exact):.1f} real_char={real_frames.pct(real_frames.chars):.1f} "
        f"real_recall={real_frames.pct(real_frames.found):.1f} real_rec_exact={real_rec.pct(real_rec.exact):.1f} "
        f"synth_exact={synth_all.pct(synth_all.exact):.1f} "
        f"synth_frame_exact={synth_frames.pct(synth_frames.exact):.1f} "
        f"rec_ms={rec_ms:.2f} frame_ms={frame_ms:.1f} models_kb={kb:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
