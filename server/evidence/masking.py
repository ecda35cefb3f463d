"""Blurring what a copy of a picture must not show: the plates of vehicles that are not parties to
the case, and every face.

A copy for an insurer or a party may show the parties' own plates (the case is about them), but
not the plates of cars that happened to be there, nor anybody's face: nothing here can tell a
party's face from a passer-by's, so every face found is blurred. Plates are found and read by the
units' own plate reader (``device/ocr``); a plate stays visible only when it reads exactly as one
of the parties' plates, so a plate that reads wrong, or not at all, is blurred (the safe side).

Blurring is a mosaic of blocks about a character wide, then smoothed: pixelation with small
blocks can be undone by matching rendered candidates of a known font (plates have one), so the
blocks are coarser than the characters. The masking's every choice is in ``Masker.method`` with
the models' SHA-256, so each copy says exactly how it was made; ``MASKING_VERSION`` changes when
the code changes in a way those do not show.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter, ImageOps

from device.ocr.geometry import Quad
from device.ocr.reader import DETECTOR_FILE, MODELS_DIR, RECOGNISER_FILE, REFINER_FILE, PlateReader, load_image
from server.casework.plates import normalise_plate
from server.evidence.faces import FACE_MODEL, MIN_SCORE, WINDOW, FaceDetector

MASKING_VERSION = 1
# How far a plate's blur reaches beyond the box of its found corners, as parts of that box's width
# and height: the corners are a few percent off (models/README.md), most of all in height. Picked
# on the real *training* photographs by bench/masking.py (the smallest candidate within half a
# point of the best at covering their plates fully: 99.2 % of 251), never on the held-out ones.
PLATE_MARGIN = (0.15, 0.45)
# A face's box runs from the brows to the chin; hair, ears and forehead identify too. Fixed, not tuned.
FACE_MARGIN = (0.20, 0.45, 0.20, 0.15)  # left, up, right, down, as parts of the box's width / height
BLOCKS_ACROSS = 3  # mosaic blocks across the shorter side of a region
JPEG_QUALITY = 90

Box = tuple[int, int, int, int]  # x0, y0, x1, y1, x1 and y1 exclusive


@dataclass(frozen=True)
class Region:
    """Something found: a plate (with what it read as, if anything) or a face, and whether it stays visible."""

    kind: str  # plate / face
    box: Box  # what is blurred (margins included), or the plate left visible
    score: float
    text: str | None = None
    kept: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "box": list(self.box), "score": round(self.score, 3)}
        if self.kind == "plate":  # the text of a plate left visible only: the others' stay out of the record too
            out |= {"read": self.text is not None, "kept": self.kept, "text": self.text if self.kept else None}
        return out


def _grown(box: tuple[float, float, float, float], margins: tuple[float, float, float, float], size: Box) -> Box:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return (
        max(size[0], int(x0 - margins[0] * w)),
        max(size[1], int(y0 - margins[1] * h)),
        min(size[2], int(x1 + margins[2] * w + 1)),
        min(size[3], int(y1 + margins[3] * h + 1)),
    )


def _quad_box(*quads: Quad) -> tuple[float, float, float, float]:
    xs = [x for q in quads for x, _ in q]
    ys = [y for q in quads for _, y in q]
    return (min(xs), min(ys), max(xs), max(ys))


def blur(image: Image.Image, boxes: list[Box]) -> None:
    """Mosaic and smooth each box of ``image`` in place."""
    for x0, y0, x1, y1 in boxes:
        w, h = x1 - x0, y1 - y0
        if w < 2 or h < 2:
            continue
        block = max(2, min(w, h) // BLOCKS_ACROSS)
        patch = image.crop((x0, y0, x1, y1))
        small = patch.resize((max(1, -(-w // block)), max(1, -(-h // block))), Image.Resampling.BOX)
        patch = small.resize((w, h), Image.Resampling.NEAREST).filter(ImageFilter.GaussianBlur(block / 2))
        image.paste(patch, (x0, y0))


def party_plates(plates: list[str | None]) -> frozenset[str]:
    """The parties' plates as the reader writes them, for comparing with its reads."""
    return frozenset(normalise_plate(p) for p in plates if p)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Masker:
    """The plate reader and face detector, loaded once (ModelError if a model is missing or corrupt).
    One masking at a time: the TFLite interpreters are not thread-safe."""

    def __init__(self, models_dir: Path = MODELS_DIR, face_model: Path = FACE_MODEL) -> None:
        self.plates = PlateReader(models_dir)
        self.faces = FaceDetector(face_model)
        self.lock = threading.Lock()
        self.method: dict[str, Any] = {
            "version": MASKING_VERSION,
            "blur": f"mosaic of {BLOCKS_ACROSS} blocks across a region's shorter side, then Gaussian (half a block)",
            "plates": {
                "rule": "every plate found is blurred unless it reads exactly as a party's plate",
                "models": {f: _sha256(models_dir / f) for f in (DETECTOR_FILE, REFINER_FILE, RECOGNISER_FILE)},
                "margin_wh": list(PLATE_MARGIN),
            },
            "faces": {
                "rule": "every face found is blurred",
                "model": {face_model.name: _sha256(face_model)},
                "source": "MediaPipe BlazeFace full range (mediapipe 0.10.14 wheel, Apache-2.0)",
                "min_score": MIN_SCORE,
                "window_px": WINDOW,
                "margin_lurd": list(FACE_MARGIN),
            },
        }

    def version(self, kept: frozenset[str]) -> str:
        """What makes two masked copies of one original the same: the method, the models and the
        plates left visible (a party's plate corrected later makes a new copy)."""
        text = json.dumps({"method": self.method, "kept": sorted(kept)}, sort_keys=True, ensure_ascii=False)
        return f"{MASKING_VERSION}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def find(self, image: Image.Image, kept: frozenset[str]) -> list[Region]:
        """The plates and faces in the RGB ``image``; plates reading as one of ``kept`` marked kept."""
        return self.plates_in(image, kept) + self.faces_in(image)

    def plates_in(
        self, image: Image.Image, kept: frozenset[str], margin: tuple[float, float] = PLATE_MARGIN
    ) -> list[Region]:
        size = (0, 0, image.width, image.height)
        found = []
        with self.lock:
            for d in self.plates.detector.detect(image):
                corners = self.plates.refiner.refine(image, d.corners)
                read = self.plates.read_at(image, corners)
                text = read.text if read is not None else None
                box = _grown(_quad_box(d.corners, corners), (margin[0], margin[1], margin[0], margin[1]), size)
                found.append(Region("plate", box, d.score, text, text is not None and normalise_plate(text) in kept))
        return found

    def faces_in(self, image: Image.Image) -> list[Region]:
        size = (0, 0, image.width, image.height)
        with self.lock:
            return [Region("face", _grown(f.box, FACE_MARGIN, size), f.score) for f in self.faces.detect(image)]

    def mask(self, image: Image.Image, kept: frozenset[str]) -> list[Region]:
        """Blur ``image`` in place; what was found."""
        found = self.find(image, kept)
        blur(image, [r.box for r in found if not r.kept])
        return found

    def mask_still(self, source: Path, target: Path, kept: frozenset[str]) -> dict[str, Any]:
        """A masked JPEG copy of the picture at ``source`` (turned upright as its EXIF says, and
        without its EXIF: a phone's photo carries its GPS position and the phone's make); what
        was found."""
        image = ImageOps.exif_transpose(load_image(source))
        found = self.mask(image, kept)
        image.save(target, "JPEG", quality=JPEG_QUALITY)  # no exif= : none is written
        return {"width": image.width, "height": image.height, "found": [r.as_json() for r in found]}
