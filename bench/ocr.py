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
- held-out real plates cut as public datasets ship them (the box around the labelled corners,
  94 x 24) through ``kuaichu ocr --crops``'s path (``PlateReader.read_crop``): ``crop94_exact``;
- the held-out real green plates end to end: ``green_exact`` (few: the count is printed);
- each plate type (``protocol.plates.PlateType``) from synthetic photos cut 94 x 24, text and
  type both right: ``kinds_exact``; beside every type, how many real photographs of it exist;
- which province is read as which (synthetic crops of all 31 provinces and 使, Yunnan first;
  then each of Yunnan's prefixes);
- calibration: of the held-out real reads (scenes end to end and 94 x 24 crops) at confidence
  >= 0.9, the share that is right (``conf90_precision``), which the console may pre-fill;
- speed: reading one plate (straightening and recognising it from each of the reader's looks,
  ``device.ocr.reader.LOOKS``), and a whole 1280 x 720 frame (detection, refining, straightening
  and reading every plate in it), median of repeated runs.

    .venv/bin/python -m bench.ocr [--synthetic-per-form 100] [--frames 40] [--crops-per-form 40]

Last line: ``real_exact=… real_char=… real_recall=… real_rec_exact=… synth_exact=… synth_frame_exact=…
rec_ms=… frame_ms=… models_kb=… crop94_exact=… green_exact=… kinds_exact=… conf90_precision=…``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from device.ocr.reader import PlateRead, PlateReader, load_image
from device.sim.plates import YUNNAN_AUTHORITIES
from device.sim.scene import Scene
from models.realdata import Split, dataset_crop, real_plates
from models.synth import FORMS, SceneFrames, random_training_plate, synth_crop, synth_photo
from protocol.plates import EMBASSY, PROVINCES, TYPE_NAMES, PlateKind, PlateType, plate_type

SYNTHETIC_SEED = 1000  # bench/ocr_choice.py draws its second set from other seeds
CROPS_SEED = 3000
PROVINCE_SEED = 4000
# Reads at least this sure are the ones the console may pre-fill; the dispatcher checks the rest.
CONFIDENT = 0.9
# Rows of the province confusion matrix: Yunnan, where the units run, first.
PREFIXES = "云" + PROVINCES.replace("云", "") + EMBASSY


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
) -> list[list[PlateRead]]:
    """Each labelled plate tallied; and, for each, the reads that overlap it, best first."""
    located = [box_of(reader.refiner.refine(image, d.corners)) for d in reader.detector.detect(image)]
    reads = reader.read_frame(image)
    out = []
    for text, corners in truths:
        box = box_of(corners)
        found = any(iou(b, box) >= 0.5 for b in located)
        matching = [r for r in reads if iou(r.box, box) >= 0.5]
        tally.add(text, matching[0].text if matching else None, found)
        out.append(matching)
    return out


def form_plates(f: int, form: str, n: int = 20) -> list[tuple[str, PlateKind, bool]]:
    rng = random.Random(SYNTHETIC_SEED + f)
    return [random_training_plate(rng, form) for _ in range(n)]


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


def real_counts() -> dict[PlateType, tuple[int, int]]:
    """How many real photographs of each type there are: (for training, held out). The labels
    carry no colour: an ordinary text counts as blue (the real photographs hold no yellow plate)."""
    counts: dict[PlateType, list[int]] = defaultdict(lambda: [0, 0])
    for plate in real_plates():
        found = plate_type(plate.text)
        if found is not None:
            counts[found][plate.split is Split.VALIDATION] += 1
    return {t: (c[0], c[1]) for t, c in counts.items()}


def real_note(counts: dict[PlateType, tuple[int, int]], kind: PlateType) -> str:
    train, held = counts.get(kind, (0, 0))
    return f"real photos: {train} to train on, {held} held out"


def type_reads(reader: PlateReader, per_form: int) -> tuple[dict[PlateType, Tally], Tally]:
    """Synthetic photos of every form cut as datasets cut them (94 x 24, 94 x 48 for two rows) and
    read as ``kuaichu ocr --crops`` reads them; a read counts when text and type are both right.
    Per type, and overall."""
    out: dict[PlateType, Tally] = defaultdict(Tally)
    overall = Tally()
    for f, form in enumerate(FORMS):
        rng = random.Random(CROPS_SEED + f)
        for _ in range(per_form):
            photo, quad, (text, colour, double) = synth_photo(rng, random_training_plate(rng, form))
            truth = plate_type(text, colour, double_row=double)
            assert truth is not None  # the generator draws valid texts only
            reads = reader.read_crop(dataset_crop(photo, quad, double))
            right = bool(reads) and (reads[0].text, reads[0].plate_type) == (text, truth)
            for tally in (out[truth], overall):
                tally.add(text, text if right else (reads[0].text if reads else None))
    return out, overall


def province_confusion(reader: PlateReader, per_prefix: int) -> dict[str, Counter[str]]:
    """For each first character in PREFIXES, what the recogniser read first on ``per_prefix``
    synthetic crops of plates starting with it ("-" for no read)."""
    out: dict[str, Counter[str]] = {}
    for i, prefix in enumerate(PREFIXES):
        rng = random.Random(PROVINCE_SEED + i)
        got: Counter[str] = Counter()
        for _ in range(per_prefix):
            text, colour, double = random_training_plate(rng)
            while (text[0] == EMBASSY) != (prefix == EMBASSY) or text.startswith("粤Z"):
                text, colour, double = random_training_plate(rng)
            crop, _, _ = synth_crop(rng, (prefix + text[1:], colour, double))
            read = reader.recogniser.read(crop)
            got[read.text[0] if read else "-"] += 1
        out[prefix] = got
    return out


