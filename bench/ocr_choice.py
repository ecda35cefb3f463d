"""The figures a retrained plate model is kept or dropped by: none of them from the held-out photos.

``bench/ocr.py`` reports the held-out real photographs; a choice made by that figure would make it
a training figure. So a candidate model is judged by a rule written down before it is benchmarked
(see models/README.md), on:

- the real *training* photographs read end to end (trained on, so a floor: a candidate that reads
  fewer of them has lost something the shipped one had);
- random views of them (``models.found.random_view``: cut around the plate and shrunk, seeded),
  end to end: harder than the whole photographs, which the shipped models nearly all read;
- a second synthetic set (seeds 5000 + form, where ``bench/ocr.py`` uses 1000 + form), the
  recogniser alone on crops cut from corners off by up to ``models.synth.CORNER_ERROR``.

    .venv/bin/python -m bench.ocr_choice [--models DIR] [--per-form 200] [--views 3] [--photos N]

``--models`` is a folder with all three model files (a candidate beside copies of the shipped
ones). Last line: ``train_frames=… of=… train_views=… views_of=… choice_synth=… choice_double=…``
(reads and totals, and exact percentages).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a path: the repo root, for bench and tests

from bench.ocr import Tally, frame_reads, synthetic_reads
from device.ocr.errors import OcrError
from device.ocr.reader import MODELS_DIR, PlateReader, load_image
from models.found import random_view
from models.realdata import Split, real_plates
from models.synth import FORMS

CHOICE_SEED = 5000
VIEWS_SEED = 9000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--per-form", type=int, default=200)
    parser.add_argument("--views", type=int, default=3, help="random views of each training photograph")
    parser.add_argument("--photos", type=int, default=None, help="only the first N training photographs")
    args = parser.parse_args(argv)
    try:
        reader = PlateReader(args.models, threads=1)
    except OcrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    frames, views, rng = Tally(), Tally(), random.Random(VIEWS_SEED)
    photos = [p for p in real_plates(Split.TRAIN) if p.corners is not None][: args.photos]
    for plate in photos:
        assert plate.corners is not None
        photo = load_image(plate.path)
        frame_reads(reader, photo, [(plate.text, plate.corners)], frames)
        for _ in range(args.views):
            view, corners = random_view(rng, photo, plate.corners)
            frame_reads(reader, view, [(plate.text, corners)], views)
    print(f"training photographs, end to end: {frames.exact} of {frames.n}")
    print(f"random views of them, end to end: {views.exact} of {views.n}")

    per_form, synth, _ = synthetic_reads(reader, CHOICE_SEED, args.per_form)
    for form in FORMS:
        t = per_form[form]
        print(f"second synthetic set, {form:24s}: exact {t.pct(t.exact):5.1f} %")
    double = next(per_form[f] for f in FORMS if "double" in f)
    print(
        f"train_frames={frames.exact} of={frames.n} train_views={views.exact} views_of={views.n} "
        f"choice_synth={synth.pct(synth.exact):.1f} choice_double={double.pct(double.exact):.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