def yunnan_prefixes(reader: PlateReader, per_prefix: int) -> dict[str, Tally]:
    """Each of Yunnan's prefixes (云A 昆明 ... 云S 临沧) on synthetic crops: the whole text read exactly."""
    out: dict[str, Tally] = {}
    for i, letter in enumerate(YUNNAN_AUTHORITIES):
        rng, tally = random.Random(PROVINCE_SEED + 100 + i), Tally()
        for _ in range(per_prefix):
            text, colour, double = random_training_plate(rng)
            while text[0] == EMBASSY or text.startswith("粤Z"):
                text, colour, double = random_training_plate(rng)
            text = "云" + letter + text[2:]
            crop, _, _ = synth_crop(rng, (text, colour, double))
            read = reader.recogniser.read(crop)
            tally.add(text, read.text if read else None)
        out["云" + letter] = tally
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--synthetic-per-form", type=int, default=100)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--speed-rounds", type=int, default=30)
    parser.add_argument("--crops-per-form", type=int, default=40, help="synthetic 94 x 24 crops per form")
    parser.add_argument("--per-province", type=int, default=20, help="synthetic crops per province")
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    reader = PlateReader(threads=1)

    counts = real_counts()
    real_frames, real_rec, crop94, green, misses = Tally(), Tally(), Tally(), Tally(), []
    sure: list[bool] = []  # for each held-out read at CONFIDENT or more: was it right
    unsure = 0
    for plate in real_plates(Split.VALIDATION):
        image = load_image(plate.path)
        if plate.corners is None:
            reads = reader.read_crop(image)
            real_rec.add(plate.text, reads[0].text if reads else None)
            continue
        reads = frame_reads(reader, image, [(plate.text, plate.corners)], real_frames)[0]
        if plate_type(plate.text) in (PlateType.NEW_ENERGY_SMALL, PlateType.NEW_ENERGY_LARGE):
            green.add(plate.text, reads[0].text if reads else None)
        tight = reader.read_crop(dataset_crop(image, plate.corners))
        crop94.add(plate.text, tight[0].text if tight else None, bool(tight))
        for read in reads[:1] + tight:
            if read.confidence >= CONFIDENT:
                sure.append(read.text == plate.text)
            else:
                unsure += 1
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
    print(
        f"held-out real, cut 94 x 24 as datasets ship them, kuaichu ocr --crops: {crop94.n} plates, "
        f"exact {crop94.pct(crop94.exact):.1f} %, no read {crop94.pct(crop94.n - crop94.found):.1f} %"
    )
    print(
        f"held-out real green (new-energy) scenes: read exactly {green.exact} of {green.n} "
        f"(small: {real_note(counts, PlateType.NEW_ENERGY_SMALL)}; "
        f"large: {real_note(counts, PlateType.NEW_ENERGY_LARGE)})"
    )
    precision = 100 * sum(sure) / max(1, len(sure))
    print(
        f"calibration, held-out real reads (scenes and 94 x 24 crops): {len(sure)} at confidence >= {CONFIDENT}, "
        f"{sum(sure)} right ({precision:.1f} %); {unsure} below it, for the dispatcher to check"
    )

    per_form, synth_all, crops = synthetic_reads(reader, SYNTHETIC_SEED, args.synthetic_per_form)
    for f, form in enumerate(FORMS):
        t = per_form[form]
        types = {plate_type(text, colour, double_row=double) for text, colour, double in form_plates(f, form)}
        real = sum(sum(counts.get(k, (0, 0))) for k in types if k is not None)
        print(
            f"synthetic {form:24s}: {t.n} plates, exact {t.pct(t.exact):5.1f} %, characters {t.pct(t.chars):5.1f} % "
            f"(real photos of it: {real})"
        )

    kinds, kinds_all = type_reads(reader, args.crops_per_form)
    print("plate types, synthetic photos cut 94 x 24 (94 x 48 two rows), kuaichu ocr --crops, text and type right:")
    for kind in PlateType:
        if kind in kinds:
            t = kinds[kind]
            print(
                f"  {TYPE_NAMES[kind]:14s} {t.n:4d} plates, exact {t.pct(t.exact):5.1f} % ({real_note(counts, kind)})"
            )
        else:
            print(f"  {TYPE_NAMES[kind]:14s} none in this synthetic set ({real_note(counts, kind)})")

    confusion = province_confusion(reader, args.per_province)
    print(
        f"provinces, synthetic crops ({args.per_province} each), recogniser alone: first character read "
        "(confusion matrix, rows the truth, non-zero cells; '-' no read):"
    )
    real_first = Counter(p.text[0] for p in real_plates())
    for prefix, read_as in confusion.items():
        others = ", ".join(f"{c} {n}" for c, n in read_as.most_common() if c != prefix)
        print(f"  {prefix} {read_as[prefix]:3d}/{sum(read_as.values())} {others}  (real photos: {real_first[prefix]})")
    yunnan = yunnan_prefixes(reader, args.per_province)
    print(
        "Yunnan's prefixes, synthetic crops, exact: "
        + " ".join(f"{prefix} {t.exact}/{t.n}" for prefix, t in yunnan.items())
        + f" (real photos of 云: {real_first['云']})"
    )

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
        one, (w, h) = Image.fromarray(crop), crop.shape[1::-1]
        t0 = time.perf_counter()
        # every look the reader takes at a plate it found in a frame, each straightened and read
        reader.read_at(one, ((0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))))
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
        f"rec_ms={rec_ms:.2f} frame_ms={frame_ms:.1f} models_kb={kb:.0f} "
        f"crop94_exact={crop94.pct(crop94.exact):.1f} green_exact={green.pct(green.exact):.1f} "
        f"kinds_exact={kinds_all.pct(kinds_all.exact):.1f} conf90_precision={precision:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
